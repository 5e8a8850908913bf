"""The codec decoder in int8 (``--quantize int8``): which convs, quality against float32, encoder unchanged.

The golden codec is too narrow for any int8 conv (every decoder conv has < 96 channels; its int8 bundle records a
float32 decoder, tests/test_quantize_bundle.py), so these tests use a random codec with decoder_dim 384: the
residual-unit convs of levels 0 and 1 (192 and 96 channels) take the int8 form, those levels run channels-last.
Expected audio is the float32 decoder's (an independent graph of plain Conv nodes, itself tested against upstream
in test_codec.py); the metrics are export/quantize.py's, checked here against hand-made cases.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import vampnet_ort
from vampnet_ort import codec as runtime
from vampnet_ort.codec_geometry import Conv, decoder_plan, iter_layers
from vampnet_ort.export.codec import codec_config, decoder_model, decoder_precision, encoder_model, export_codec
from vampnet_ort.export.quantize import CODEC_INT8_MIN_CHANNELS, codec_conv_form, codec_conv_weight_int8
from vampnet_ort.export.random_codec import GOLDEN_LIKE_CONFIG, random_codec
from quality_metrics import audio_snr_db, multi_resolution_stft_distance


SNR_GOAL_DB = 30.0
WIDE_CONFIG = {**GOLDEN_LIKE_CONFIG, "decoder_dim": 384}


def _signal(seconds: float, sr: int = 44100) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    tone = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (110.0, 277.0, 1460.0))
    noise = 0.03 * np.random.default_rng(0).standard_normal(t.size)
    return (tone * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)) + noise).astype(np.float32)[None, None]


@pytest.fixture(scope="module")
def wide_codec():
    return random_codec(WIDE_CONFIG, seed=3)


@pytest.fixture(scope="module")
def decoders(wide_codec):
    return {q: decoder_model(wide_codec, quantize=q) for q in ("none", "int8")}


@pytest.fixture(scope="module")
def codes(wide_codec):
    enc = vampnet_ort.create_session(encoder_model(wide_codec).SerializeToString(), intra_op_threads=2)
    return runtime.encode(enc, _signal(0.7))


def _decode(model: onnx.ModelProto, codes: np.ndarray, *, threads: int = 2, with_library: bool = True) -> np.ndarray:
    session = vampnet_ort.create_session(model.SerializeToString(), intra_op_threads=threads, with_library=with_library)
    return runtime.decode(session, codes, chunk_frames=None)


def test_int8_only_where_chosen(wide_codec, decoders) -> None:
    config = codec_config(wide_codec)
    convs = [leaf for leaf in iter_layers(decoder_plan(config)) if isinstance(leaf, Conv)]
    # the residual units' convs (square, stride 1) of the wide levels; not the first conv (latent -> width)
    wide = [c for c in convs if c.stride == 1 and c.in_channels == c.out_channels >= CODEC_INT8_MIN_CHANNELS]
    assert 0 < len(wide) < len(convs)
    assert all(codec_conv_form(c, "int8") == ("int8_im2col" if c in wide else "float32") for c in convs)
    assert codec_conv_form(convs[0], "int8") == "float32" and convs[0].in_channels != convs[0].out_channels
    ops = [n.op_type for n in decoders["int8"].graph.node]
    assert ops.count("MatMulInteger") == ops.count("DynamicQuantizeIm2Col") == len(wide)
    assert ops.count("Conv") == len(convs) - len(wide)
    assert "MatMulInteger" not in [n.op_type for n in decoders["none"].graph.node]
    meta = {p.key: p.value for p in decoders["int8"].metadata_props}
    assert meta["precision"] == "int8" and meta["int8_convs"] == str(len(wide))
    assert decoder_precision(config, "int8") == "int8"
    for q in ("none", "int4"):  # int4 bundles keep the float32 codec
        assert decoder_precision(config, q) == "float32"
        assert all(codec_conv_form(c, q) == "float32" for c in convs)


def test_int8_levels_run_channels_last(wide_codec, decoders) -> None:
    """Each int8 level's residual stacks run on [B, L, C]: one Transpose in and one out per level, the Snakes
    there channels-last, no Transpose between an int8 GEMM and the next layer."""
    config = codec_config(wide_codec)
    int8_levels = {c.in_channels for c in iter_layers(decoder_plan(config))
                   if isinstance(c, Conv) and codec_conv_form(c, "int8") != "float32"}
    assert len(int8_levels) == 2
    nodes = decoders["int8"].graph.node
    transposes = [n for n in nodes if n.op_type == "Transpose"]
    assert len(transposes) == 2 * len(int8_levels) + 1  # + the codebook lookup's [B, T, D] -> [B, D, T]
    snakes = [n for n in nodes if n.op_type == "Snake"]
    channels_last = [n for n in snakes if any(a.name == "channels_last" and a.i == 1 for a in n.attribute)]
    units_per_level = 2 * 3 * 3  # 2 Snakes per residual unit, 3 units per stack, 3 stacks
    assert len(channels_last) == units_per_level * len(int8_levels)
    float_snakes = [n for n in decoders["none"].graph.node if n.op_type == "Snake"]
    assert len(float_snakes) == len(snakes) and not any(n.attribute for n in float_snakes)
    assert {f.name for f in decoders["int8"].functions} == {"Snake", "DynamicQuantizeIm2Col"}


def test_int8_decoder_in_standard_ops(wide_codec, decoders, codes) -> None:
    """use_snake_op=False: no vampnet op at all (the im2col as DynamicQuantizeLinear, Pad, Slices, Concat), the
    same audio within the goal."""
    plain = decoder_model(wide_codec, quantize="int8", use_snake_op=False)
    assert not plain.functions and all(n.domain == "" for n in plain.graph.node)
    ops = [n.op_type for n in plain.graph.node]
    assert ops.count("DynamicQuantizeLinear") == ops.count("MatMulInteger") > 0
    ref = _decode(decoders["int8"], codes)
    assert audio_snr_db(ref, _decode(plain, codes, with_library=False)) >= SNR_GOAL_DB


def test_int8_decoder_quality(decoders, codes) -> None:
    ref = _decode(decoders["none"], codes)
    out = _decode(decoders["int8"], codes)
    assert out.shape == ref.shape
    assert SNR_GOAL_DB <= audio_snr_db(ref, out) < 80.0  # int8 is not a no-op, and within the goal
    assert multi_resolution_stft_distance(ref, out) < 0.1


def test_int8_decoder_threads_and_library(decoders, codes) -> None:
    two = _decode(decoders["int8"], codes, threads=2)
    np.testing.assert_array_equal(_decode(decoders["int8"], codes, threads=1), two)
    # stock ORT (Snake reference function): float rounding may move a dynamic scale, so compare by SNR
    stock = _decode(decoders["int8"], codes, with_library=False)
    assert audio_snr_db(two, stock) >= SNR_GOAL_DB


def test_int8_decoder_chunked(decoders, codes) -> None:
    """Each chunk quantizes with its own activation scales, so chunked != unchunked bit for bit (float32 decoders
    agree to 1e-5), but the seams stay within the quality goal."""
    session = vampnet_ort.create_session(decoders["int8"].SerializeToString(), intra_op_threads=2)
    whole = runtime.decode(session, codes, chunk_frames=None)
    pieces = runtime.decode(session, codes, chunk_frames=13)
    assert pieces.shape == whole.shape
    assert audio_snr_db(whole, pieces) >= SNR_GOAL_DB


def test_encoder_unchanged_by_quantize(wide_codec, decoders, tmp_path) -> None:
    """The encoder stays float32 (so the codes never change); the golden codec's decoder has no conv wide enough
    for int8 (tests/test_quantize_bundle.py checks its bundle records float32)."""
    encoder, decoder = export_codec(wide_codec, tmp_path, quantize="int8")
    assert encoder.name == "codec_encoder.onnx" and decoder.name == "codec_decoder.onnx"
    assert encoder.read_bytes() == encoder_model(wide_codec).SerializeToString()
    assert decoder.read_bytes() == decoders["int8"].SerializeToString()


def test_conv_weight_layout() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3, 7)).astype(np.float32)  # [C', C, k]
    q, scale = codec_conv_weight_int8(w)
    assert q.shape == (21, 5) and q.dtype == np.int8 and scale.shape == (5,)
    back = q.astype(np.float32) * scale
    for j in range(7):
        np.testing.assert_allclose(back[j * 3:(j + 1) * 3], w[:, :, j].T, atol=float(scale.max()) / 2 + 1e-7)
    with pytest.raises(ValueError, match="conv weight"):
        codec_conv_weight_int8(w[0])


def test_metrics() -> None:
    rng = np.random.default_rng(1)
    ref = rng.standard_normal(20000)
    assert audio_snr_db(ref, ref) == float("inf")
    assert audio_snr_db(ref, ref * 1.1) == pytest.approx(20.0, abs=1e-9)  # noise 0.1 x signal: 20 dB
    assert multi_resolution_stft_distance(ref, ref) == 0.0
    near, far = ref + 0.001 * rng.standard_normal(20000), ref + 0.3 * rng.standard_normal(20000)
    assert 0.0 < multi_resolution_stft_distance(ref, near) < multi_resolution_stft_distance(ref, far)
    with pytest.raises(ValueError, match="shapes differ"):
        audio_snr_db(ref, ref[:-1])
