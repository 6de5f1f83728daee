#!/usr/bin/env bash
# Container core benchmark: create+start+wait+delete of a /bin/true container through nacelle's ContainerRuntime
# (in-process, the spawn helper nacelle-spawn) against `runc run` on the same busybox bundle, in the same run,
# interleaved. Prints a markdown table (median, p90, min, ratio against runc's median), nacelle's create-only,
# start-to-exit and delete-only phases, runc with --no-new-keyring, the floor of starting a process from .NET, and
# the target line "nacelle >= 3x faster than runc" with PASS/MISS.
#   sudo bench/core-spawn.sh [ITERATIONS] [more options]   (default 50 iterations after 3 warm-ups)
#   options: --warmup W, --runc PATH (default: runc on PATH), --state-base DIR (default /dev/shm when it is a tmpfs)
#   environment: ARTIFACTS=DIR builds into DIR (dotnet --artifacts-path) instead of bench/CoreSpawn/bin;
#                NACELLE_SPAWN_HELPER=FILE runs another build of the spawn helper.
# Needs root (namespaces, cgroups), /bin/busybox, runc and the .NET SDK. Everything it creates (containers, the
# /nacelle-bench-* cgroups in every hierarchy, temp and state directories) is removed at the end, failed or not.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
if [[ $(id -u) -ne 0 ]]; then
  echo "core-spawn.sh: run as root (containers need namespaces and cgroups)" >&2
  exit 2
fi

args=()
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
  args+=(--iterations "$1")
  shift
fi

project=bench/CoreSpawn/Nacelle.Bench.CoreSpawn.csproj
if [[ -n ${ARTIFACTS:-} ]]; then
  dotnet build "$project" -c Release -v q -nologo --artifacts-path "$ARTIFACTS"
  out=$ARTIFACTS/bin/Nacelle.Bench.CoreSpawn/release
else
  dotnet build "$project" -c Release -v q -nologo
  out=bench/CoreSpawn/bin/Release/net10.0
fi

# ContainerCore's build compiles the helper and copies it next to every referencing program.
if [[ ! -x $out/nacelle-spawn && -z ${NACELLE_SPAWN_HELPER:-} ]]; then
  echo "core-spawn.sh: $out/nacelle-spawn is missing (gcc and glibc's static libraries are needed to build it)" >&2
  exit 1
fi

exec dotnet "$out/Nacelle.Bench.CoreSpawn.dll" "${args[@]}" "$@"
