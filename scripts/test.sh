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
# Every other crate of the workspace natively: the contract's shared rules, the SDK (with its doc examples), the
# first-party plugins' and the examples' decisions, the test components (their wasm builds are what the host tests
# above load).
cargo test --release --locked --workspace --exclude pgclone
