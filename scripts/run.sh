#!/usr/bin/env bash
# Newcomer's first command: installs what is needed, builds, and starts the daemon in the foreground
# with its embedded defaults (socket /run/nacelle/nacelle.sock, metrics on 127.0.0.1:9654).
# Extra arguments go to nacelle, e.g. `scripts/run.sh --log-level debug`. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec artifacts/nacelle/nacelle "$@"
