"""The logits graph: golden upstream logits/activations, random-config round trips vs an independent numpy forward."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import vampnet_ort
from vampnet_ort.export import load_checkpoint, save_lora_file
from vampnet_ort.export.random_codec import random_codec
from vampnet_ort.export.random_checkpoint import (
    lac_kwargs,
    random_lora_state,
    random_vampnet_checkpoint,
    vampnet_kwargs,
)
from vampnet_ort.export.vampnet_export import export_stage, logits_graph, logits_model

import vampnet_numpy as vn
from op_testing import GOLDEN, golden

ATOL = 1e-4


@pytest.fixture(scope="module")
def golden_codec():
    return load_checkpoint(GOLDEN / "codec.pth")


def run_logits(model: onnx.ModelProto | str, codes: np.ndarray, with_library: bool = True, threads: int = 2):
    source = model if isinstance(model, str) else model.SerializeToString()
    session = vampnet_ort.create_session(source, with_library=with_library, intra_op_threads=threads)
    return session.run(None, {"codes": codes})


def test_numpy_reference_matches_golden(golden_codec):
    """The independent numpy forward reproduces upstream (so it can serve as the reference below)."""
    fw, em = golden("forward.npz"), golden("embedding.npz")
    assert np.array_equal(vn.position_buckets(300), golden("position_bias.npz")["buckets_T300"])
    for name in ("coarse", "c2f"):
        ckpt = load_checkpoint(GOLDEN / f"{name}.pth")
        books = vn.codec_codebooks(golden_codec.state, ckpt.kwargs["n_codebooks"])
        logits, acts = vn.forward(ckpt.state, ckpt.kwargs, books, em[f"{name}_codes"])
        np.testing.assert_allclose(logits, fw[f"{name}_logits"], rtol=0, atol=2e-5)
        np.testing.assert_allclose(acts, fw[f"{name}_activations"], rtol=0, atol=2e-5)


@pytest.mark.parametrize("name", ["coarse", "c2f"])
@pytest.mark.parametrize("with_library", [True, False], ids=["kernels", "reference"])
def test_golden_logits_and_activations(golden_codec, name: str, with_library: bool):
    fw, em = golden("forward.npz"), golden("embedding.npz")
    ckpt = load_checkpoint(GOLDEN / f"{name}.pth")
    model = logits_model(ckpt, golden_codec, expose_activations=True)
    onnx.checker.check_model(model, full_check=True)
    n_pred = ckpt.kwargs["n_codebooks"] - ckpt.kwargs["n_conditioning_codebooks"]
    codes = em[f"{name}_codes"]
    assert (codes == 1024).any(), "the golden codes include MASK tokens"
    logits, *acts = run_logits(model, codes, with_library)
    assert logits.shape == (2, n_pred, 37, 1024)
    np.testing.assert_allclose(logits, vn.upstream_to_bptv(fw[f"{name}_logits"], n_pred), rtol=0, atol=ATOL)
    assert len(acts) == ckpt.kwargs["n_layers"]
    np.testing.assert_allclose(np.stack(acts), fw[f"{name}_activations"], rtol=0, atol=ATOL)


def test_golden_model_metadata_and_interface(golden_codec):
    ckpt = load_checkpoint(GOLDEN / "c2f.pth")
    model = logits_model(ckpt, golden_codec)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["vampnet_ort.source_sha256"] == ckpt.sha256 and len(ckpt.sha256) == 64
    assert meta["vampnet_ort.codec_sha256"] == golden_codec.sha256
    assert meta["vampnet_ort.version"] == vampnet_ort.__version__
    assert meta["vampnet_ort.graph"] == "logits"
    config = json.loads(meta["vampnet_ort.model_config"])
    assert (config["n_codebooks"], config["n_conditioning_codebooks"], config["n_layers"]) == (14, 4, 2)
    # the attention function calls the bucket helper, which travels with it
    assert {f.name for f in model.functions} == {"CodebookEmbedding", "RMSNorm", "RelativePositionAttention",
                                                 "RelativePositionBias"}
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "codes" and out.name == "logits"
    dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert dims == ["batch", 10, "time", 1024]
    # every weight of the checkpoint is used: one RelativePositionAttention per layer, all sharing one table
    attn = [n for n in model.graph.node if n.op_type == "RelativePositionAttention"]
    assert len(attn) == 2 and len({n.input[1] for n in attn}) == 1


# ---- random configurations vs the numpy forward -----------------------------------------------------------

SMALL_CODEC = lac_kwargs(encoder_dim=2, encoder_rates=(2, 2), decoder_dim=4, decoder_rates=(2, 2), codebook_size=64)


def _random_case(kwargs: dict, lora_rank: int, seed: int, codec_kwargs: dict = SMALL_CODEC):
    ckpt = random_vampnet_checkpoint(kwargs, seed=seed, lora_rank=lora_rank)
    codec = random_codec(codec_kwargs, seed=seed + 100)
    return ckpt, codec


def _random_codes(rng: np.random.Generator, b: int, c: int, t: int, vocab: int) -> np.ndarray:
    codes = rng.integers(0, vocab, size=(b, c, t))
    codes[rng.random(codes.shape) < 0.4] = vocab  # MASK
    return codes


CASES = {
    "heads1_oddT_lora": (vampnet_kwargs(n_heads=1, n_layers=2, n_codebooks=4, embedding_dim=16, vocab_size=64), 8, 2, 13),
    "heads3_oddT": (vampnet_kwargs(n_heads=3, n_layers=2, n_codebooks=4, embedding_dim=24, vocab_size=64), 0, 3, 7),
    "c14_cond4_lora": (
        vampnet_kwargs(n_heads=2, n_layers=2, n_codebooks=14, n_conditioning_codebooks=4, embedding_dim=32,
                       vocab_size=64), 4, 2, 21),
    "T1": (vampnet_kwargs(n_heads=2, n_layers=1, n_codebooks=4, embedding_dim=16, vocab_size=64), 8, 1, 1),
    # T > 2 * max_exact and past max_distance exercises every bucket branch
    "long_T": (vampnet_kwargs(n_heads=2, n_layers=1, n_codebooks=2, embedding_dim=16, vocab_size=64), 0, 1, 150),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_random_config_round_trip(case: str):
    kwargs, lora_rank, batch, t = CASES[case]
    ckpt, codec = _random_case(kwargs, lora_rank, seed=len(case))
    if lora_rank:
        assert any(k.endswith("lora_A") for k in ckpt.state)
    model = logits_model(ckpt, codec)
    onnx.checker.check_model(model, full_check=True)
    codes = _random_codes(np.random.default_rng(7), batch, kwargs["n_codebooks"], t, kwargs["vocab_size"])
    n_pred = kwargs["n_codebooks"] - kwargs["n_conditioning_codebooks"]
    ref, _ = vn.forward(ckpt.state, kwargs, vn.codec_codebooks(codec.state, kwargs["n_codebooks"]), codes)
    (logits,) = run_logits(model, codes)
    np.testing.assert_allclose(logits, vn.upstream_to_bptv(ref, n_pred), rtol=0, atol=ATOL)
    if case == "c14_cond4_lora":  # the inlined reference functions too
        (logits_ref,) = run_logits(model, codes, with_library=False)
        np.testing.assert_allclose(logits_ref, vn.upstream_to_bptv(ref, n_pred), rtol=0, atol=ATOL)


def test_separate_lora_file(tmp_path: Path):
    kwargs = vampnet_kwargs(n_heads=2, n_layers=2, n_codebooks=4, embedding_dim=16, vocab_size=64)
    base, codec = _random_case(kwargs, lora_rank=0, seed=11)
    lora = random_lora_state(kwargs, seed=12, rank=4)
    lora_path = tmp_path / "finetune_lora.pth"
    save_lora_file(lora_path, lora)
    codes = _random_codes(np.random.default_rng(3), 2, 4, 9, 64)
    merged_state = {**base.state, **lora}
    ref, _ = vn.forward(merged_state, kwargs, vn.codec_codebooks(codec.state, 4), codes)
    (with_lora,) = run_logits(logits_model(base, codec, lora=lora_path), codes)
    np.testing.assert_allclose(with_lora, vn.upstream_to_bptv(ref, 4), rtol=0, atol=ATOL)
    (without,) = run_logits(logits_model(base, codec), codes)
    assert np.abs(without - with_lora).max() > 1e-2, "the LoRA file must change the model"
    meta = {p.key: p.value for p in logits_model(base, codec, lora=lora_path).metadata_props}
    assert len(meta["vampnet_ort.lora_sha256"]) == 64


def test_lora_file_replaces_checkpoint_lora():
    """A LoRA file's tensors take the place of the checkpoint's own lora_A/lora_B (fine-tune of a LoRA model)."""
    kwargs = vampnet_kwargs(n_heads=2, n_layers=1, n_codebooks=4, embedding_dim=16, vocab_size=64)
    ckpt, codec = _random_case(kwargs, lora_rank=8, seed=21)
    lora = random_lora_state(kwargs, seed=22, rank=8)
    codes = _random_codes(np.random.default_rng(5), 1, 4, 6, 64)
    ref, _ = vn.forward({**ckpt.state, **lora}, kwargs, vn.codec_codebooks(codec.state, 4), codes)
    (logits,) = run_logits(logits_model(ckpt, codec, lora=lora), codes)
    np.testing.assert_allclose(logits, vn.upstream_to_bptv(ref, 4), rtol=0, atol=ATOL)


def test_external_data_export(tmp_path: Path):
    """Weights streamed to one aligned .data file; the by-path model equals the inline one."""
    kwargs = vampnet_kwargs(n_heads=2, n_layers=2, n_codebooks=4, embedding_dim=32, vocab_size=64)
    ckpt, codec = _random_case(kwargs, lora_rank=8, seed=31)
    _, files = export_stage(tmp_path, "coarse", ckpt, codec, graphs={"coarse_logits.onnx": logits_graph})
    assert [f.name for f in files] == ["coarse.onnx.data", "coarse_logits.onnx"]
    model = onnx.load(str(tmp_path / "coarse_logits.onnx"), load_external_data=False)
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external and all(t.external_data[0].value == "coarse.onnx.data" for t in external)
    offsets = [int({e.key: e.value for e in t.external_data}["offset"]) for t in external]
    assert all(o % 65536 == 0 for o in offsets)
    assert (tmp_path / "coarse_logits.onnx").stat().st_size < 64 * 1024  # only the graph, not the weights
    codes = _random_codes(np.random.default_rng(1), 2, 4, 11, 64)
    (by_path,) = run_logits(str(tmp_path / "coarse_logits.onnx"), codes)
    (inline,) = run_logits(logits_model(ckpt, codec), codes)
    np.testing.assert_array_equal(by_path, inline)


def test_results_do_not_depend_on_thread_count(golden_codec):
    ckpt = load_checkpoint(GOLDEN / "coarse.pth")
    model = logits_model(ckpt, golden_codec)
    codes = golden("embedding.npz")["coarse_codes"]
    (one,) = run_logits(model, codes, threads=1)
    (two,) = run_logits(model, codes, threads=2)
    np.testing.assert_allclose(one, two, rtol=0, atol=1e-5)
