"""Checkpoint loading and conversion errors: every bad input is refused with a message naming the problem."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from vampnet_ort.export import CheckpointError, load_checkpoint, load_lora_file, save_checkpoint, save_lora_file
from vampnet_ort.export.checkpoint import Checkpoint
from vampnet_ort.export.pth_writer import write_pth
from vampnet_ort.export.random_codec import random_codec
from vampnet_ort.export.random_checkpoint import (
    GOLDEN_C2F_KWARGS,
    GOLDEN_COARSE_KWARGS,
    lac_kwargs,
    random_vampnet_checkpoint,
    random_vampnet_state,
    vampnet_kwargs,
)
from vampnet_ort.export.vampnet_export import logits_model
from vampnet_ort.export.vampnet_weights import VampNetConfig

from op_testing import GOLDEN
from pth_testing import write_archive

SMALL = vampnet_kwargs(n_heads=2, n_layers=1, n_codebooks=4, embedding_dim=16, vocab_size=64)
CODEC = lac_kwargs(encoder_dim=2, encoder_rates=(2, 2), decoder_dim=4, decoder_rates=(2, 2), codebook_size=64)


@pytest.fixture(scope="module")
def codec() -> Checkpoint:
    return random_codec(CODEC, seed=5)


def _with_state(state: dict, kwargs: dict = SMALL) -> Checkpoint:
    return Checkpoint(path=Path("<test>"), sha256="0" * 64, kwargs=dict(kwargs), state=state)


def test_random_checkpoints_match_the_golden_layout():
    """The generator writes exactly upstream's keys and shapes (compared with the golden checkpoints)."""
    for name, kwargs in (("coarse", GOLDEN_COARSE_KWARGS), ("c2f", GOLDEN_C2F_KWARGS)):
        golden = load_checkpoint(GOLDEN / f"{name}.pth")
        assert golden.kwargs == kwargs
        state = random_vampnet_state(kwargs)
        assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in golden.state.items()}
    golden_codec = load_checkpoint(GOLDEN / "codec.pth")
    generated = random_codec(lac_kwargs())
    assert generated.kwargs == golden_codec.kwargs
    assert {k: v.shape for k, v in generated.state.items()} == {k: v.shape for k, v in golden_codec.state.items()}


def test_save_and_load_round_trip(tmp_path: Path):
    ckpt = random_vampnet_checkpoint(SMALL, seed=1)
    save_checkpoint(tmp_path / "m.pth", ckpt.state, ckpt.kwargs)
    loaded = load_checkpoint(tmp_path / "m.pth")
    assert loaded.kwargs == ckpt.kwargs and loaded.state.keys() == ckpt.state.keys()
    assert all(np.array_equal(loaded.state[k], v) for k, v in ckpt.state.items())


def test_truncated_file(tmp_path: Path):
    data = (GOLDEN / "coarse.pth").read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path: Path):
    path = tmp_path / "x.pth"
    path.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.pth")


