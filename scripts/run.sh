#!/usr/bin/env bash
# Newcomer's first command: installs what is needed, builds, and starts the daemon in the foreground
# with its embedded defaults (socket /run/nacelle/nacelle.sock, metrics on 127.0.0.1:9654) plus the built-in
# single-host pod network (--default-network builtin: a bridge with masquerade and hostPorts), which a machine
# outside a cluster needs. Installed as a node runtime (the package, the Helm chart) nacelle leaves pod
# networking to the cluster's network add-on instead.
# Extra arguments go to nacelle, e.g. `scripts/run.sh --log-level debug`. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec artifacts/nacelle/nacelle --default-network builtin "$@"
