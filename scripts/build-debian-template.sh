#!/bin/sh
# Builds a small Debian root filesystem (Debian's own packages, not the host's /usr) as a
# zstd-compressed tar with mmdebstrap, and optionally imports it as a Berth template.
#
#   scripts/build-debian-template.sh [-o OUT.tar.zst] [-s SUITE] [-m MIRROR] [-i PKG,PKG] [--import NAME]
#
#   -o  where the tar goes (default ./debian-SUITE.tar.zst)
#   -s  Debian suite (default: bookworm)
#   -m  mirror (default: the first Debian mirror in this host's apt sources, else deb.debian.org)
#   -i  extra packages (default: ca-certificates)
#   --import NAME  then run `berth template import NAME OUT` (needs BERTH_URL and an admin
#                  BERTH_API_KEY in the environment)
#
# Needs root (or a user namespace for mmdebstrap's unshare mode) and network access to the
# mirror only. Installs mmdebstrap with apt-get when it is missing and we are root.
set -eu

suite=bookworm
out=
mirror=
include=ca-certificates
import=

while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift 2 ;;
    -s) suite=$2; shift 2 ;;
    -m) mirror=$2; shift 2 ;;
    -i) include=$2; shift 2 ;;
    --import) import=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-debian-template: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
out=${out:-./debian-$suite.tar.zst}

if [ -z "$mirror" ]; then
  # deb822 (.sources) first, then one-line sources.list entries.
  mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$mirror" ] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing mmdebstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >&2
  else
    echo "build-debian-template: mmdebstrap is not installed (apt-get install mmdebstrap)" >&2
    exit 1
  fi
fi

echo "==> building Debian $suite from $mirror into $out" >&2
# minbase: Essential packages and apt. Docs, man pages and translations are left out to keep the
# template small; Berth adds the sandbox user, /workspace and its mount points at import.
mmdebstrap \
  --variant=minbase \
  --include="$include" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
  "$suite" "$out" "$mirror"
echo "==> $(du -h "$out" | cut -f1) $out" >&2

if [ -n "$import" ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  node "$here/packages/cli/dist/main.js" template import "$import" "$out"
fi