class _TouchOnUnpickle:
    """Unpickling this object would create a file (stands in for arbitrary code execution)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_pickle_that_runs_code_is_refused(tmp_path: Path):
    target = tmp_path / "pwned"
    payload = pickle.dumps({"state_dict": {}, "metadata": {"kwargs": {}, "x": _TouchOnUnpickle(target)}}, protocol=2)
    path = write_archive(tmp_path / "evil.pth", payload, {})  # laid out as torch.save lays out its zip
    assert not target.exists()
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not target.exists(), "loading must never execute pickled code"
    # the same through a plain pickle stream
    with open(tmp_path / "evil2.pth", "wb") as fh:
        pickle.dump({"state_dict": {}, "metadata": {"kwargs": {}}, "x": _TouchOnUnpickle(target)}, fh)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil2.pth")
    with pytest.raises(CheckpointError):
        load_lora_file(path)
    assert not target.exists()


def test_missing_key(codec):
    state = random_vampnet_state(SMALL)
    del state["transformer.layers.0.norm_3.weight"]
    with pytest.raises(CheckpointError, match="missing key 'transformer.layers.0.norm_3.weight'"):
        logits_model(_with_state(state), codec)


def test_unexpected_key(codec):
    state = random_vampnet_state(SMALL)
    state["transformer.layers.0.film_1.beta.weight"] = np.zeros((16, 4), np.float32)
    with pytest.raises(CheckpointError, match=r"unexpected keys \['transformer.layers.0.film_1.beta.weight'\]"):
        logits_model(_with_state(state), codec)


def test_wrong_shape(codec):
    state = random_vampnet_state(SMALL)
    state["transformer.layers.0.feed_forward.w_2.weight"] = np.zeros((16, 63), np.float32)
    with pytest.raises(CheckpointError, match=r"w_2.weight' has shape \[16, 63\], expected \[16, 32\]"):
        logits_model(_with_state(state), codec)
    state = random_vampnet_state(SMALL)
    state["transformer.layers.0.self_attn.w_qs.lora_B"] = np.zeros((16, 5), np.float32)
    with pytest.raises(CheckpointError, match=r"lora_B' has shape \[16, 5\], expected \[16, 8\]"):
        logits_model(_with_state(state), codec)
    state = random_vampnet_state(SMALL)
    del state["transformer.layers.0.self_attn.fc.lora_B"]
    with pytest.raises(CheckpointError, match="only one of lora_A / lora_B"):
        logits_model(_with_state(state), codec)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"r_cond_dim": 4}, "r_cond_dim = 4 is not supported"),
        ({"ctrl_dims": {"rms": 1}}, "ctrl_dims"),
        ({"cond_dim": 3}, "cond_dim = 3"),
        ({"noise_mode": "random"}, "noise_mode = 'random'"),
        ({"new_option": 1}, r"unknown VampNet constructor argument\(s\) \['new_option'\]"),
        ({"n_heads": 3}, "not divisible by n_heads"),
        ({"n_conditioning_codebooks": 4}, "n_conditioning_codebooks = 4 must be in"),
        ({"n_layers": "2"}, "is not an integer"),
    ],
)
def test_unsupported_options(codec, change: dict, message: str):
    kwargs = {**SMALL, **change}
    with pytest.raises(CheckpointError, match=message):
        VampNetConfig.from_kwargs(kwargs, "m.pth")
    with pytest.raises(CheckpointError, match=message):
        logits_model(_with_state(random_vampnet_state(SMALL), kwargs), codec)


def test_missing_kwargs(codec):
    kwargs = dict(SMALL)
    del kwargs["embedding_dim"]
    with pytest.raises(CheckpointError, match=r"lacks \['embedding_dim'\]"):
        VampNetConfig.from_kwargs(kwargs)


def test_flash_attention_checkpoint_refused(codec):
    state = {k.replace("self_attn.w_qs", "self_attn.Wqkv"): v for k, v in random_vampnet_state(SMALL).items()}
    with pytest.raises(CheckpointError, match="flash_attn = True"):
        logits_model(_with_state(state, {**SMALL, "flash_attn": True}), codec)


def test_codec_does_not_fit_the_model():
    other = random_codec({**CODEC, "codebook_size": 32}, seed=1)
    with pytest.raises(CheckpointError, match="wrong codec for this model"):
        logits_model(random_vampnet_checkpoint(SMALL), other)
    few = random_codec({**CODEC, "n_codebooks": 2}, seed=1)
    with pytest.raises(CheckpointError, match="the codec has fewer"):
        logits_model(random_vampnet_checkpoint(SMALL), few)


def test_lora_file_errors(tmp_path: Path, codec):
    base = random_vampnet_checkpoint(SMALL, lora_rank=0)
    with pytest.raises(CheckpointError, match="has no base weight"):
        logits_model(base, codec, lora={"transformer.layers.7.self_attn.w_qs.lora_A": np.zeros((8, 16), np.float32)})
    path = tmp_path / "bad_lora.pth"
    write_pth(path, {"transformer.layers.0.norm_1.weight": np.zeros(16, np.float32)})
    with pytest.raises(CheckpointError, match="only lora_A/lora_B"):
        load_lora_file(path)
    with pytest.raises(CheckpointError, match="only lora_A/lora_B"):
        save_lora_file(path, {"x.weight": np.zeros(2, np.float32)})
    lora = {"transformer.layers.0.self_attn.w_qs.lora_A": np.zeros((8, 15), np.float32),
            "transformer.layers.0.self_attn.w_qs.lora_B": np.zeros((16, 8), np.float32)}
    with pytest.raises(CheckpointError, match=r"lora_A' has shape \[8, 15\], expected \[r, 16\]"):
        logits_model(base, codec, lora=lora)
