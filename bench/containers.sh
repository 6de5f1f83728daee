#!/usr/bin/env bash
# Container benchmark through the CRI socket: with a busybox image pulled once from a loopback registry (Debian's
# docker-registry), RunPodSandbox + CreateContainer + StartContainer of `sleep 3600` as one "pod+container start" and its
# parts, ExecSync of `echo hi`, and the teardown timed apart (median, p90), against the same steps done by hand with
# Debian's runc (pod as in bench/pods.sh, then runc create + runc start, runc exec) in the same run. An rpc the daemon
# answers Unimplemented is reported as "skipped: <rpc> unimplemented".
#   sudo bash bench/containers.sh   (environment: ITER=50 iterations, WARMUP=3,
#                                    plus ARTIFACTS, NACELLE_DIR, BRIDGE, SUBNET: see bench/cri-daemon.sh)
# Everything it creates (daemon, registry, pods, containers, netns, bridge, iptables guard, cgroups, files) is removed
# at the end, failed or not.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cri-daemon.sh
run_bench containers --iterations "${ITER:-50}" --warmup "${WARMUP:-3}"
