#!/usr/bin/env bash
# Build matrix on the host: GCC and clang (Debian's clang), each compiled with -Werror (zero warnings with the
# project's flags: -Wall -Wextra -Wpedantic -Wshadow), then the kernel-facing tests against the clang build
# installed in its own venv (.venv-clang): the kernel-facing tests that scripts/kernel_tests.py lists (every op's
# test file, the contract, the library, the case table, the fuzzer, concurrency, bad model inputs and the graph tests
# that run the kernels inside whole models). The rest of the suite (CLI, app, batch, web) runs no compiler-specific
# code and runs on the GCC build (scripts/test.sh, scripts/test_wheel.sh).
# VAMPNET_MATRIX_FULL=1 runs the whole suite on clang. Exits non-zero on any failure.
#   bash scripts/build_matrix.sh             # both compilers + the clang kernel tests
#   bash scripts/build_matrix.sh -k attention   # extra args go to pytest
# aarch64 is scripts/test_aarch64.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
log() { echo "[build_matrix $((SECONDS - start))s] $*" >&2; }
if ! command -v clang++ > /dev/null; then
  log "installing clang"
  DEBIAN_FRONTEND=noninteractive apt-get update -q > /dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang > /dev/null
fi

# clang: install into .venv-clang with -Werror (VAMPNET_REQUIRE_NATIVE: a failed native build fails here).
log "clang: $(clang++ --version | head -1)"
venv="$(CXX=clang++ VAMPNET_CMAKE_ARGS=-DVAMPNET_WERROR=ON VAMPNET_REQUIRE_NATIVE=1 VAMPNET_VENV=.venv-clang \
        bash scripts/setup_venv.sh test,export)"
"$venv/bin/python" -m pip install -q pybind11 >&2

# GCC: the same sources and flags with -Werror (a plain CMake build; scripts/test.sh runs the suite on GCC).
log "gcc: $(g++ --version | head -1)"
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
CXX=g++ cmake -S . -B build/matrix-gcc "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DVAMPNET_WERROR=ON \
  -DPython3_EXECUTABLE="$PWD/$venv/bin/python" > build/matrix-gcc.log
cmake --build build/matrix-gcc --parallel "${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" >> build/matrix-gcc.log ||
  { tail -40 build/matrix-gcc.log >&2; exit 1; }

if [ "${VAMPNET_MATRIX_FULL:-0}" = "1" ]; then
  tests=(tests)
else
  listed="$("$venv/bin/python" scripts/kernel_tests.py)"  # a failure of the listing fails the script (set -e)
  mapfile -t tests <<< "$listed"
fi
log "clang build: ${tests[*]}"
"$venv/bin/pytest" -q -p no:cacheprovider "${tests[@]}" "$@"
log "done"
