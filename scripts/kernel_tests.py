"""Print the kernel-facing test files, one per line: the set that scripts/sanitize.sh (ASan + UBSan) and
scripts/build_matrix.sh (the clang build) run. Run with the venv's python (it reads the installed op contract).

Every op's own test file (named after ops/contract.py: test_rms_norm.py for RMSNorm, test_film.py for FiLM), then
the files that run the kernels in other ways: the contract and library checks, the per-op case table, the fuzzer,
concurrency and leaks, bad inputs to whole exported models, and the graph tests that run every kernel inside real
models (decode Loops, logits, codec, quantized). The rest of the suite (CLI, app, batch, web, the checkpoint
readers, the hub) runs no compiler-specific or sanitizer-relevant native code and runs on the plain GCC build
(scripts/test.sh, scripts/test_wheel.sh).
"""

from __future__ import annotations

import sys
from pathlib import Path

from vampnet_ort.ops.contract import CONTRACTS

KERNEL_FACING = ("test_contract", "test_library", "test_op_cases", "test_fuzz_ops", "test_concurrency_and_leaks",
                 "test_model_robustness", "test_export_decode", "test_export_logits", "test_codec", "test_quantize")


def main() -> int:
    tests = Path("tests")
    by_key = {p.stem[len("test_"):].replace("_", ""): p for p in tests.glob("test_*.py")}
    listed = []
    for contract in CONTRACTS:
        if contract.name.lower() not in by_key:
            print(f"kernel_tests: no tests/test_<op>.py for {contract.name}", file=sys.stderr)
            return 1
        listed.append(by_key[contract.name.lower()])
    for name in KERNEL_FACING:
        path = tests / f"{name}.py"
        if not path.is_file():
            print(f"kernel_tests: {path} is missing", file=sys.stderr)
            return 1
        listed.append(path)
    print("\n".join(str(p) for p in listed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
