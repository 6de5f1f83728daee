#!/usr/bin/env bash
# The operations critest's -benchmark times (cri-tools pkg/benchmark: CreatePod, StatusPod, StopPod, RemovePod,
# CreateContainer, StartContainer, StatusContainer, StopContainer, RemoveContainer, PullImage, StatusImage, RemoveImage,
# ListImages, pod and container from scratch), made as critest makes them, nacelle against Debian's containerd 1.6
# (bench/reference/containerd.sh) in the same run, the runtimes alternating every iteration. Prints median, p90 and the
# ratio of the medians for each.
#   sudo bash bench/cri-ops.sh   (environment: ITER=20 iterations, WARMUP=3, CONTAINERD=0 nacelle alone (quick
#                                 comparisons of two builds through NACELLE_DIR; no ratios),
#                                 plus ARTIFACTS, NACELLE_DIR, BRIDGE, SUBNET: see bench/cri-daemon.sh)
# Run it on a quiet machine. Everything it creates is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cri-daemon.sh
source bench/reference/containerd.sh
reference_start
run_bench ops --iterations "${ITER:-20}" --warmup "${WARMUP:-3}" "${reference_args[@]}"
