#!/usr/bin/env bash
# Pod sandbox benchmark through the CRI socket: RunPodSandbox latency and StopPodSandbox+RemovePodSandbox latency
# (median, p90) on a CNI bridge network, and memory per pod with 30 pods running (PSS of each pod's nacelle-monitor and
# pause-init, the daemon's RSS growth), against a reference measured in the same run: the same steps done by hand with
# Debian's runc as a containerd-like runtime does them (ip netns add, CNI ADD, `runc run -d` of a busybox pause).
#   sudo bash bench/pods.sh   (environment: ITER=30 iterations, WARMUP=3, PODS=30 pods for the memory table,
#                              plus ARTIFACTS, NACELLE_DIR, BRIDGE, SUBNET: see bench/cri-daemon.sh)
# Everything it creates (daemon, pods, runc containers, netns, bridge, iptables guard, cgroups, files) is removed at the
# end, failed or not.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cri-daemon.sh
run_bench pods --iterations "${ITER:-30}" --warmup "${WARMUP:-3}" --memory-pods "${PODS:-30}"
