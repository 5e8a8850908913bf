"""vampnet.json's codec.geometry: the affine chunk/seam numbers reproduce vampnet_ort.codec's chunk plans.

The web app chunks the codec with these numbers only (no layer tree), so they are checked here against the chunk
plans that ``codec.encode`` / ``codec.decode`` actually run, for the demo codec, the release codec and a codec with
odd strides, and many lengths."""

from __future__ import annotations

import pytest

from vampnet_ort import codec
from vampnet_ort.codec_geometry import CodecConfig, GeometryError, chunk_geometry
from vampnet_ort.demo import DEMO_CODEC

RELEASE = dict(sample_rate=44100, encoder_dim=64, encoder_rates=[2, 4, 8, 8], decoder_dim=1536,
               decoder_rates=[8, 8, 4, 2], n_codebooks=14, codebook_size=1024, codebook_dim=8)
ODD = dict(sample_rate=16000, encoder_dim=4, encoder_rates=[3, 5], decoder_dim=8, decoder_rates=[5, 3],
           n_codebooks=2, codebook_size=16, codebook_dim=4)


def affine_encode_chunks(g: dict, n: int, chunk: int) -> list[tuple[int, int, int, int]]:
    hop = g["hop_length"]
    total = -(-n // hop) + g["encoder_frames_offset"]
    out = []
    for f0 in range(0, total, chunk):
        f1 = min(total, f0 + chunk)
        lo, hi = f0 * hop - g["encoder_left"], (f1 - 1) * hop + g["encoder_right"]
        out.append((f0, f1, max(0, lo) // hop * hop, min(n, -(-(hi + 1) // hop) * hop)))
    return out


def affine_decode_chunks(g: dict, total: int, chunk: int) -> list[tuple[int, int, int, int, int, int]]:
    dhop = g["decoder_hop"]
    out = []
    for f0 in range(0, total, chunk):
        f1 = min(total, f0 + chunk)
        last = f1 == total
        s1 = total * dhop + g["decoder_samples_offset"] if last else f1 * dhop
        hi = f1 - 1 + (g["decoder_right_end"] if last else g["decoder_right"])
        out.append((f0, f1, max(0, f0 - g["decoder_left"]), min(total, hi + 1), f0 * dhop, s1))
    return out


@pytest.mark.parametrize("kwargs", [DEMO_CODEC, RELEASE, ODD], ids=["demo", "release", "odd"])
def test_geometry_reproduces_codec_chunk_plans(kwargs: dict) -> None:
    config = CodecConfig.from_kwargs(kwargs)
    g = codec.geometry(config)
    hop = config.hop_length
    for chunk in (1, 3, 7, g["encode_chunk_frames"]):
        for n in (1, hop - 1, hop, 5 * hop + 3, 40 * hop, 1000 * hop + 17):
            if codec.num_frames(config, n) < 1:
                continue
            assert affine_encode_chunks(g, n, chunk) == codec.encode_chunks(config, n, chunk), (chunk, n)
    for chunk in (1, 2, 5, g["decode_chunk_frames"]):
        for total in (1, 2, 3, 11, 64, 1100):
            assert affine_decode_chunks(g, total, chunk) == codec.decode_chunks(config, total, chunk), (chunk, total)
            assert total * g["decoder_hop"] + g["decoder_samples_offset"] == codec.num_samples(config, total)


def test_demo_geometry_values_and_export_manifest() -> None:
    g = codec.geometry(CodecConfig.from_kwargs(DEMO_CODEC))
    assert g["hop_length"] == g["decoder_hop"] == 768
    assert g["encode_chunk_frames"] == round(10 * 44100 / 768) and g["decode_chunk_frames"] == 512
    assert g["encoder_left"] > 0 and g["encoder_right"] > 0 and g["decoder_left"] > 0


def test_non_affine_probe_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    import vampnet_ort.codec_geometry as cg

    real = cg.output_length
    monkeypatch.setattr(cg, "output_length", lambda layer, n: real(layer, n) + (n % 2))
    with pytest.raises(GeometryError, match="not affine"):
        chunk_geometry(CodecConfig.from_kwargs(DEMO_CODEC))
