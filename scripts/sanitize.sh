#!/usr/bin/env bash
# Build vampnet-ort with AddressSanitizer + UndefinedBehaviorSanitizer into .venv-asan and run the op tests
# under it. Any sanitizer report aborts the run (non-zero exit). Extra args go to pytest.
#   bash scripts/sanitize.sh                 # all op tests
#   bash scripts/sanitize.sh -k attention    # a subset
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# A failed native build must fail here, not fall back to the pure-Python package (docs/DEVELOPING.md).
export VAMPNET_REQUIRE_NATIVE=1
export VAMPNET_VENV="${VAMPNET_ASAN_VENV:-.venv-asan}"
export VAMPNET_SANITIZE=1
venv="$(bash scripts/setup_venv.sh test,export)"
# The kernel-facing tests (scripts/kernel_tests.py, the same set build_matrix.sh runs on clang): every op's tests,
# the case table, the fuzzer, concurrency and leaks, bad inputs to whole models, and the decode/logits/codec/quantized
# graph tests. The rest of the suite runs no native path these do not (CLI, app, batch, web, checkpoint readers)
# and is left to the plain runs (a wider selection, 547 tests, took 22 min of pytest under ASan on 2 cores).
listed="$("$venv/bin/python" scripts/kernel_tests.py)"  # a failure of the listing fails the script (set -e)
mapfile -t tests <<< "$listed"
# The Python interpreter is not instrumented: preload the sanitizer runtimes so they initialise first.
# Leak checking is off here (CPython itself keeps allocations until exit); see docs for the leak checks.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:verify_asan_link_order=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc
# --capture=sys: pytest captures Python's sys.stdout/stderr only, so a sanitizer report (written to fd 2 by the C
# runtime just before it aborts the process) reaches the terminal instead of a capture file lost with the process.
exec "$venv/bin/pytest" -q -p no:cacheprovider --capture=sys "${tests[@]}" "$@"
