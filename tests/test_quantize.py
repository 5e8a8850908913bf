"""Quantized (int8 / int4) transformer graphs: packing against numpy, logits within the documented tolerance of
float32 (docs/QUANTIZATION.md), with and without the op library; decode graphs reproducible and batch-invariant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import vampnet_ort
from vampnet_ort.export import load_checkpoint
from vampnet_ort.export.decode_graph import decode_graph
from vampnet_ort.export.quantize import (
    INT4_BLOCK_SIZE,
    QuantizeError,
    check_precision,
    dequantize_int4_blocks,
    dequantize_int8_columns,
    quantize_int4_blocks,
    quantize_int8_columns,
    balance_input_rows,
    smooth_gain_into_weight,
)
from vampnet_ort.export.random_checkpoint import random_vampnet_checkpoint, vampnet_kwargs
from vampnet_ort.export.vampnet_export import export_stage, logits_graph, logits_model
from quality_metrics import logits_metrics

from op_testing import GOLDEN

# Tolerances of a quantized logits graph against float32 (docs/QUANTIZATION.md, "Tolerances").
TOLERANCE = {
    "int8": {"rel": 0.06, "kl": 0.01, "argmax": 0.90},
    "int4": {"rel": 0.35, "kl": 0.25, "argmax": 0.55},
    "w8": {"rel": 0.025, "kl": 2e-3, "argmax": 0.95},
}
OP_OF = {"int8": "DynamicQuantizeMatMul", "int4": "MatMulNBits", "w8": "MatMulNBits"}
SMALL_COARSE = vampnet_kwargs(n_heads=4, n_layers=2, n_codebooks=4, embedding_dim=128)
SMALL_C2F = vampnet_kwargs(n_heads=4, n_layers=2, n_codebooks=14, n_conditioning_codebooks=4, embedding_dim=128)


# ---- packing ------------------------------------------------------------------------------------------------

def _matmul_model(node: onnx.NodeProto, initializers: list, k: int, n: int) -> bytes:
    graph = helper.make_graph(
        [node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "m", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "m", n])], initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("com.microsoft", 1)],
                              ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _run(model: bytes, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_int8_columns_round_trip():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((300, 70)).astype(np.float32) * rng.uniform(0.01, 3.0, 70).astype(np.float32)
    w[:, 5] = 0.0  # an all-zero column keeps a usable scale
    q, scale = quantize_int8_columns(w)
    assert q.dtype == np.int8 and scale.shape == (70,) and np.abs(q.astype(int)).max() == 127
    np.testing.assert_allclose(scale[6], np.abs(w[:, 6]).max() / 127, rtol=1e-6)
    assert np.all(np.abs(dequantize_int8_columns(q, scale) - w) <= scale / 2 * (1 + 1e-5))
    assert np.all(q[:, 5] == 0)


def test_dynamic_quantize_matmul_matches_numpy_integer_reference():
    """ORT's DynamicQuantizeMatMul on our int8 weights == numpy: activations quantized per tensor to uint8
    (DynamicQuantizeLinear's formula), integer GEMM, times a_scale * column scale."""
    rng = np.random.default_rng(1)
    k, n = 96, 40
    w = rng.standard_normal((k, n)).astype(np.float32)
    x = rng.standard_normal((2, 7, k)).astype(np.float32)
    q, scale = quantize_int8_columns(w)
    node = helper.make_node("DynamicQuantizeMatMul", ["x", "wq", "s"], ["y"], domain="com.microsoft")
    got = _run(_matmul_model(node, [numpy_helper.from_array(q, "wq"), numpy_helper.from_array(scale, "s")], k, n), x)
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    a_scale = np.float32((hi - lo) / 255.0)
    zero = np.clip(np.rint(-lo / a_scale), 0, 255)
    xq = np.clip(np.rint(x / a_scale) + zero, 0, 255)
    want = ((xq - zero) @ q.astype(np.float64)) * np.float64(a_scale) * scale
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())
    assert np.linalg.norm(got - x @ w) / np.linalg.norm(x @ w) < 0.02


