#!/usr/bin/env bash
# The artefact users install, tested from a clone that stands alone:
#   1. clone this repository's HEAD into a fresh temporary folder (nothing beside or above it: no shared/, no
#      build tree, no venv, no node_modules),
#   2. build the sdist and the manylinux wheel there (scripts/build_wheel.sh),
#   3. install the wheel into a fresh venv with binaries only (`--only-binary=:all:`: nothing is compiled; no
#      PyTorch, so the export path is proven torch-free),
#   4. run the whole test suite of that clone against the installed wheel.
# Extra arguments go to pytest. VAMPNET_WHEEL_TMP picks the parent folder (default: mktemp -d under /tmp).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="${VAMPNET_WHEEL_TMP:-$(mktemp -d /tmp/vampnet-wheel.XXXXXX)}"
clone="$tmp/vampnet-ort"
rm -rf "$clone" "$tmp/venv" "$tmp/dist"
git clone -q --no-local "$repo" "$clone"
p="$clone"
while [ "$p" != "/" ]; do
  p="$(dirname "$p")"
  [ ! -e "$p/shared" ] || { echo "test_wheel: $p/shared exists above the clone; set VAMPNET_WHEEL_TMP elsewhere" >&2; exit 1; }
done
cd "$clone"
wheel="$(bash scripts/build_wheel.sh "$tmp/dist")"
echo "test_wheel: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)" >&2
"${PYTHON:-python3}" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip >&2
"$tmp/venv/bin/python" -m pip install -q --only-binary=:all: "${wheel}[test]" >&2
bash scripts/install_browser.sh
# From the clone's root, with the tests importing the installed wheel (pytest's entry point keeps the source tree
# off sys.path).
exec "$tmp/venv/bin/pytest" -q tests -p no:cacheprovider "$@"
