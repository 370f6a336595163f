#!/usr/bin/env bash
# Sets up a machine to build pgclone and run the demo: system packages, the
# Rust toolchain with the wasm32-wasip2 target, and a release build. The test
# suite's own tools: scripts/test-deps.sh.
# Safe to run again; works as root or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Packages the build and the demo use: a C toolchain and OpenSSL's headers for
# the build, PostgreSQL 15 for the demo's primary and standby (and pg_basebackup).
# The test suite's other packages (Barman, sshd, Patroni, ...) are installed by
# scripts/test-deps.sh.
PACKAGES=(gcc pkg-config libssl-dev postgresql-15 postgresql-client-15)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

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
