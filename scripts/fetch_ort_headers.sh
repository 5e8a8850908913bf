#!/usr/bin/env bash
# Fetch ONNX Runtime's C/C++ headers from Debian's `libonnxruntime-dev` package and unpack only the headers.
#
# Usage: scripts/fetch_ort_headers.sh [DEST]      (DEST defaults to .ort-headers in the repo root)
# Prints the include directory on its last line.
#
# Uses apt with a private state directory and a private source list for Debian 13 "trixie", so the host's
# apt configuration is never changed and nothing is installed system-wide. Only Debian's archive is contacted.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/.ort-headers}"

if [ -f "$dest/include/onnxruntime_c_api.h" ]; then
  echo "$dest/include"
  exit 0
fi
command -v apt-get >/dev/null || { echo "fetch_ort_headers: apt-get not found; set ONNXRUNTIME_INCLUDE_DIR instead" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "fetch_ort_headers: dpkg-deb not found; set ONNXRUNTIME_INCLUDE_DIR instead" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc/preferences.d" "$work/etc/sources.list.d" "$work/dl"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed=""
[ -f "$keyring" ] && signed="Signed-By: $keyring"
cat > "$work/etc/trixie.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
$signed
SRC
apt_opts=(
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::Etc::SourceParts=$work/etc/sources.list.d"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=$work/etc/preferences.d"
  -o "Debug::NoLocking=1"
)
cp "$work/etc/trixie.sources" "$work/etc/sources.list.d/trixie.sources"
apt-get "${apt_opts[@]}" -qq update >&2
(cd "$work/dl" && apt-get "${apt_opts[@]}" -qq download libonnxruntime-dev >&2)
deb="$(ls "$work"/dl/libonnxruntime-dev_*.deb | head -n 1)"
dpkg-deb -x "$deb" "$work/root"
hdr="$(dirname "$(find "$work/root" -name onnxruntime_c_api.h | head -n 1)")"
[ -f "$hdr/onnxruntime_c_api.h" ] || { echo "fetch_ort_headers: no onnxruntime_c_api.h in $deb" >&2; exit 1; }
mkdir -p "$dest/include"
cp "$hdr"/*.h "$dest/include/"
echo "$(basename "$deb")" > "$dest/SOURCE"
echo "$dest/include"
