#!/usr/bin/env bash
# PullImage benchmark through CRI: a 98 MB image in 6 gzip layers (seeded random and text files, built by the benchmark
# program) pushed to a loopback registry (Debian's docker-registry), pulled by nacelle and by Debian's containerd 1.6
# (bench/reference/containerd.sh) with one CRI client, removed after every pull so each pull is cold, interleaved;
# idle, then with a CPU hog (a busy loop process, started and stopped by pid). Prints median, p90, the throughput ratio,
# the floor measured in the same run (inflate + hash of the same layers from memory, all at once, nothing written, with
# the fastest inflater found), the profile of a pull's stages and in-process pulls.
#   sudo bash bench/pull.sh   (environment: ITER=10 pulls per runtime and condition, WARMUP=2,
#                              plus ARTIFACTS, NACELLE_DIR, BRIDGE, SUBNET: see bench/cri-daemon.sh)
# Run it on a quiet machine: other work on the two cores changes every number.
# Everything it creates (daemon, containerd and its shims, registry, bridge, iptables guard, files) is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cri-daemon.sh
source bench/reference/containerd.sh
containerd_start
run_bench pull --iterations "${ITER:-10}" --warmup "${WARMUP:-2}" $(containerd_args)
