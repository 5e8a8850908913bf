"""The decode graphs (coarse.onnx / c2f.onnx): upstream's deterministic generate runs token for token, batch and
seed semantics, edge cases, and agreement with the host-driven loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import vampnet_ort
from vampnet_ort.export import load_checkpoint
from vampnet_ort.export.decode_graph import decode_graph
from host_decoder import HostDecoder
from vampnet_ort.export.vampnet_export import export_stage, logits_graph

from op_testing import GOLDEN, golden

MASK = 1024
DETERMINISTIC_RUNS = ["coarse_b1", "coarse_b1_typical", "coarse_b1_S1", "coarse_b1_temp0p8", "c2f_b1",
                      "c2f_b1_condmasked"]
BATCH_RUNS = ["coarse_b2", "c2f_b2_masknone"]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("decode")
    codec = load_checkpoint(GOLDEN / "codec.pth")
    for stage in ("coarse", "c2f"):
        export_stage(out, stage, GOLDEN / f"{stage}.pth", codec,
                     graphs={f"{stage}.onnx": decode_graph, f"{stage}_logits.onnx": logits_graph})
    return out


_SESSIONS: dict = {}


def session(bundle_dir: Path, stage: str, with_library: bool = True, threads: int = 2):
    key = (str(bundle_dir), stage, with_library, threads)
    if key not in _SESSIONS:
        _SESSIONS[key] = vampnet_ort.create_session(str(bundle_dir / f"{stage}.onnx"), with_library=with_library,
                                                    intra_op_threads=threads)
    return _SESSIONS[key]


def settings(num_steps: int, *, seed: int = 0, temperature: float = 1.0, mask_temperature: float = 10.5,
             sample_cutoff: float = 1.0, top_p: float = 0.0, typical_mass: float = 0.0) -> dict[str, np.ndarray]:
    f32 = np.float32
    return {
        "seed": np.array(seed, np.int64), "num_steps": np.array(num_steps, np.int64),
        "temperature": np.array(temperature, f32), "mask_temperature": np.array(mask_temperature, f32),
        "top_p": np.array(top_p, f32), "typical_mass": np.array(typical_mass, f32),
        "typical_min_tokens": np.array(64, np.int64), "sample_cutoff": np.array(sample_cutoff, f32),
    }


def golden_run(run: str) -> tuple[str, dict[str, np.ndarray], np.ndarray]:
    """(stage, feeds, upstream output) of one generate.npz run (deterministic settings)."""
    gen = golden("generate.npz")
    stage = run.split("_")[0]
    start = gen[f"{run}__start_tokens"]
    if f"{run}__mask" in gen.files:
        mask = gen[f"{run}__mask"]
    else:  # mask=None: upstream's default mask, all ones but the conditioning codebooks
        mask = np.ones_like(start)
        mask[:, :4] = 0
    steps = gen[f"{run}__trace_codes_in"].shape[0]
    feeds = {"codes": start, "mask": mask, **settings(steps, temperature=0.8 if "temp0p8" in run else 1.0,
                                                      mask_temperature=0.0, sample_cutoff=-1.0)}
    return stage, feeds, gen[f"{run}__output"]


def decode(bundle_dir: Path, stage: str, feeds: dict, with_library: bool = True, threads: int = 2) -> np.ndarray:
    return session(bundle_dir, stage, with_library, threads).run(None, feeds)[0]


def test_decode_model_interface(bundle_dir: Path):
    onnx.checker.check_model(str(bundle_dir / "coarse.onnx"), full_check=True)
    model = onnx.load(str(bundle_dir / "c2f.onnx"), load_external_data=False)
    inputs = {i.name: (i.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
              for i in model.graph.input}
    f, i64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    assert inputs == {
        "codes": (i64, ["batch", 14, "time"]), "mask": (i64, ["batch", 14, "time"]), "seed": (i64, []),
        "num_steps": (i64, []), "temperature": (f, []), "mask_temperature": (f, []), "top_p": (f, []),
        "typical_mass": (f, []), "typical_min_tokens": (i64, []), "sample_cutoff": (f, []),
    }
    assert [o.name for o in model.graph.output] == ["codes_out"]
    (loop,) = [n for n in model.graph.node if n.op_type == "Loop"]
    body = loop.attribute[0].g
    assert not body.initializer, "weights must be outer-scope initializers, not copied into the loop body"
    assert {n.op_type for n in body.node} >= {"CodebookEmbedding", "RelativePositionAttention", "PhiloxUniform",
                                              "SampleAndRemask"}
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["vampnet_ort.graph"] == "decode"
    # the decode and logits graphs share one external-data file
    assert {t.external_data[0].value for t in model.graph.initializer if t.external_data} == {"c2f.onnx.data"}


@pytest.mark.parametrize("with_library", [True, False], ids=["kernels", "reference"])
@pytest.mark.parametrize("run", DETERMINISTIC_RUNS)
def test_golden_generate_token_for_token(bundle_dir: Path, run: str, with_library: bool):
    stage, feeds, expected = golden_run(run)
    np.testing.assert_array_equal(decode(bundle_dir, stage, feeds, with_library), expected)


@pytest.mark.parametrize("run", ["coarse_b1", "c2f_b1_condmasked"])
def test_host_decoder_reproduces_golden(bundle_dir: Path, run: str):
    stage, feeds, expected = golden_run(run)
    host = HostDecoder(bundle_dir / f"{stage}_logits.onnx")
    out = host.decode(feeds["codes"], feeds["mask"], seed=0, num_steps=int(feeds["num_steps"]),
                      temperature=float(feeds["temperature"]), mask_temperature=0.0, sample_cutoff=-1.0)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("run", BATCH_RUNS)
def test_batch_equals_each_row_alone(bundle_dir: Path, run: str):
    """vampnet-ort counts N0 per item; upstream counts it over the batch, so its B=2 outputs differ (documented)."""
    stage, feeds, upstream = golden_run(run)
    batch = decode(bundle_dir, stage, feeds)
    for row in range(2):
        alone = decode(bundle_dir, stage, {**feeds, "codes": feeds["codes"][row : row + 1],
                                           "mask": feeds["mask"][row : row + 1]})
        np.testing.assert_array_equal(batch[row : row + 1], alone)


# ---- sampling on --------------------------------------------------------------------------------------------

def _random_start(stage: str, batch: int, t: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = 4 if stage == "coarse" else 14
    codes = rng.integers(0, 1024, size=(batch, c, t))
    mask = (rng.random((batch, c, t)) < 0.6).astype(np.int64)
    if stage == "c2f":
        mask[:, :4] = 0
    return codes, mask


def test_same_seed_same_output_across_sessions_and_threads(bundle_dir: Path):
    codes, mask = _random_start("coarse", 2, 37)
    feeds = {"codes": codes, "mask": mask, **settings(8, seed=123)}
    first = decode(bundle_dir, "coarse", feeds, threads=2)
    fresh = vampnet_ort.create_session(str(bundle_dir / "coarse.onnx"), intra_op_threads=2).run(None, feeds)[0]
    one_thread = decode(bundle_dir, "coarse", feeds, threads=1)
    np.testing.assert_array_equal(first, fresh)
    np.testing.assert_array_equal(first, one_thread)
    assert (first != codes)[mask == 1].any(), "sampling must regenerate masked tokens"
    np.testing.assert_array_equal(first[mask == 0], codes[mask == 0])


def test_item_alone_equals_item_in_batch(bundle_dir: Path):
    """Item b of a batch decoded with seed s == the item alone with seed s + b."""
    codes, mask = _random_start("c2f", 3, 21, seed=4)
    batch = decode(bundle_dir, "c2f", {"codes": codes, "mask": mask, **settings(3, seed=40)})
    for b in range(3):
        alone = decode(bundle_dir, "c2f", {"codes": codes[b : b + 1], "mask": mask[b : b + 1],
                                          **settings(3, seed=40 + b)})
        np.testing.assert_array_equal(batch[b : b + 1], alone)


def test_different_seeds_differ(bundle_dir: Path):
    codes, mask = _random_start("coarse", 1, 37)
    a = decode(bundle_dir, "coarse", {"codes": codes, "mask": mask, **settings(8, seed=1)})
    b = decode(bundle_dir, "coarse", {"codes": codes, "mask": mask, **settings(8, seed=2)})
    assert (a != b).sum() > 10


@pytest.mark.parametrize("num_steps", [1, 36])
def test_loop_graph_equals_host_loop(bundle_dir: Path, num_steps: int):
    codes, mask = _random_start("coarse", 2, 29, seed=num_steps)
    loop = decode(bundle_dir, "coarse", {"codes": codes, "mask": mask, **settings(num_steps, seed=9)})
    host = HostDecoder(bundle_dir / "coarse_logits.onnx").decode(codes, mask, seed=9, num_steps=num_steps)
    np.testing.assert_array_equal(loop, host)
    assert (loop < MASK).all(), "no MASK token survives the last step"
    np.testing.assert_array_equal(loop[mask == 0], codes[mask == 0])


def test_single_frame(bundle_dir: Path):
    codes, mask = _random_start("c2f", 2, 1)
    mask[:, 4:] = 1
    out = decode(bundle_dir, "c2f", {"codes": codes, "mask": mask, **settings(2, seed=5)})
    assert out.shape == (2, 14, 1) and (out < MASK).all()
    np.testing.assert_array_equal(out[:, :4], codes[:, :4])


def test_mask_all_zeros_returns_input(bundle_dir: Path):
    for stage in ("coarse", "c2f"):
        codes, _ = _random_start(stage, 2, 17)
        out = decode(bundle_dir, stage, {"codes": codes, "mask": np.zeros_like(codes), **settings(4, seed=3)})
        np.testing.assert_array_equal(out, codes)


def test_mask_all_ones(bundle_dir: Path):
    """Everything regenerated; conditioning codebooks (masked at step 0 only) come back from the input."""
    for stage in ("coarse", "c2f"):
        codes, _ = _random_start(stage, 1, 23)
        out = decode(bundle_dir, stage, {"codes": codes, "mask": np.ones_like(codes), **settings(4, seed=8)})
        assert (out < MASK).all()
        n_cond = 4 if stage == "c2f" else 0
        np.testing.assert_array_equal(out[:, :n_cond], codes[:, :n_cond])
        assert (out[:, n_cond:] != codes[:, n_cond:]).mean() > 0.5


def test_zero_steps_returns_input(bundle_dir: Path):
    codes, mask = _random_start("coarse", 1, 10)
    out = decode(bundle_dir, "coarse", {"codes": codes, "mask": mask, **settings(0)})
    np.testing.assert_array_equal(out, codes)


def test_sampled_runs_with_and_without_library_agree(bundle_dir: Path):
    codes, mask = _random_start("c2f", 1, 19, seed=2)
    feeds = {"codes": codes, "mask": mask, **settings(2, seed=77)}
    np.testing.assert_array_equal(decode(bundle_dir, "c2f", feeds, True), decode(bundle_dir, "c2f", feeds, False))


def test_decode_graph_uses_only_forms_both_webgpu_builds_run(bundle_dir: Path):
    """docs/WEB.md "WebGPU": no float64, no negative-axis Split with num_outputs, no tanh Gelu node, no MatMulNBits
    bias input — in the graph, its Loop body and the model-local functions."""
    from vampnet_ort.ops._model import _walk_nodes

    for stage in ("coarse", "c2f"):
        model = onnx.load(str(bundle_dir / f"{stage}.onnx"), load_external_data=False)
        nodes = list(_walk_nodes(model.graph.node))
        for function in model.functions:
            nodes += list(_walk_nodes(function.node))
        types = {n.op_type for n in nodes}
        assert "Split" in types and "Tanh" in types and "Gelu" not in types
        for node in nodes:
            attrs = {a.name: a for a in node.attribute}
            if node.op_type == "Split":
                assert attrs["axis"].i >= 0, node.name
            if node.op_type == "Cast":
                assert attrs["to"].i != onnx.TensorProto.DOUBLE, node.name
            if node.op_type == "MatMulNBits":
                assert len(node.input) == 3, node.name
            if "value" in attrs:
                assert attrs["value"].t.data_type != onnx.TensorProto.DOUBLE, node.name


@pytest.mark.parametrize("library", [True, False], ids=["library", "stock"])
def test_cpu_sessions_fuse_the_tanh_gelu(bundle_dir: Path, tmp_path: Path, library: bool):
    """The GEGLU's tanh Gelu is written in the form ONNX Runtime's FastGeluFusion matches (export/transformer_graph.py
    emit_gelu_tanh): a CPU session runs one FastGelu per layer, in the decode Loop's body too, not eight nodes."""
    import onnxruntime as ort

    from vampnet_ort.ops._model import _walk_nodes

    for stage in ("coarse", "c2f"):
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / f"{stage}-optimized.onnx")
        options.log_severity_level = 3
        if library:
            vampnet_ort.register(options)
        ort.InferenceSession(str(bundle_dir / f"{stage}.onnx"), options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(options.optimized_model_filepath, load_external_data=False)
        nodes = list(_walk_nodes(optimized.graph.node))
        exported = onnx.load(str(bundle_dir / f"{stage}.onnx"), load_external_data=False)
        n_gelu = sum(n.op_type == "Tanh" for n in _walk_nodes(exported.graph.node))  # one Tanh per Gelu
        assert n_gelu > 0
        assert sum(n.op_type == "FastGelu" for n in nodes) == n_gelu, stage
        assert not any(n.op_type == "Tanh" for n in nodes), stage