@pytest.mark.parametrize("k", [64, 256, 200])
def test_int4_blocks_match_matmul_nbits(k: int):
    """Our packing read back in numpy == what MatMulNBits computes (accuracy_level 0: float activations)."""
    rng = np.random.default_rng(k)
    n = 48
    w = rng.standard_normal((k, n)).astype(np.float32)
    packed, scales = quantize_int4_blocks(w, INT4_BLOCK_SIZE)
    n_blocks = -(-k // INT4_BLOCK_SIZE)
    assert packed.shape == (n, n_blocks, INT4_BLOCK_SIZE // 2) and scales.shape == (n * n_blocks,)
    deq = dequantize_int4_blocks(packed, scales, k)
    assert deq.shape == (k, n)
    assert np.linalg.norm(deq - w) / np.linalg.norm(w) < 0.12  # 4-bit: ~8-10% on Gaussian weights
    x = rng.standard_normal((1, 5, k)).astype(np.float32)
    node = helper.make_node("MatMulNBits", ["x", "wq", "s"], ["y"], domain="com.microsoft", K=k, N=n, bits=4,
                            block_size=INT4_BLOCK_SIZE, accuracy_level=0)
    got = _run(_matmul_model(node, [numpy_helper.from_array(packed, "wq"), numpy_helper.from_array(scales, "s")],
                             k, n), x)
    np.testing.assert_allclose(got, x @ deq, rtol=1e-4, atol=1e-4 * np.abs(x @ deq).max())


def test_smoothing_keeps_the_function_and_shrinks_outliers():
    rng = np.random.default_rng(2)
    gain = rng.normal(1.0, 0.1, 64).astype(np.float32)
    gain[3] = 12.0  # an outlier activation channel
    w = rng.standard_normal((64, 48)).astype(np.float32)
    w[7] *= 10.0  # an outlier input row
    x = rng.standard_normal((5, 64)).astype(np.float32)
    g2, w2 = smooth_gain_into_weight(gain, w)
    np.testing.assert_allclose((x * g2) @ w2, (x * gain) @ w, rtol=1e-4, atol=1e-4)
    spread = lambda g, m: (np.abs(g) * np.abs(m).max(1)).max() / np.median(np.abs(g) * np.abs(m).max(1))  # noqa: E731
    assert np.abs(g2).max() / np.median(np.abs(g2)) < np.abs(gain).max() / np.median(np.abs(gain))
    assert np.abs(w2).max(1).max() / np.median(np.abs(w2).max(1)) < 10.0
    assert spread(g2, w2) == pytest.approx(spread(gain, w), rel=1e-4)
    # a row balance folded into the producing columns: (v / s) @ diag(s) W == v @ W
    v = rng.standard_normal((5, 64)).astype(np.float32)
    w3, s = balance_input_rows(w)
    np.testing.assert_allclose((v / s) @ w3, v @ w, rtol=1e-4, atol=1e-4)
    assert np.abs(w3).max(1).max() / np.median(np.abs(w3).max(1)) < np.abs(w).max(1).max() / np.median(np.abs(w).max(1))


def test_unknown_precision_is_an_error():
    assert check_precision("int8") == "int8"
    with pytest.raises(QuantizeError, match="unknown quantization 'int3'.*none, int8, int4"):
        check_precision("int3")


# ---- logits graphs ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def golden_codec():
    return load_checkpoint(GOLDEN / "codec.pth")


def _checkpoints(golden_codec):
    return {
        "golden_coarse": load_checkpoint(GOLDEN / "coarse.pth"),
        "golden_c2f": load_checkpoint(GOLDEN / "c2f.pth"),
        "small_coarse": random_vampnet_checkpoint(SMALL_COARSE, seed=5),
        "small_c2f": random_vampnet_checkpoint(SMALL_C2F, seed=6),
    }


@pytest.fixture(scope="module")
def checkpoints(golden_codec):
    return _checkpoints(golden_codec)


def _nodes(g: onnx.GraphProto):
    """Every node of `g` and of its subgraphs (Loop / Scan bodies)."""
    for node in g.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(attr.g)


def _linear_op_types(model: onnx.ModelProto) -> list[str]:
    found = []

    def visit(g: onnx.GraphProto) -> None:
        for node in g.node:
            if node.op_type in ("MatMul", "DynamicQuantizeMatMul", "MatMulNBits"):
                found.append(node.op_type)
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    visit(attr.g)

    visit(model.graph)
    return found


@pytest.mark.parametrize("quantize", ["int8", "int4", "w8"])
@pytest.mark.parametrize("name", ["golden_coarse", "golden_c2f", "small_coarse", "small_c2f"])
def test_logits_within_tolerance_of_float32(checkpoints, golden_codec, name: str, quantize: str):
    ckpt = checkpoints[name]
    c = ckpt.kwargs["n_codebooks"]
    codes = np.random.default_rng(3).integers(0, 1025, (2, c, 64)).astype(np.int64)
    reference = vampnet_ort.create_session(logits_model(ckpt, golden_codec).SerializeToString()).run(None, {"codes": codes})[0]
    model = logits_model(ckpt, golden_codec, quantize=quantize)
    onnx.checker.check_model(model, full_check=True)
    n_layers = ckpt.kwargs["n_layers"]
    assert _linear_op_types(model) == [OP_OF[quantize]] * (4 * n_layers + 1), "every linear (QKV, out, w_1, w_2, cls)"
    assert {p.key: p.value for p in model.metadata_props}["vampnet_ort.precision"] == quantize
    results = {}
    for with_library in (True, False):
        session = vampnet_ort.create_session(model.SerializeToString(), with_library=with_library)
        results[with_library] = session.run(None, {"codes": codes})[0]
        m = logits_metrics(reference, results[with_library])
        tol = TOLERANCE[quantize]
        assert m["rel"] < tol["rel"] and m["kl"] < tol["kl"] and m["argmax"] > tol["argmax"], (with_library, m)
    # the library and the inlined reference functions compute the same quantized model
    assert logits_metrics(results[True], results[False])["rel"] < 0.02


def test_quantized_logits_batch_invariant(checkpoints, golden_codec):
    """The per-item Scan: item b's logits do not depend on the other items (one activation scale per item)."""
    model = logits_model(checkpoints["small_coarse"], golden_codec, quantize="int8").SerializeToString()
    session = vampnet_ort.create_session(model)
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 1024, (3, 4, 50)).astype(np.int64)
    codes[1] = rng.integers(0, 1025, (4, 50)) // 3  # a very different item in the middle
    batch = session.run(None, {"codes": codes})[0]
    for b in range(3):
        np.testing.assert_array_equal(batch[b : b + 1], session.run(None, {"codes": codes[b : b + 1]})[0])


# ---- decode graphs ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["int8", "int4", "w8"])
def quantized_dir(request, tmp_path_factory, golden_codec) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp(f"decode_{request.param}")
    for stage in ("coarse", "c2f"):
        export_stage(out, stage, GOLDEN / f"{stage}.pth", golden_codec,
                     graphs={f"{stage}.onnx": decode_graph, f"{stage}_logits.onnx": logits_graph},
                     quantize=request.param)
    return request.param, out


def _feeds(stage: str, batch: int, t: int, seed: int, steps: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = 4 if stage == "coarse" else 14
    codes = rng.integers(0, 1024, size=(batch, c, t))
    mask = (rng.random((batch, c, t)) < 0.6).astype(np.int64)
    if stage == "c2f":
        mask[:, :4] = 0
    f32 = np.float32
    return {"codes": codes, "mask": mask, "seed": np.array(seed, np.int64), "num_steps": np.array(steps, np.int64),
            "temperature": np.array(1.0, f32), "mask_temperature": np.array(10.5, f32), "top_p": np.array(0.0, f32),
            "typical_mass": np.array(0.0, f32), "typical_min_tokens": np.array(64, np.int64),
            "sample_cutoff": np.array(1.0, f32)}


def test_decode_graph_is_quantized_and_checks(quantized_dir):
    quantize, out = quantized_dir
    onnx.checker.check_model(str(out / "coarse.onnx"), full_check=True)
    model = onnx.load(str(out / "coarse.onnx"), load_external_data=False)
    assert _linear_op_types(model) == [OP_OF[quantize]] * (4 * 3 + 1)
    assert "com.microsoft" in {o.domain for o in model.opset_import}
    assert {p.key: p.value for p in model.metadata_props}["vampnet_ort.precision"] == quantize
    # onnxruntime-web's JSEP WebGPU rejects MatMulNBits with a bias input: the bias is a separate Add (docs/WEB.md)
    for node in _nodes(model.graph):
        if node.op_type == "MatMulNBits":
            assert len(node.input) == 3, node.name
            bits = next(a.i for a in node.attribute if a.name == "bits")
            assert bits == {"int4": 4, "w8": 8}[quantize]
    # no float32 copy of a quantized weight is stored
    names = {t.name for t in model.graph.initializer}
    assert not any(n.endswith(("w_qkv", "w_out", "w_1", "w_2", "classifier.weight")) for n in names)


@pytest.mark.parametrize("stage", ["coarse", "c2f"])
def test_decode_reproducible_across_sessions_and_threads(quantized_dir, stage: str):
    _, out = quantized_dir
    feeds = _feeds(stage, 2, 33, seed=11)
    path = str(out / f"{stage}.onnx")
    first = vampnet_ort.create_session(path, intra_op_threads=2).run(None, feeds)[0]
    again = vampnet_ort.create_session(path, intra_op_threads=2).run(None, feeds)[0]
    one_thread = vampnet_ort.create_session(path, intra_op_threads=1).run(None, feeds)[0]
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, one_thread)
    mask = feeds["mask"]
    assert (first != feeds["codes"])[mask == 1].any()
    np.testing.assert_array_equal(first[mask == 0], feeds["codes"][mask == 0])
    without_library = vampnet_ort.create_session(path, with_library=False).run(None, feeds)[0]
    assert without_library.shape == first.shape  # stock ORT runs it (tokens may differ: docs/QUANTIZATION.md)
    np.testing.assert_array_equal(without_library[mask == 0], feeds["codes"][mask == 0])


def test_decode_batch_invariant(quantized_dir):
    """Item b of a batch with seed s == the item alone with seed s + b (docs/SPEC.md section 5)."""
    _, out = quantized_dir
    session = vampnet_ort.create_session(str(out / "c2f.onnx"))
    feeds = _feeds("c2f", 3, 21, seed=40, steps=3)
    batch = session.run(None, feeds)[0]
    for b in range(3):
        alone = {**feeds, "codes": feeds["codes"][b : b + 1], "mask": feeds["mask"][b : b + 1],
                 "seed": np.array(40 + b, np.int64)}
        np.testing.assert_array_equal(batch[b : b + 1], session.run(None, alone)[0])
