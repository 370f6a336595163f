#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh) and runs pgclone's main job.
# For now that is showing the plugins pgclone ships with: the clone itself
# arrives with the pg_basebackup and Barman sources.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
printf '\n==> pgclone plugin list\n'
./target/release/pgclone plugin list
printf '\n==> pgclone plugin inspect recovery-standard\n'
./target/release/pgclone plugin inspect recovery-standard
