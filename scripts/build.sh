#!/usr/bin/env bash
# Builds the whole solution (Release) and publishes the nacelle daemon as a Native AOT executable
# to artifacts/nacelle/nacelle, with nacelle-monitor, nacelle-spawn and nacelle-pause beside it. Trim and AOT
# warnings fail the build.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

dotnet restore Cri.sln
dotnet build Cri.sln -c Release --no-restore
dotnet publish src/CriServer/Nacelle.CriServer.csproj -c Release -r linux-x64 -o artifacts/nacelle
# The per-pod monitor, also Native AOT, next to the daemon (which launches it from its own directory).
dotnet publish src/Monitor/Nacelle.Monitor.csproj -c Release -r linux-x64 -o artifacts/nacelle
echo "built artifacts/nacelle/nacelle ($(artifacts/nacelle/nacelle version))"
