"""LAC codec graphs: exact against upstream (golden/codec.npz), chunked == unchunked, odd sizes, odd strides.

Expected values come from upstream (golden) or from an independent torch reference written below with plain
torch conv ops (torch is a test dependency; the runtime never imports it).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest

try:  # the independent reference below needs torch; without it only that test skips
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

import vampnet_ort
from op_testing import GOLDEN, golden
from vampnet_ort import codec as runtime
from vampnet_ort.export.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from vampnet_ort.export.codec import DECODER_FILE, ENCODER_FILE, decoder_model, encoder_model, export_codec
from vampnet_ort.export.random_codec import random_codec

MASK = 1024
AUDIO_ATOL = 1e-5
# The three ways to run a graph: Snake kernel; Snake reference function (stock ORT); plain ONNX export.
VARIANTS = {"snake_kernel": (True, True), "snake_function": (True, False), "plain_onnx": (False, False)}


@pytest.fixture(scope="module")
def codec() -> Checkpoint:
    return load_checkpoint(GOLDEN / "codec.pth")


@pytest.fixture(scope="module")
def data():
    return golden("codec.npz")


@pytest.fixture(scope="module")
def sessions(codec):
    out = {}
    for name, (use_op, with_lib) in VARIANTS.items():
        enc = encoder_model(codec, use_snake_op=use_op).SerializeToString()
        dec = decoder_model(codec, use_snake_op=use_op).SerializeToString()
        out[name] = (vampnet_ort.create_session(enc, with_library=with_lib, intra_op_threads=2),
                     vampnet_ort.create_session(dec, with_library=with_lib, intra_op_threads=2))
    return out


# ---- golden ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_golden_codes_exact(sessions, data, variant) -> None:
    enc, _ = sessions[variant]
    # audio_in is not a multiple of hop: the graph pads it like upstream LAC.encode (preprocess) does.
    assert data["audio_in"].shape[2] % 768 != 0
    np.testing.assert_array_equal(enc.run(None, {"audio": data["audio_in"]})[0], data["encode_codes"])
    np.testing.assert_array_equal(enc.run(None, {"audio": data["preprocess_audio"]})[0], data["encode_codes"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_golden_decode(sessions, data, variant) -> None:
    _, dec = sessions[variant]
    # codec.decode(encode_z): z_q is the sum of out_proj(codeword) of the encoded codes.
    audio = dec.run(None, {"codes": data["encode_codes"]})[0]
    assert audio.shape == data["decode_z_audio"].shape
    np.testing.assert_allclose(audio, data["decode_z_audio"], rtol=0, atol=AUDIO_ATOL)
    # VampNet.decode: MASK -> 0 (the pipeline's job), from_codes -> from_latents -> decode.
    codes_in = data["vampnet_decode_codes_in"]
    assert (codes_in == MASK).any()
    audio = dec.run(None, {"codes": np.where(codes_in == MASK, 0, codes_in)})[0]
    np.testing.assert_allclose(audio, data["vampnet_decode_audio"], rtol=0, atol=AUDIO_ATOL)
    # Fewer codebooks than the codec has (coarse codes only).
    audio = dec.run(None, {"codes": data["encode_codes"][:, :4]})[0]
    np.testing.assert_allclose(audio, data["vampdecode_coarse4_audio"], rtol=0, atol=AUDIO_ATOL)


def test_golden_decode_from_latents(codec, data) -> None:
    model = decoder_model(codec, from_latents=True)
    session = vampnet_ort.create_session(model.SerializeToString(), intra_op_threads=2)
    audio = session.run(None, {"z": data["encode_z"]})[0]
    np.testing.assert_allclose(audio, data["decode_z_audio"], rtol=0, atol=AUDIO_ATOL)


def test_models_are_valid_and_described(codec) -> None:
    for model in (encoder_model(codec), decoder_model(codec)):
        onnx.checker.check_model(model, full_check=True)
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["hop_length"] == "768" and meta["n_codebooks"] == "14" and meta["snake"] == "vampnet.Snake"
        assert meta["source_sha256"] == codec.sha256
        assert [f.name for f in model.functions] == ["Snake"]
    plain = encoder_model(codec, use_snake_op=False)
    assert not plain.functions and all(n.domain == "" for n in plain.graph.node)


def test_invalid_codes_fail_loudly(sessions, data) -> None:
    _, dec = sessions["snake_kernel"]
    with pytest.raises(Exception, match="out of data bounds"):
        dec.run(None, {"codes": data["vampnet_decode_codes_in"]})  # MASK present
    with pytest.raises(Exception, match="out of data bounds"):
        dec.run(None, {"codes": np.full((1, 14, 3), -1, np.int64)})
    with pytest.raises(runtime.CodecInputError, match="replace MASK"):
        runtime.decode(dec, data["vampnet_decode_codes_in"])
    with pytest.raises(runtime.CodecInputError, match=r"\[B >= 1, 1..14, T >= 1\]"):
        runtime.decode(dec, np.zeros((1, 15, 3), np.int64))


def test_bad_audio_is_rejected(sessions) -> None:
    enc, _ = sessions["snake_kernel"]
    with pytest.raises(runtime.CodecInputError, match="NaN"):
        runtime.encode(enc, np.array([0.0, np.nan], np.float32))
    with pytest.raises(runtime.CodecInputError, match="mono"):
        runtime.encode(enc, np.zeros((1, 2, 100), np.float32))
    with pytest.raises(runtime.CodecInputError, match="empty"):
        runtime.encode(enc, np.zeros((1, 1, 0), np.float32))


# ---- checkpoint handling -------------------------------------------------------------------------------------


def test_every_key_is_used(codec) -> None:
    extra = Checkpoint(codec.path, codec.sha256, codec.kwargs, {**codec.state, "decoder.extra.alpha": np.ones(1)})
    with pytest.raises(CheckpointError, match="unexpected keys"):
        encoder_model(extra)
    missing = dict(codec.state)
    del missing["decoder.model.2.block.2.mrf_blocks.1.block.2.layer.3.weight_g"]
    with pytest.raises(CheckpointError, match="missing key 'decoder.model.2.block.2.mrf_blocks.1"):
        decoder_model(Checkpoint(codec.path, codec.sha256, codec.kwargs, missing))
    wrong = Checkpoint(codec.path, codec.sha256, {**codec.kwargs, "encoder_dim": 16}, codec.state)
    with pytest.raises(CheckpointError, match="quantizer width 128 does not match"):
        encoder_model(wrong)
    with pytest.raises(CheckpointError, match="decoder_rates"):
        encoder_model(Checkpoint(codec.path, codec.sha256, {**codec.kwargs, "decoder_rates": []}, codec.state))


def test_export_writes_both_files(codec, tmp_path: Path) -> None:
    paths = export_codec(codec, tmp_path / "bundle")
    assert [p.name for p in paths] == [ENCODER_FILE, DECODER_FILE]
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == sorted([ENCODER_FILE, DECODER_FILE])
    for p in paths:
        onnx.checker.check_model(str(p), full_check=True)
    broken = Checkpoint(codec.path, codec.sha256, codec.kwargs, {**codec.state, "junk": np.ones(1)})
    with pytest.raises(CheckpointError):
        export_codec(broken, tmp_path / "other")
    assert not list((tmp_path / "other").glob("*"))
    from_path = export_codec(GOLDEN / "codec.pth", tmp_path / "from_path")
    assert [p.read_bytes() for p in from_path] == [p.read_bytes() for p in paths]


# ---- lengths, batch, chunking ------------------------------------------------------------------------------------


def _signal(seconds: float, seed: int = 0, sr: int = 44100) -> np.ndarray:
    n = int(seconds * sr)
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    tone = sum(0.2 * np.sin(2 * np.pi * f * t * (1 + 0.02 * np.sin(0.3 * t))) for f in (110.0, 277.0, 1460.0))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t)
    return (tone * env + 0.03 * rng.standard_normal(n)).astype(np.float32)[None, None]


def test_chunked_equals_unchunked_two_minutes(sessions) -> None:
    enc, dec = sessions["snake_kernel"]
    audio = _signal(120.0)[:, :, : 120 * 44100 - 501]  # not a multiple of hop
    full = runtime.encode(enc, audio, chunk_seconds=None)
    assert full.shape == (1, 14, math.ceil(audio.shape[2] / 768))
    chunked = runtime.encode(enc, audio, chunk_seconds=7.3)
    np.testing.assert_array_equal(chunked, full)
    whole = runtime.decode(dec, full, chunk_frames=None)
    pieces = runtime.decode(dec, full, chunk_frames=301)
    assert pieces.shape == whole.shape == (1, 1, full.shape[2] * 768)
    np.testing.assert_allclose(pieces, whole, rtol=0, atol=AUDIO_ATOL)


def test_short_and_odd_lengths(sessions) -> None:
    enc, dec = sessions["snake_kernel"]
    audio = _signal(0.2, seed=4)
    for n in (1, 767, 768, 769, 3 * 768 + 1):
        codes = runtime.encode(enc, audio[:, :, :n], chunk_seconds=0.01)
        assert codes.shape == (1, 14, math.ceil(n / 768))
        padded = np.zeros((1, 1, codes.shape[2] * 768), np.float32)
        padded[:, :, :n] = audio[:, :, :n]
        np.testing.assert_array_equal(codes, enc.run(None, {"audio": padded})[0])
        out = runtime.decode(dec, codes, chunk_frames=1)
        assert out.shape == (1, 1, codes.shape[2] * 768)
        np.testing.assert_allclose(out, dec.run(None, {"codes": codes})[0], rtol=0, atol=AUDIO_ATOL)


def test_batch_of_three_matches_single_items(sessions) -> None:
    enc, dec = sessions["snake_kernel"]
    audio = np.concatenate([_signal(1.0, seed=s) for s in range(3)], axis=0)
    codes = runtime.encode(enc, audio, chunk_seconds=0.3)
    assert codes.shape == (3, 14, math.ceil(44100 / 768))
    out = runtime.decode(dec, codes, chunk_frames=16)
    for i in range(3):
        np.testing.assert_array_equal(codes[i : i + 1], enc.run(None, {"audio": audio[i : i + 1]})[0])
        np.testing.assert_allclose(out[i : i + 1], dec.run(None, {"codes": codes[i : i + 1]})[0], atol=AUDIO_ATOL)


# ---- odd strides vs an independent torch reference ---------------------------------------------------------------


def _wn(state, key):
    v = torch.from_numpy(state[key + ".weight_v"]).double()
    g = torch.from_numpy(state[key + ".weight_g"]).double()
    w = g * v / v.pow(2).sum(dim=tuple(range(1, v.ndim)), keepdim=True).sqrt()
    return w.float(), torch.from_numpy(state[key + ".bias"])


def _snake(state, key, x):
    a = torch.from_numpy(state[key + ".alpha"])
    return x + (a + 1e-9).reciprocal() * torch.sin(a * x).pow(2)


def _conv(state, key, x, stride=1, dilation=1):
    w, b = _wn(state, key)
    k = w.shape[-1]
    pad = stride // 2 if stride > 1 else (k - 1) * dilation // 2
    return F.conv1d(x, w, b, stride=stride, padding=pad, dilation=dilation)


def torch_encode(state, kw, audio: np.ndarray) -> np.ndarray:
    hop = math.prod(kw["encoder_rates"])
    x = torch.from_numpy(audio)
    x = F.pad(x, (0, (-x.shape[-1]) % hop))
    x = _conv(state, "encoder.block.0", x)
    for i, s in enumerate(kw["encoder_rates"]):
        p = f"encoder.block.{i + 1}.block"
        for j, d in enumerate((1, 3, 9)):
            u = f"{p}.{j}.block"
            x = x + _conv(state, u + ".3", _snake(state, u + ".2", _conv(state, u + ".1", _snake(state, u + ".0", x), dilation=d)))
        x = _conv(state, p + ".4", _snake(state, p + ".3", x), stride=s)
    n = len(kw["encoder_rates"])
    residual = _conv(state, f"encoder.block.{n + 2}", _snake(state, f"encoder.block.{n + 1}", x))
    codes = []
    for i in range(kw["n_codebooks"]):
        q = f"quantizer.quantizers.{i}"
        z_e = _conv(state, q + ".in_proj", residual)
        enc = F.normalize(z_e.transpose(1, 2).reshape(-1, z_e.shape[1]))
        book = torch.from_numpy(state[q + ".codebook.weight"])
        nb = F.normalize(book)
        dist = enc.pow(2).sum(1, keepdim=True) - 2 * enc @ nb.t() + nb.pow(2).sum(1, keepdim=True).t()
        idx = (-dist).max(1)[1].reshape(z_e.shape[0], z_e.shape[2])
        codes.append(idx)
        residual = residual - _conv(state, q + ".out_proj", book[idx].transpose(1, 2))
    return torch.stack(codes, dim=1).numpy()


def torch_decode(state, kw, codes: np.ndarray) -> np.ndarray:
    z = 0
    for i in range(codes.shape[1]):
        q = f"quantizer.quantizers.{i}"
        book = torch.from_numpy(state[q + ".codebook.weight"])
        z = z + _conv(state, q + ".out_proj", book[torch.from_numpy(codes[:, i])].transpose(1, 2))
    x = _conv(state, "decoder.model.0", z)
    for i, s in enumerate(kw["decoder_rates"]):
        p = f"decoder.model.{i + 1}.block"
        w, b = _wn(state, p + ".1")
        x = F.conv_transpose1d(_snake(state, p + ".0", x), w, b, stride=s, padding=s // 2)
        stacks = []
        for m in range(3):
            y = x
            for j, d in enumerate((1, 3, 5)):
                u = f"{p}.2.mrf_blocks.{m}.block.{j}.layer"
                h = _conv(state, u + ".1", _snake(state, u + ".0", y), dilation=d)
                y = y + _conv(state, u + ".3", _snake(state, u + ".2", h))
            stacks.append(y)
        x = sum(stacks) / 3
    n = len(kw["decoder_rates"])
    return torch.tanh(_conv(state, f"decoder.model.{n + 2}", _snake(state, f"decoder.model.{n + 1}", x))).numpy()


ODD_CONFIG = {"sample_rate": 16000, "encoder_dim": 4, "encoder_rates": [3, 2, 5], "decoder_dim": 16,
              "decoder_rates": [5, 3, 2], "n_codebooks": 3, "codebook_size": 64, "codebook_dim": 4}


@pytest.mark.parametrize("use_snake_op", [True, False])
def test_odd_strides_match_torch_reference(use_snake_op: bool) -> None:
    pytest.importorskip("torch")
    ck = random_codec(ODD_CONFIG, seed=7)
    enc = vampnet_ort.create_session(encoder_model(ck, use_snake_op=use_snake_op).SerializeToString())
    dec = vampnet_ort.create_session(decoder_model(ck, use_snake_op=use_snake_op).SerializeToString())
    audio = _signal(1.3, seed=9, sr=16000)[:, :, :20000 - 7]
    audio = np.concatenate([audio, 0.5 * audio[:, :, ::-1]], axis=0)
    codes = runtime.encode(enc, audio, chunk_seconds=None)
    expected = torch_encode(ck.state, ck.kwargs, audio)
    np.testing.assert_array_equal(codes, expected)
    # hop 30 with two odd strides: 19993 samples -> padded 20010 -> fewer than 20010 / 30 frames (upstream floors).
    config = runtime.session_config(enc)
    assert codes.shape[2] == runtime.num_frames(config, audio.shape[2]) < 20010 // 30
    np.testing.assert_array_equal(runtime.encode(enc, audio, chunk_seconds=0.05), codes)
    audio_out = runtime.decode(dec, codes, chunk_frames=None)
    reference = torch_decode(ck.state, ck.kwargs, codes)
    assert audio_out.shape == reference.shape == (2, 1, runtime.num_samples(config, codes.shape[2]))
    assert audio_out.shape[2] > codes.shape[2] * 30  # odd transposed-conv strides gain samples
    np.testing.assert_allclose(audio_out, reference, rtol=0, atol=AUDIO_ATOL)
    np.testing.assert_allclose(runtime.decode(dec, codes, chunk_frames=7), audio_out, rtol=0, atol=AUDIO_ATOL)
