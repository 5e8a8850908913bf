"""Print the kernel-facing test files, one per line: the set that scripts/sanitize.sh (ASan + UBSan) and
scripts/build_matrix.sh (the clang build) run; with --ops, the op-level subset scripts/test_aarch64.sh runs under
qemu. Any python runs it: the op contract is read from the checkout's ops/contract.py (standard library only).

Every op's own test file (named after ops/contract.py: test_rms_norm.py for RMSNorm, test_film.py for FiLM), then
the files that run the kernels in other ways: the contract and library checks, the per-op case table, the fuzzer,
concurrency and leaks, bad inputs to whole exported models, and the graph tests that run every kernel inside real
models (decode Loops, logits, codec, quantized, the int8 codec decoder). The rest of the suite (CLI, app, batch, web, the checkpoint
readers, the hub) runs no compiler-specific or sanitizer-relevant native code and runs on the plain GCC build
(scripts/test.sh, scripts/test_wheel.sh).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OP_LEVEL = ("test_contract", "test_library", "test_op_cases")
KERNEL_FACING = OP_LEVEL + ("test_fuzz_ops", "test_concurrency_and_leaks", "test_model_robustness",
                            "test_export_decode", "test_export_logits", "test_codec", "test_quantize",
                            "test_quantize_codec")


def op_contracts() -> list:
    spec = importlib.util.spec_from_file_location("vampnet_op_contract", REPO / "ops" / "contract.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return list(module.CONTRACTS)


def main() -> int:
    ops_only = sys.argv[1:] == ["--ops"]
    if sys.argv[1:] and not ops_only:
        print("usage: kernel_tests.py [--ops]", file=sys.stderr)
        return 2
    tests = REPO / "tests"
    by_key = {p.stem[len("test_"):].replace("_", ""): p for p in tests.glob("test_*.py")}
    listed = []
    for contract in op_contracts():
        if contract.name.lower() not in by_key:
            print(f"kernel_tests: no tests/test_<op>.py for {contract.name}", file=sys.stderr)
            return 1
        listed.append(by_key[contract.name.lower()])
    for name in OP_LEVEL if ops_only else KERNEL_FACING:
        path = tests / f"{name}.py"
        if not path.is_file():
            print(f"kernel_tests: {path} is missing", file=sys.stderr)
            return 1
        listed.append(path)
    print("\n".join(str(p.relative_to(REPO)) for p in listed))  # the scripts run pytest from the root
    return 0


if __name__ == "__main__":
    sys.exit(main())
