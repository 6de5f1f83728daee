#!/usr/bin/env bash
# Stream benchmark through the CRI socket and nacelle's streaming server, with references measured in the same run:
# exec round trip of `echo hi` (the Exec rpc plus the client's session) over SPDY (Go on Debian's spdystream) and over
# WebSocket (.NET's ClientWebSocket), median and p90, against ExecSync and `runc exec`; port-forward throughput (a server
# in a pod on the test bridge writes the bytes, the Go client reads and counts them through a port-forward, without
# hashing them, as the reference does not) against a direct TCP copy over the host's loopback. Aims: exec under 10 ms
# median; port-forward at least half the direct copy.
#   sudo bash bench/streams.sh   (environment: ITER=50 exec round trips, WARMUP=3, FORWARD_MIB=256 per copy,
#                                 FORWARD_ITER=5 copies, plus ARTIFACTS, NACELLE_DIR, BRIDGE, SUBNET: see bench/cri-daemon.sh)
# Needs Go and golang-github-docker-spdystream-dev (scripts/install-deps.sh --test). Everything it creates (daemon,
# registry, pods, containers, netns, bridge, iptables guard, cgroups, files) is removed at the end, failed or not.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/cri-daemon.sh
run_bench streams --iterations "${ITER:-50}" --warmup "${WARMUP:-3}" --forward-mib "${FORWARD_MIB:-256}" \
  --forward-iterations "${FORWARD_ITER:-5}"
