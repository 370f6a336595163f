#!/usr/bin/env bash
# Builds pgclone's Debian package, target/debian/pgclone_VERSION-REVISION_ARCH.deb:
# /usr/bin/pgclone (the first-party plugins inside), a man page for pgclone and
# each of its commands, bash/zsh/fish completions, and an example
# /etc/pgclone/plugins.toml. The pages and completions come from the binary
# itself (its hidden generate-man and generate-completions commands), so they
# say what --help says. The package's contents and dependencies are in
# host/Cargo.toml, [package.metadata.deb] (cargo-deb).
#
#   ./scripts/package.sh               # build pgclone (release), then package it
#   ./scripts/package.sh --no-build    # package the release build already in target/
#   ./scripts/package.sh --fast        # lighter compression (a quicker, larger .deb)
#   ./scripts/package.sh --tools-only  # only install cargo-deb (the test setup does)
#
# Needs what scripts/setup.sh installs, plus dpkg-dev (dpkg-shlibdeps finds the
# shared libraries the binary needs); cargo-deb is installed with cargo if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The version of cargo-deb this package is built and tested with.
CARGO_DEB_VERSION=3.8.0

build=1 tools_only=0 deb_args=()
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        --fast) deb_args+=(--fast) ;;
        --tools-only) tools_only=1 ;;
        *) echo "usage: $0 [--no-build] [--fast] [--tools-only]" >&2; exit 2 ;;
    esac
done
say() { printf '\n==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# cargo install puts cargo-deb in cargo's own bin directory, where `cargo deb` finds it.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
    say "installing cargo-deb $CARGO_DEB_VERSION (crates.io)"
    cargo install --quiet --locked --version "$CARGO_DEB_VERSION" cargo-deb
fi
if ! command -v dpkg-shlibdeps >/dev/null 2>&1; then
    say "installing dpkg-dev (dpkg-shlibdeps)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >/dev/null
fi
[ "$tools_only" -eq 1 ] && exit 0

target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target=$PWD/$target ;; esac
if [ "$build" -eq 1 ]; then
    say "building pgclone (release)"
    cargo build --release --locked -p pgclone
fi
bin=$target/release/pgclone
[ -x "$bin" ] || { echo "ERROR: no release build at $bin" >&2; echo "HINT: run $0 without --no-build" >&2; exit 1; }

# What host/Cargo.toml's assets name below target/release/package/.
out=$target/release/package
say "man pages and completions from $bin"
rm -rf "$out" && mkdir -p "$out/man" "$out/completions"
"$bin" generate-man "$out/man"
# Compressed as Debian policy wants (cargo-deb leaves files below target/ as they are).
gzip -9n "$out"/man/*.1
"$bin" generate-completions bash >"$out/completions/pgclone"
"$bin" generate-completions zsh >"$out/completions/_pgclone"
"$bin" generate-completions fish >"$out/completions/pgclone.fish"

say "the package (cargo-deb)"
# --no-build: the binary above is the one packaged (cargo-deb strips a copy).
# cargo-deb prints the .deb's path on standard output: so does this script.
cargo deb -p pgclone --no-build --locked --output "$target/debian/" "${deb_args[@]}"
