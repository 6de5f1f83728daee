#!/usr/bin/env bash
# Startup benchmark: time from exec to the first answered Version call, and idle RSS after 100 Version
# calls, median and p90 over several runs. Measures the Native AOT daemon against the same daemon run
# on the JIT (framework-dependent build), the reference, in the same run.
#   bench/startup.sh [RUNS]   (default 15; needs scripts/build.sh to have run)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
[[ -x artifacts/nacelle/nacelle ]] || bash scripts/build.sh
jit_dll=src/CriServer/bin/Release/net10.0/nacelle.dll
[[ -f $jit_dll ]] || dotnet build src/CriServer/Nacelle.CriServer.csproj -c Release
dotnet build bench/Startup/Nacelle.Bench.Startup.csproj -c Release -v q -nologo
dotnet bench/Startup/bin/Release/net10.0/Nacelle.Bench.Startup.dll --runs "$runs" \
  --variant "nacelle (Native AOT)=$PWD/artifacts/nacelle/nacelle" \
  --variant "nacelle (JIT, reference)=dotnet $PWD/$jit_dll"
