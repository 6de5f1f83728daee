#!/usr/bin/env bash
# Pod sandbox benchmark through the CRI socket: RunPodSandbox latency and StopPodSandbox+RemovePodSandbox latency
# (median, p90) on a CNI bridge network against a reference measured in the same run: the same steps done by hand with
# Debian's runc as a containerd-like runtime does them (ip netns add, CNI ADD, `runc run -d` of a busybox pause). Then
# memory per pod with 30 pods of one busybox `sleep` container each: PSS, RSS and threads of each pod's nacelle-monitor
# and pause-init next to Debian's containerd 1.6 (bench/reference/containerd.sh: its shim and pause) in the same run,
# idle and under load in one pod (~10 MB/s of log lines, an ExecSync every second, an attach open: Go spdystream).
#   sudo bash bench/pods.sh   (environment: ITER=30 iterations, WARMUP=3, PODS=30 pods for the memory table,
#                              plus ARTIFACTS, NACELLE_DIR, BRIDGE, SUBNET: see bench/cri-daemon.sh)
# Needs containerd, Go and golang-github-docker-spdystream-dev (scripts/install-deps.sh --test). Everything it creates
# (daemon, containerd and its shims, registry, pods, runc containers, netns, bridge, iptables guard, cgroups, files) is
# removed at the end, failed or not.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cri-daemon.sh
source bench/reference/containerd.sh
containerd_start
run_bench pods --iterations "${ITER:-30}" --warmup "${WARMUP:-3}" --memory-pods "${PODS:-30}" $(containerd_args)
