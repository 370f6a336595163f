#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

eval "$(./scripts/test-deps.sh)"

printf '\n==> running the tests\n'
# The host: unit tests, plugin sandbox tests against real components, CLI tests. Building pgclone builds only the
# plugins it embeds; the tests build the examples and test components they load (host/tests/support: component).
cargo test --release --locked -p pgclone
# The contract's shared rules, and the first-party plugins' decisions, natively (their wasm builds are what the
# host tests above load).
cargo test --release --locked -p pgclone-contract -p pgclone-plugin-sdk -p example-site-policy -p example-source-pgbackrest -p pgclone-recovery-standard -p pgclone-source-pg-basebackup -p pgclone-source-barman --lib
