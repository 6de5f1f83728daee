# Sourced by the benchmarks that compare nacelle with containerd (pull.sh, imagefs.sh, kubelet-load.sh, cri-ops.sh,
# memory.sh), after bench/cri-daemon.sh: starts Debian's containerd 1.6 as the reference runtime, with its CRI plugin on
# its own socket, root and state under this run's work directory ($work), and tears it down at exit (through
# cri-daemon.sh's cleanup hooks).
#
#   containerd_start            writes $work/containerd/config.toml, starts containerd, waits for its socket;
#                               sets CONTAINERD_SOCK, CONTAINERD_ROOT, CONTAINERD_CERTS (its registry config_path)
#   containerd_args             the benchmark program's arguments naming it (socket, root, registry config, pid)
#   reference_start             containerd_start and reference_args=(containerd_args), or nothing with CONTAINERD=0
#
# Its configuration: overlayfs snapshotter, runc (io.containerd.runc.v2 shim, cgroupfs), 3 concurrent downloads (the
# same default as nacelle), the CNI conf dir of the nacelle daemon under test (the test bridge, ipMasq false, the
# iptables FORWARD guard), registry hosts from $CONTAINERD_CERTS/<host>/hosts.toml (the benchmark program writes them
# for the loopback registry: plain HTTP), and sandbox_image "bench.invalid/pause:3.9", a name the program maps to the
# loopback registry, where it pushes a busybox image (`sleep` as the pause process: containerd's real pause image is a
# tiny static binary; pulls of it are not timed). Nothing listens on TCP but the CRI streaming server on 127.0.0.1.
# Teardown, whatever happened: containerd by its pid (TERM, then KILL), its shims by pid (their command line names
# this run's socket), mounts under $work (cri-daemon.sh), network namespaces it created, its cgroups.

containerd_pid=
containerd_netns_before=
CONTAINERD_DIR=$work/containerd
CONTAINERD_SOCK=$CONTAINERD_DIR/containerd.sock
CONTAINERD_ROOT=$CONTAINERD_DIR/root
CONTAINERD_CERTS=$CONTAINERD_DIR/certs.d

containerd_start() {
  command -v containerd >/dev/null || { echo "$0: containerd is missing (scripts/install-deps.sh --test installs it)" >&2; exit 2; }
  mkdir -p "$CONTAINERD_DIR" "$CONTAINERD_CERTS"
  cat >"$CONTAINERD_DIR/config.toml" <<TOML
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[debug]
  address = ""
  level = "warn"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_DIR/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "bench.invalid/pause:3.9"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  max_concurrent_downloads = 3
  restrict_oom_score_adj = true
  disable_apparmor = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$work/net.d"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CONTAINERD_CERTS"
TOML
  containerd_netns_before=$(ls /var/run/netns 2>/dev/null | sort)
  containerd --config "$CONTAINERD_DIR/config.toml" >"$CONTAINERD_DIR/containerd.log" 2>&1 </dev/null &
  containerd_pid=$!
  cleanup_hooks+=(containerd_cleanup)
  cleanup_args+=($(containerd_args))
  local i
  for i in $(seq 300); do
    [[ -S $CONTAINERD_SOCK ]] && return 0
    alive "$containerd_pid" || { echo "$0: containerd exited:" >&2; cat "$CONTAINERD_DIR/containerd.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "$0: containerd did not open $CONTAINERD_SOCK within 30 s" >&2
  tail -20 "$CONTAINERD_DIR/containerd.log" >&2
  exit 1
}

# The reference, unless CONTAINERD=0 (nacelle alone: a quick comparison of two builds through NACELLE_DIR, or a long run
# of one): starts containerd and sets reference_args to the arguments the benchmark program needs to reach it.
reference_start() {
  reference_args=()
  if [[ ${CONTAINERD:-1} != 0 ]]; then
    containerd_start
    read -ra reference_args <<<"$(containerd_args)"
  fi
}

containerd_args() {
  echo --containerd-socket "$CONTAINERD_SOCK" --containerd-root "$CONTAINERD_ROOT" --containerd-certs "$CONTAINERD_CERTS" \
    --containerd-pid "$containerd_pid"
}

containerd_cleanup() {
  local pid i ns
  if [[ -n ${containerd_pid:-} ]] && ! alive "$containerd_pid"; then
    # It ended on its own (an hour-long run lost its reference so): say why before its directory goes.
    echo "$0: containerd (pid $containerd_pid) had exited before the cleanup; the end of its log:" >&2
    tail -n 40 "$CONTAINERD_DIR/containerd.log" >&2 2>/dev/null
  fi
  if alive "$containerd_pid"; then
    kill -TERM "$containerd_pid"
    for i in $(seq 100); do alive "$containerd_pid" || break; sleep 0.1; done
    alive "$containerd_pid" && kill -KILL "$containerd_pid"
    wait "$containerd_pid" 2>/dev/null
  fi
  # Shims outlive containerd by design: this run's are those started with its socket as their -address.
  for pid in $(grep -lsa -- "$CONTAINERD_SOCK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [[ $pid != "$$" && $pid != "$BASHPID" ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q '^/usr/bin/containerd-shim' \
      && kill -KILL "$pid"
  done
  # Network namespaces the CRI plugin made (cni-<uuid> under /var/run/netns) and did not remove.
  for ns in $(comm -13 <(echo "$containerd_netns_before") <(ls /var/run/netns 2>/dev/null | sort) | grep '^cni-'); do
    ip netns del "$ns" 2>/dev/null
  done
  return 0
}
