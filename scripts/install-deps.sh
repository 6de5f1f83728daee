#!/usr/bin/env bash
# Installs what nacelle needs on a Debian bookworm machine (run as root).
#   scripts/install-deps.sh          build and run: C toolchain and zlib for the Native AOT link
#   scripts/install-deps.sh --test   also what the test suites use as real parts (Prometheus, ...)
# The .NET 10 SDK must already be installed (`dotnet` on PATH); Debian does not package it.
set -euo pipefail

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: run as root (apt-get installs packages)" >&2
  exit 1
fi
if ! command -v dotnet >/dev/null 2>&1; then
  echo "install-deps: the .NET 10 SDK is required (dotnet not found on PATH)" >&2
  exit 1
fi

# gcc + libc6-dev: the static spawn helper (src/ContainerCore/native); clang + zlib: the Native AOT link;
# dpkg-dev + binutils: scripts/package.sh (dpkg-shlibdeps, strip, objcopy).
# libseccomp2: compiles seccomp profiles at run time (loaded by the monitor when it creates a container).
# libisal2: ISA-L's igzip, the layer gzip decoder (without it layers inflate with zlib-ng, about 1.5x slower).
packages=(gcc libc6-dev clang zlib1g-dev dpkg-dev binutils libseccomp2 libisal2)
if [[ $want_test -eq 1 ]]; then
  # runc: the benchmark's reference and the "runc" runtime handler of the handler tests; CNI plugins, iproute2, iptables: pod networking tests.
  # zstd: zstd-compressed test image layers.
  packages+=(prometheus docker-registry busybox-static apache2-utils runc containernetworking-plugins iproute2 iptables zstd)
  # seccomp tests: Go toolchains build static probes, python3 runs in a container, containerd (with runc) is the
  # reference RuntimeDefault the differential test compares with and the benchmarks' reference runtime.
  packages+=(golang-go golang-1.23-go python3 containerd)
  # lintian: the Debian package test.
  packages+=(lintian)
  # The systemd cgroup driver's tests run a real systemd (with dbus-daemon as its system bus) as PID 1 of their own
  # pid and mount namespaces; installing systemd does not make it this machine's init.
  packages+=(systemd dbus-daemon)
  # git: the upgrade test builds the previous release's programs from this clone's tag (git archive).
  packages+=(git)
  # The Helm chart test: Go and the Go libraries Helm renders with (its renderer is built from them), Node.js for the
  # Kubernetes schema (kubernetes-models from npm), python3-kubernetes's models for unknown fields, shellcheck.
  packages+=(golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev golang-github-burntsushi-toml-dev)
  packages+=(nodejs python3-kubernetes shellcheck)
  # Stream clients nacelle did not write: Go on the SPDY library Kubernetes uses (spdystream), and the Python
  # Kubernetes client's WebSocket streams (python3-kubernetes, above).
  packages+=(golang-github-docker-spdystream-dev)
  # Debian's npm, unless the installed nodejs brings its own (NodeSource's does, and conflicts with Debian's npm).
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

# Package installs must not start services (e.g. a system-wide Prometheus on :9090): tests start their own.
created_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { [[ $created_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d; return 0; }
trap cleanup EXIT

# golang-1.23-go (the seccomp tests' second Go toolchain) is only in bookworm-backports: a machine whose apt does not
# list that suite gets it added, as a file of ours, before the update. Nothing is taken from it unless asked for by name.
if [[ " ${missing[*]} " == *" golang-1.23-go "* ]] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' 'Components: main' \
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' > /etc/apt/sources.list.d/nacelle-bookworm-backports.sources
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
