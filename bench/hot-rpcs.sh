#!/usr/bin/env bash
# The per-call cost of the rpcs kubelet polls (Version as the yardstick, ListPodSandbox, ListContainers,
# PodSandboxStatus, ContainerStatus, ListImages, ImageStatus, ImageFsInfo), back to back through one CRI client, at N
# pods with one busybox container each. With BASELINE_DIR=DIR (a directory holding another build's nacelle and
# nacelle-monitor) a second daemon from that build runs beside the first, on its own root, state and socket, and the
# two take turns in every round; CONTAINERD=1 adds Debian's containerd 1.6 (bench/reference/containerd.sh) the same way.
#   sudo bash bench/hot-rpcs.sh   (environment: PODS=100, ITER=2000 rounds, WARMUP=50, BASELINE_DIR, CONTAINERD,
#                                  PAUSE_MS=0: an idle pause before each call (cold calls, as kubelet paces them),
#                                  plus ARTIFACTS, NACELLE_DIR, BRIDGE, SUBNET: see bench/cri-daemon.sh)
# Run it on a quiet machine. Everything it creates is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cri-daemon.sh
extra=()
if [[ -n ${BASELINE_DIR:-} ]]; then
  "$BASELINE_DIR/nacelle" --config "$work/config.toml" --socket "$work/baseline.sock" --root "$work/baseline-root" \
    --state "$work/baseline-state" --log-level warn >"$work/baseline.log" 2>&1 </dev/null &
  baseline_pid=$!
  baseline_stop() {
    if alive "$baseline_pid"; then
      kill -TERM "$baseline_pid"
      for i in $(seq 300); do alive "$baseline_pid" || break; sleep 0.1; done
      alive "$baseline_pid" && kill -KILL "$baseline_pid"
      wait "$baseline_pid" 2>/dev/null
    fi
  }
  cleanup_hooks+=(baseline_stop)
  extra+=(--baseline-socket "$work/baseline.sock" --baseline-pid "$baseline_pid")
fi
if [[ -n ${CONTAINERD:-} ]]; then
  source bench/reference/containerd.sh
  containerd_start
  extra+=($(containerd_args))
fi
run_bench hot-rpcs --pod-counts "${PODS:-100}" --iterations "${ITER:-2000}" --warmup "${WARMUP:-50}" --pause-ms "${PAUSE_MS:-0}" "${extra[@]}"
