#!/usr/bin/env bash
# Builds the Debian package artifacts/nacelle_<version>_amd64.deb from the Native AOT build (scripts/build.sh's
# artifacts/nacelle/) and the files in deploy/: the binaries in /usr/lib/nacelle (nacelle also as /usr/bin/nacelle),
# the systemd unit, the node configuration as a conffile, the man page, copyright and changelog, and the maintainer
# scripts. The version is Directory.Build.props' <Version> plus the Debian revision of deploy/debian/changelog's
# first entry, which must name that version. Depends is computed: dpkg-shlibdeps for the libraries the executables
# link, plus the libraries they load at run time (dlopen) that they name.
#   scripts/package.sh [--no-build] [--output DIR]
# Needs dpkg-dev (dpkg-shlibdeps) and binutils (strip); no root (dpkg-deb --root-owner-group).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

build=1
output=artifacts
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) build=0 ;;
    --output) output=$2; shift ;;
    *) echo "usage: scripts/package.sh [--no-build] [--output DIR]" >&2; exit 2 ;;
  esac
  shift
done

if [[ $build -eq 1 ]]; then
  bash scripts/build.sh
fi

bin=artifacts/nacelle
for f in nacelle nacelle-monitor nacelle-spawn nacelle-pause libe_sqlite3.so; do
  [[ -f $bin/$f ]] || { echo "package: $bin/$f is missing; run scripts/build.sh" >&2; exit 1; }
done

# One version: MSBuild's (Directory.Build.props), and the changelog's first entry must be for it.
upstream=$(dotnet msbuild src/CriServer/Nacelle.CriServer.csproj -getProperty:Version)
version=$(sed -n '1s/^nacelle (\([^)]*\)).*/\1/p' deploy/debian/changelog)
if [[ ${version%-*} != "$upstream" ]]; then
  echo "package: deploy/debian/changelog's first entry is $version, but the version is $upstream: add an entry for $upstream-1" >&2
  exit 1
fi
built=$("$bin/nacelle" version)
if [[ $built != "nacelle $upstream"* ]]; then
  echo "package: $bin/nacelle is '$built', not version $upstream: rebuild it" >&2
  exit 1
fi
changelog_date=$(sed -n 's/^ -- .*>  \(.*\)$/\1/p' deploy/debian/changelog | head -n 1)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
install -d -m 0755 "$root"/DEBIAN "$root"/usr/lib/nacelle "$root"/usr/bin "$root"/lib/systemd/system "$root"/etc/nacelle \
  "$root"/usr/share/doc/nacelle "$root"/usr/share/man/man8 "$root"/usr/share/lintian/overrides

# Executables. The Native AOT ones are published stripped (their symbols are in *.dbg, not shipped); the two static
# C helpers and the SQLite library are stripped here.
install -m 0755 "$bin"/nacelle "$bin"/nacelle-monitor "$root"/usr/lib/nacelle/
install -m 0755 "$bin"/nacelle-spawn "$bin"/nacelle-pause "$root"/usr/lib/nacelle/
install -m 0644 "$bin"/libe_sqlite3.so "$root"/usr/lib/nacelle/
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root"/usr/lib/nacelle/nacelle-spawn \
  "$root"/usr/lib/nacelle/nacelle-pause "$root"/usr/lib/nacelle/libe_sqlite3.so
# The compiler's identification strings; the build id stays, so the *.dbg files still match.
objcopy --remove-section=.comment "$root"/usr/lib/nacelle/nacelle
objcopy --remove-section=.comment "$root"/usr/lib/nacelle/nacelle-monitor
ln -s ../lib/nacelle/nacelle "$root"/usr/bin/nacelle

install -m 0644 deploy/systemd/nacelle.service "$root"/lib/systemd/system/nacelle.service
# The node configuration: the embedded defaults, commented (a unit test keeps deploy/config/config.toml equal to
# `nacelle config default`), which leave pod networking to the cluster.
install -m 0644 deploy/config/config.toml "$root"/etc/nacelle/config.toml
echo /etc/nacelle/config.toml > "$root"/DEBIAN/conffiles

