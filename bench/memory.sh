#!/usr/bin/env bash
# The daemon's memory: RSS fresh, after a round of 30 pods (made, asked about, removed), right after a burst of hostile
# requests (1 MB strings; 10,000 annotations, labels, env vars or selector entries) and once left alone; containerd 1.6
# (bench/reference/containerd.sh) through the same steps for reference.
#   sudo bash bench/memory.sh   (environment: HOSTILE=20 requests of each hostile kind, SETTLE=100 seconds (the
#                                daemon's trimmer frees what a burst left within ~75 s of it: docs/architecture.md,
#                                MemoryTrimmer), MEMORY_SMAPS_DIR to keep the daemon's smaps at each step, CONTAINERD=0 nacelle alone,
#                                plus ARTIFACTS, NACELLE_DIR, BRIDGE, SUBNET: see bench/cri-daemon.sh)
# Everything it creates is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cri-daemon.sh
source bench/reference/containerd.sh
reference_start
run_bench memory --hostile "${HOSTILE:-20}" --settle "${SETTLE:-100}" "${reference_args[@]}"
