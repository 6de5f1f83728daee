#!/usr/bin/env bash
# The steady-state load kubelet puts on a runtime, nacelle against Debian's containerd 1.6 (bench/reference/containerd.sh)
# in the same run, through one CRI client: N pods with one busybox `sleep` container each (pod network on the test
# bridge); relist every second (ListPodSandbox + ListContainers); every 10 s ListContainerStats, ListPodSandboxStats,
# ImageFsInfo and ListImages; every 10 s per pod an exec probe (ExecSync `true`), PodSandboxStatus and ContainerStatus.
# For each pod count, each runtime alone in turn. Prints per-rpc p50/p99, runtime CPU (daemon plus per-pod processes:
# monitor and pause-init, or shim and pause, from /proc/PID/stat with their reaped children), daemon RSS over the run
# (start, end, max, growth from the first to the last window) and the per-pod processes' PSS.
#   sudo bash bench/kubelet-load.sh   (environment: PODS=30,100 pod counts, DURATION=120 seconds of load per pod count and
#                                      runtime (3600 for the hour-long memory check), CONTAINERD=0 nacelle alone (no
#                                      ratios), plus ARTIFACTS, NACELLE_DIR, BRIDGE, SUBNET: see bench/cri-daemon.sh)
# Run it on a quiet machine. Everything it creates is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cri-daemon.sh
source bench/reference/containerd.sh
reference_start
run_bench kubelet-load --pod-counts "${PODS:-30,100}" --duration "${DURATION:-120}" "${reference_args[@]}"