install -m 0644 deploy/debian/copyright "$root"/usr/share/doc/nacelle/copyright
gzip -9n -c deploy/debian/changelog > "$root"/usr/share/doc/nacelle/changelog.Debian.gz
sed -e "s/@VERSION@/$upstream/" -e "s/@DATE@/$(date -u -d "$changelog_date" +%Y-%m-%d)/" deploy/debian/nacelle.8 \
  | gzip -9n > "$root"/usr/share/man/man8/nacelle.8.gz
install -m 0644 deploy/debian/lintian-overrides "$root"/usr/share/lintian/overrides/nacelle
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root"/DEBIAN/

# Depends, part 1: the shared libraries the ELF files link (dpkg-shlibdeps reads them from a debian/control it needs).
mkdir -p "$stage"/debian
printf 'Source: nacelle\n\nPackage: nacelle\nArchitecture: amd64\n' > "$stage"/debian/control
# libe_sqlite3.so uses libm's functions without linking libm; the daemon that loads it links libm, so dpkg-shlibdeps'
# "unresolvable reference ... probably a plugin" warnings about it are expected and dropped.
linked=$(cd "$stage" && dpkg-shlibdeps -O root/usr/lib/nacelle/nacelle root/usr/lib/nacelle/nacelle-monitor \
  root/usr/lib/nacelle/libe_sqlite3.so 2> >(grep -v -e 'libe_sqlite3.so contains an unresolvable reference' \
  -e 'other similar warnings have been skipped' >&2) | sed -n 's/^shlibs:Depends=//p')

# Depends, part 2: libraries the executables load with dlopen, which dpkg-shlibdeps cannot see. Each is listed with
# why; it becomes a dependency when an executable names it, with the version its shlibs file declares.
#   libssl.so.3     .NET's TLS (HTTPS to registries, OTLP over TLS)
#   libseccomp.so.2 seccomp profile compilation
# (Not listed: libgssapi_krb5.so.2, which .NET loads only for Kerberos HTTP authentication, which registries do not use.)
loaded=()
for soname in libssl.so.3 libseccomp.so.2; do
  if grep -qaF "$soname" "$bin"/nacelle "$bin"/nacelle-monitor; then
    path=$(ldconfig -p | awk -v s="$soname" '$1 == s && /x86-64/ { print $NF; exit }')
    [[ -n $path ]] || { echo "package: $soname is loaded by nacelle but not installed here" >&2; exit 1; }
    pkg=$(dpkg -S "$(readlink -f "$path")" | head -n 1 | cut -d: -f1)
    shlibs=$(cat /var/lib/dpkg/info/"$pkg":amd64.shlibs /var/lib/dpkg/info/"$pkg".shlibs 2>/dev/null || true)
    dep=$(awk -v lib="${soname%%.so*}" -v ver="${soname##*.so.}" '$1 == lib && $2 == ver { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' <<<"$shlibs")
    loaded+=("${dep:-$pkg}")
  fi
done
depends=$(IFS=,; echo "$linked${loaded:+,${loaded[*]}}" | sed 's/,\([^ ]\)/, \1/g')

# Installed-Size in KiB, counting what dpkg will install.
size=$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@DEPENDS@/$depends/" -e "s/@INSTALLED_SIZE@/$size/" deploy/debian/control > "$root"/DEBIAN/control
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$root"/DEBIAN/control "$root"/DEBIAN/conffiles "$root"/DEBIAN/md5sums

# Reproducible: every file dated by the changelog entry (dpkg-deb also reads SOURCE_DATE_EPOCH for the archive).
export SOURCE_DATE_EPOCH
SOURCE_DATE_EPOCH=$(date -u -d "$changelog_date" +%s)
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$output"
deb="$output/nacelle_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "built $deb (Depends: $depends)"
