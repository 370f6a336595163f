#!/usr/bin/env bash
# Sets up a machine to build and test pgclone: system packages, the Rust
# toolchain with the wasm32-wasip2 target, and a release build.
# Safe to run again; works as root or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Packages the build and the test suite use. The clone and WAL tests need a
# real PostgreSQL, sshd, rsync and Barman; they are installed here so that a
# fresh machine needs nothing else.
PACKAGES=(gcc pkg-config libssl-dev openssl openssh-client openssh-server rsync procps time postgresql-15 postgresql-client-15
          postgresql-15-repmgr barman barman-cli pgbackrest python3-venv patroni etcd-server)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Patroni test runs its own etcd and Patroni on loopback; the packages'
# services (started by the install on machines that allow it) would hold the
# default ports and a cluster of their own: stop and disable them.
for svc in patroni etcd; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        say "stopping the $svc service the package started"
        as_root systemctl stop "$svc" || true
        as_root systemctl disable --quiet "$svc" 2>/dev/null || true
    elif [ -x "/etc/init.d/$svc" ] && as_root "/etc/init.d/$svc" status >/dev/null 2>&1; then
        say "stopping the $svc service the package started"
        as_root "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
done

if ! command -v rustup >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/rustup" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v rustup >/dev/null 2>&1; then
    echo "ERROR: rustup is not installed" >&2
    echo "HINT: install Rust with rustup (https://rustup.rs), then run this script again" >&2
    exit 1
fi
# rust-toolchain.toml names the toolchain and the wasm32-wasip2 target; make
# sure both are present (rustup only installs targets with a new toolchain).
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
say "Rust toolchain $toolchain with wasm32-wasip2"
rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal
rustup target list --installed --toolchain "$toolchain" | grep -q '^wasm32-wasip2$' \
    || rustup target add wasm32-wasip2 --toolchain "$toolchain"
rustup component list --installed --toolchain "$toolchain" | grep -q '^rustfmt' \
    || rustup component add rustfmt clippy --toolchain "$toolchain" || true

say "building pgclone (release; the first build takes several minutes)"
cargo build --release --locked -p pgclone
echo "built: $(pwd)/target/release/pgclone"
