#!/usr/bin/env bash
# ImageFsInfo latency through CRI with many pods running (one busybox `sleep` container each, pod network on the test
# bridge), nacelle against Debian's containerd 1.6 (bench/reference/containerd.sh) with the same pods, one CRI client.
# Prints p50, p90, p99 and max, and what each runtime reports.
#   sudo bash bench/imagefs.sh   (environment: PODS=100 pods per runtime, CALLS=1000 calls per runtime,
#                                 plus ARTIFACTS, NACELLE_DIR, BRIDGE, SUBNET: see bench/cri-daemon.sh)
# Run it on a quiet machine. Everything it creates is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cri-daemon.sh
source bench/reference/containerd.sh
containerd_start
run_bench imagefs --memory-pods "${PODS:-100}" --iterations "${CALLS:-1000}" $(containerd_args)
