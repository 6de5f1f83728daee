# Sourced by bench/pods.sh and bench/containers.sh: builds the Native AOT daemon and the benchmark program, starts a
# nacelle daemon with a private root, state, socket and CNI conf dir whose network is a test bridge ($BRIDGE, $SUBNET,
# no masquerade) fenced off the host by an iptables FORWARD guard, and on exit removes everything it made.
# Environment: ARTIFACTS=DIR build output (default /tmp/nacelle-bench-cri); NACELLE_DIR=DIR use an existing daemon
# build (nacelle and nacelle-monitor) instead of publishing one; BRIDGE, SUBNET override the test network;
# NACELLE_LOG_LEVEL (default warn; info logs every rpc with its time in the daemon) and KEEP_LOG=FILE (the daemon's log
# is copied there at exit) compare builds by the daemon's own timings.
# Only 127.0.0.0/8 (the registry) and the test bridge are used; nothing is killed by name.

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
if [[ $(id -u) -ne 0 ]]; then
  echo "$0: run as root (pods need namespaces, cgroups, a bridge and iptables)" >&2
  exit 2
fi
for tool in /usr/sbin/runc /usr/lib/cni/bridge /usr/bin/busybox iptables ip; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing (scripts/install-deps.sh --test installs it)" >&2; exit 2; }
done

BRIDGE=${BRIDGE:-ncbench0}
SUBNET=${SUBNET:-10.77.0.0/16}   # not used by the tests (they use 10.88, 10.99, 10.213, 10.244, ...)
ART=${ARTIFACTS:-/tmp/nacelle-bench-cri}
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  echo "$0: the bridge $BRIDGE exists already (another benchmark running?); set BRIDGE= to use another name" >&2
  exit 2
fi

# Build: the daemon and its monitor as the release ships them (Native AOT), into a private directory.
if [[ -n ${NACELLE_DIR:-} ]]; then
  daemon_dir=$NACELLE_DIR
else
  daemon_dir=$ART/nacelle
  dotnet publish src/CriServer/Nacelle.CriServer.csproj -c Release -r linux-x64 -o "$daemon_dir" --artifacts-path "$ART/build" -v q -nologo
  dotnet publish src/Monitor/Nacelle.Monitor.csproj -c Release -r linux-x64 -o "$daemon_dir" --artifacts-path "$ART/build" -v q -nologo
fi
dotnet build bench/Cri/Nacelle.Bench.Cri.csproj -c Release --artifacts-path "$ART/build" -v q -nologo
bench_dll=$ART/build/bin/Nacelle.Bench.Cri/release/Nacelle.Bench.Cri.dll

work=$(mktemp -d /tmp/nacelle-bench-cri.XXXXXX)
cgroup_parent=/nacelle-bench-$$
ref_prefix=ncb$$
daemon_pid=
forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
guard=(FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP)
guard_back=(FORWARD -o "$BRIDGE" ! -i "$BRIDGE" -j DROP)

# Arguments every call of the benchmark program takes.
bench_args() {
  echo --socket "$work/nacelle.sock" --work "$work" --daemon-pid "$daemon_pid" --cni-conflist "$work/net.d/10-ncbench.conflist" \
    --cgroup-parent "$cgroup_parent" --ref-prefix "$ref_prefix" --registry-pid-file "$work/registry.pid"
}

alive() { [[ -n $1 && -d /proc/$1 ]]; }

# Teardown steps of references started next to the daemon (bench/reference/containerd.sh adds its own), run after the
# benchmark program's cleanup; arguments that program's cleanup needs to reach them.
cleanup_hooks=()
cleanup_args=()

cleanup() {
  local status=$? pid i
  set +e
  [[ -n ${KEEP_LOG:-} ]] && cp "$work/daemon.log" "$KEEP_LOG"
  trap - EXIT INT TERM
  # 1. Pods and containers through the daemon, the runc reference's containers and netns (the program's cleanup).
  if alive "$daemon_pid"; then
    timeout 180 dotnet "$bench_dll" cleanup $(bench_args) "${cleanup_args[@]}" || echo "cleanup: the benchmark's cleanup failed" >&2
    kill -TERM "$daemon_pid"
    for i in $(seq 300); do alive "$daemon_pid" || break; sleep 0.1; done
    alive "$daemon_pid" && kill -KILL "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null
  fi
  for hook in "${cleanup_hooks[@]}"; do "$hook"; done
  # 2. Anything still running that this run started: the registry by its recorded pid, pod monitors whose state
  #    directory is in $work, processes left in this run's cgroups.
  if [[ -f $work/registry.pid ]] && pid=$(cat "$work/registry.pid") && alive "$pid" \
      && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q docker-registry; then
    kill -KILL "$pid"
  fi
  for pid in $(grep -lsa -- "$work/" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [[ $pid != "$$" && $pid != "$BASHPID" ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q '^nacelle-monitor ' && kill -KILL "$pid"
  done
  for pid in $(cat /sys/fs/cgroup/*"$cgroup_parent"/{,*/,*/*/,*/*/*/}cgroup.procs 2>/dev/null | sort -u); do
    kill -KILL "$pid"
  done
  for i in $(seq 50); do
    [[ -z $(cat /sys/fs/cgroup/*"$cgroup_parent"/{,*/,*/*/,*/*/*/}cgroup.procs 2>/dev/null) ]] && break
    sleep 0.1
  done
  # 3. runc state, netns, mounts and files under $work, cgroups, the bridge, the guard, ip_forward as it was.
  if [[ -d $work/runc-state ]]; then
    for id in $(/usr/sbin/runc --root "$work/runc-state" list -q); do /usr/sbin/runc --root "$work/runc-state" delete --force "$id"; done
  fi
  for ns in $(ip netns list | awk '{print $1}' | grep "^$ref_prefix-"); do ip netns del "$ns"; done
  awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$work"
  find /sys/fs/cgroup/*"$cgroup_parent" -depth -type d -exec rmdir {} + 2>/dev/null
  ip link del "$BRIDGE" 2>/dev/null
  iptables -D "${guard[@]}" 2>/dev/null
  iptables -D "${guard_back[@]}" 2>/dev/null
  echo "$forward_before" >/proc/sys/net/ipv4/ip_forward
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The guard comes first: nothing in the bridge reaches the host's other interfaces, nothing reaches it from them.
iptables -I "${guard[@]}"
iptables -I "${guard_back[@]}"

mkdir -p "$work/net.d" "$work/logs"
cat >"$work/net.d/10-ncbench.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "ncbench",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$SUBNET" }]], "dataDir": "$work/ipam" }
    }
  ]
}
JSON
cat >"$work/config.toml" <<TOML
[metrics]
enabled = false

[cni]
conf_dir = "$work/net.d"
bin_dirs = ["/usr/lib/cni"]
TOML

"$daemon_dir/nacelle" --config "$work/config.toml" --socket "$work/nacelle.sock" --root "$work/root" --state "$work/state" \
  --log-level "${NACELLE_LOG_LEVEL:-warn}" >"$work/daemon.log" 2>&1 </dev/null &
daemon_pid=$!
for i in $(seq 600); do
  [[ -S $work/nacelle.sock ]] && break
  alive "$daemon_pid" || { echo "$0: nacelle exited:" >&2; cat "$work/daemon.log" >&2; exit 1; }
  sleep 0.1
done

# Runs the benchmark program (it waits until the daemon reports the network ready); prints the daemon's log on failure.
run_bench() {
  dotnet "$bench_dll" "$@" $(bench_args) || { echo "$0: the benchmark failed; daemon log:" >&2; tail -50 "$work/daemon.log" >&2; return 1; }
}
