#!/usr/bin/env bash
# The README's main command. Until the vamp pipeline lands this is an op-level demo: it installs vampnet-ort
# into .venv and runs every registered op through ONNX Runtime with the native library and with the
# model-local reference functions only, printing the agreement.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="$(bash scripts/setup_venv.sh)"
cd /tmp
exec "$venv/bin/python" - <<'PY'
import numpy as np
from onnx import TensorProto as TP
import vampnet_ort
from vampnet_ort import ops

rng = np.random.default_rng(0)
cases = {
    "RMSNorm": ([("X", TP.FLOAT, ["B", "T", 64]), ("scale", TP.FLOAT, [64])],
                {"X": rng.standard_normal((2, 37, 64)).astype(np.float32), "scale": np.ones(64, np.float32)}),
    "FiLM": ([("X", TP.FLOAT, ["B", "T", 64]), ("gamma", TP.FLOAT, ["B", 64]), ("beta", TP.FLOAT, ["B", 64])],
             {"X": rng.standard_normal((2, 37, 64)).astype(np.float32),
              "gamma": rng.standard_normal((2, 64)).astype(np.float32),
              "beta": rng.standard_normal((2, 64)).astype(np.float32)}),
    "CodebookEmbedding": ([("codes", TP.INT64, ["B", 4, "T"]), ("tables", TP.FLOAT, [4, 1025, 64]),
                           ("bias", TP.FLOAT, [64])],
                          {"codes": rng.integers(0, 1025, (2, 4, 37)),
                           "tables": rng.standard_normal((4, 1025, 64)).astype(np.float32),
                           "bias": np.zeros(64, np.float32)}),
}
print(f"vampnet-ort {vampnet_ort.__version__}; op library: {vampnet_ort.get_library_path()}")
for name, (inputs, feeds) in cases.items():
    model = ops.single_op_model(name, inputs, [("Y", TP.FLOAT, ["B", "T", 64])])
    native = vampnet_ort.create_session(model.SerializeToString()).run(None, feeds)[0]
    reference = vampnet_ort.create_session(model.SerializeToString(), with_library=False).run(None, feeds)[0]
    print(f"{name:18s} output {list(native.shape)}  max |kernel - reference function| = {np.abs(native - reference).max():.2e}")
PY
