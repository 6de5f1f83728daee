#!/usr/bin/env bash
# Runs every test: installs what the tests use, builds (including the Native AOT daemon, which the
# end-to-end tests then drive over its unix socket), runs the unit and end-to-end suites, and prints
# one closing line "N passed, N failed, N skipped". Needs root (real sockets, later namespaces and cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

bash scripts/install-deps.sh --test
bash scripts/build.sh

results=artifacts/test-results
rm -rf "$results"
status=0
NACELLE_BIN="$PWD/artifacts/nacelle/nacelle" \
  dotnet test Cri.sln -c Release --no-build --results-directory "$results" --logger "trx" --logger "console;verbosity=normal" \
    --blame-hang-timeout 5m \
  || status=$?

passed=0; failed=0; skipped=0; total=0
shopt -s nullglob
trx_files=("$results"/*.trx)
for trx in "${trx_files[@]}"; do
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  get() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  # xunit's skipped tests are counted in total but not in executed (notExecuted stays 0).
  skipped=$((skipped + $(get total) - $(get executed)))
  total=$((total + $(get total)))
done

if [[ ${#trx_files[@]} -eq 0 ]]; then
  echo "no test results were written" >&2
  status=1
fi
if [[ $total -eq 0 ]]; then
  echo "no test ran" >&2
  status=1
fi
if [[ $status -ne 0 && $failed -eq 0 ]]; then
  echo "dotnet test exited with $status although no test failed: a test host aborted (see above)" >&2
fi
# Skipped tests print their reason in the console log above ("Skipped <name>").
echo "$passed passed, $failed failed, $skipped skipped"
if [[ $failed -ne 0 ]]; then
  status=1
fi
exit $status
