#!/usr/bin/env bash
# Build vampnet-ort for aarch64 and run the op tests on it under qemu user-mode emulation. Does all its own set-up:
#   1. Debian packages (apt-get, needs root): g++-aarch64-linux-gnu, qemu-user-static, debootstrap
#   2. an arm64 Debian root with python3 + its headers (debootstrap, first stage only: packages are unpacked, no
#      maintainer scripts run, so no binfmt_misc or chroot is needed)
#   3. the aarch64 wheels of the test dependencies from PyPI (onnxruntime, numpy, onnx, onnxscript, scipy, ...)
#   4. the package itself cross-compiled (setup.py with CMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake,
#      -DVAMPNET_WERROR=ON) into a staging directory
#   5. pytest on tests/test_<op>.py + test_op_cases.py + test_contract.py + test_library.py (scripts/kernel_tests.py
#      --ops), run by the arm64 python under
#      qemu-aarch64-static (including the thread-count determinism tests)
# Exits non-zero on any failure. Work files: build/aarch64/ (kept: a second run reuses the root and the wheels).
#   bash scripts/test_aarch64.sh            # the op tests
#   bash scripts/test_aarch64.sh -k snake   # extra args go to pytest
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
work="$repo/build/aarch64"
root="$work/root"
site="$work/site-packages"
stage="$work/stage"
suite="${VAMPNET_AARCH64_SUITE:-bookworm}"
mirror="${VAMPNET_AARCH64_MIRROR:-http://deb.debian.org/debian}"
start=$SECONDS
log() { echo "[test_aarch64 $((SECONDS - start))s] $*" >&2; }

# ---- 1. host tools -----------------------------------------------------------------------------------------------
missing=()
command -v aarch64-linux-gnu-g++ > /dev/null || missing+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64-static > /dev/null || missing+=(qemu-user-static)
command -v debootstrap > /dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q > /dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" > /dev/null
fi

# ---- 2. arm64 root with python3 ----------------------------------------------------------------------------------
if [ ! -f "$root/.vampnet-ready" ]; then
  log "debootstrap $suite arm64 into $root"
  rm -rf "$root"
  mkdir -p "$work"
  debootstrap --foreign --arch=arm64 --variant=minbase --include=python3,python3-dev "$suite" "$root" "$mirror" \
    > "$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # --foreign unpacks only the essential packages; unpack every downloaded one (no maintainer scripts needed to
  # run python3 under qemu -L).
  for deb in "$root"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$root"; done
  touch "$root/.vampnet-ready"
fi
python_arm="$(cd "$root/usr/bin" && ls python3.[0-9]* | grep -E '^python3\.[0-9]+$' | sort -V | tail -1)"
pyver="${python_arm#python}"
pytag="cp${pyver/./}"
run_arm() { QEMU_LD_PREFIX="$root" qemu-aarch64-static -L "$root" "$root/usr/bin/$python_arm" "$@"; }
log "arm64 $(run_arm -c 'import platform, sys; print(platform.machine(), sys.version.split()[0])')"

# ---- 3. aarch64 wheels of the test dependencies --------------------------------------------------------------------
# onnxruntime is pinned: the aarch64 wheels of 1.30 and later crash on import under Debian bookworm's qemu 7.2
# (signal 11 at start-up, before any vampnet code runs); 1.20 - 1.26 import and run fine. Override with
# VAMPNET_AARCH64_ORT=onnxruntime==X under a newer qemu.
deps=(numpy "${VAMPNET_AARCH64_ORT:-onnxruntime==1.26.0}" onnx onnxscript pytest hypothesis scipy)
if [ ! -f "$site/.vampnet-ready" ]; then
  log "installing aarch64 wheels for $pytag: ${deps[*]}"
  rm -rf "$site"
  python3 -m pip install -q --disable-pip-version-check --target "$site" --only-binary=:all: \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux2014_aarch64 \
    --python-version "$pyver" --implementation cp --abi "$pytag" "${deps[@]}" > "$work/pip-deps.log" 2>&1 ||
    { grep -v "^WARNING: Location" "$work/pip-deps.log" | tail -30 >&2; exit 1; }
  PYTHONPATH="$site" run_arm -c "import numpy, onnxruntime, onnx, onnxscript, pytest, hypothesis, scipy"
  touch "$site/.vampnet-ready"
fi

# ---- 4. cross-compile and stage the package ------------------------------------------------------------------------
log "cross-compiling with $(aarch64-linux-gnu-g++ --version | head -1)"
rm -rf "$stage"
pyinc="$root/usr/include/$python_arm"
[ -f "$pyinc/Python.h" ] || { echo "test_aarch64: no $pyinc/Python.h in the arm64 root" >&2; exit 1; }
# Python.h includes <aarch64-linux-gnu/python3.X/pyconfig.h>: give the compiler just that directory of the root
# (not all of its /usr/include, whose libc headers are the cross compiler's business).
mkdir -p "$work/pyconfig/aarch64-linux-gnu"
ln -sfn "$root/usr/include/aarch64-linux-gnu/$python_arm" "$work/pyconfig/aarch64-linux-gnu/$python_arm"
export CMAKE_TOOLCHAIN_FILE="$repo/cmake/aarch64-linux-gnu.cmake"
export VAMPNET_REQUIRE_NATIVE=1
export VAMPNET_CMAKE_ARGS="-DVAMPNET_WERROR=ON -DPython3_INCLUDE_DIR=$pyinc -DCMAKE_CXX_FLAGS=-I$work/pyconfig \
  -DPYTHON_MODULE_EXTENSION=.cpython-${pyver/./}-aarch64-linux-gnu.so"
python3 -m pip install -q --disable-pip-version-check --no-deps --target "$stage" . > "$work/pip-build.log" 2>&1 ||
  { grep -v "^WARNING: Location" "$work/pip-build.log" | tail -40 >&2; exit 1; }
file_out="$(file -b "$stage"/vampnet_ort/libvampnet_ort_ops.so 2>/dev/null || true)"
case "$file_out" in
  *aarch64*) log "staged: $file_out" ;;
  *) echo "test_aarch64: the staged op library is not an aarch64 build: '${file_out:-missing}'" >&2; exit 1 ;;
esac

# ---- 5. the op tests under emulation -------------------------------------------------------------------------------
listed="$(python3 scripts/kernel_tests.py --ops)"  # every op's tests + contract, library, case table
mapfile -t tests <<< "$listed"
log "pytest under qemu-aarch64: ${tests[*]}"
# Left out: the tests that read the .pth golden checkpoints, which needs PyTorch (not installed in the arm64 root;
# the x86 suite runs them). Everything else of these files runs, the thread-count determinism tests included.
needs_torch="not test_golden_embedding and not test_bias_through_the_op_matches_golden"
needs_torch+=" and not test_layer_attention_reproduces_upstream_residual_stream"
status=0
# -P: the source tree (cwd) must not shadow the staged package.
PYTHONPATH="$stage:$site" run_arm -P -m pytest -q -p no:cacheprovider -k "$needs_torch" "${tests[@]}" "$@" ||
  status=$?
log "done (exit $status)"
exit $status
