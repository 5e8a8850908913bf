"""Pipeline orchestration on stand-in bundles (tests/bundle_doubles.py): chunking, chunk-edge forcing, c2f padding,
per-chunk and per-item seeds, variations, feedback, time stretch, files. Expected values are computed here with
numpy from the rules of docs/SPEC.md section 3, independently of the pipeline code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import bundle_doubles as bd
from vampnet_ort import audio, masks
from vampnet_ort.pipeline import Pipeline, PipelineError, SamplingOptions, VampOptions, derive_seed, output_paths


@pytest.fixture(scope="module")
def pipe(bundle: Path) -> Pipeline:
    return Pipeline(bundle)


def _clip(seconds: float = 1.0, sr: int = 11025, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.2 * np.sin(2 * np.pi * 3 * t) + 0.05 * rng.standard_normal(t.size)
    return np.stack([x * (1 + 0.1 * c) for c in range(channels)]).astype(np.float32)


def _deterministic_options(**kw) -> VampOptions:
    mask = masks.MaskOptions(periodic_period=4, periodic_random_roll=False, upper_codebook_mask=3)
    return VampOptions(mask=mask, **kw)


def _forced(mask: np.ndarray, chunk: int, n_coarse: int) -> np.ndarray:
    out = mask.copy()
    for lo in range(0, mask.shape[-1], chunk):
        hi = min(mask.shape[-1], lo + chunk)
        if (out[:, :n_coarse, lo:hi] == 0).any():
            out[:, :n_coarse, lo] = 0
            out[:, :n_coarse, hi - 1] = 0
    return out


def test_vamp_samples_follows_the_chunk_rules(pipe: Pipeline) -> None:
    x = _clip(1.01)
    opts = _deterministic_options(seed=11)
    result = pipe.vamp_samples(x, 11025, opts)
    prepared = audio.prepare(x, 11025, bd.SAMPLE_RATE, bd.HOP)
    frames = prepared.samples.reshape(-1, bd.HOP).mean(axis=1)
    base = np.floor((frames + 1) * 500).astype(np.int64)
    codes_in = (base[None, None, :] + np.arange(14)[None, :, None]) % bd.V
    np.testing.assert_array_equal(result.codes_in, codes_in)
    T = codes_in.shape[-1]
    assert prepared.length % bd.HOP != 0 and T == -(-prepared.length // bd.HOP) == 127  # padded partial frame

    base_mask = masks.codebook_mask(masks.periodic_mask((1, 14, T), 4, 1), 3)
    coarse_mask = _forced(base_mask, 20, 4)
    np.testing.assert_array_equal(result.mask[:, :4], coarse_mask[:, :4])
    np.testing.assert_array_equal(result.mask[:, 4:], base_mask[:, 4:])

    expected = codes_in.copy()
    for k, lo in enumerate(range(0, T, 20)):  # coarse: chunks of 20 frames, seed derived per chunk
        sl = slice(lo, min(T, lo + 20))
        expected[:, :4, sl] = bd.expected_decode(codes_in[:, :4, sl], coarse_mask[:, :4, sl],
                                                 derive_seed(11, 0, 0, k), 0)
    c2f_in = expected.copy()
    for k, lo in enumerate(range(0, T, 7)):  # c2f: chunks of 7 frames, conditioning codebooks 0..3 kept
        sl = slice(lo, min(T, lo + 7))
        expected[:, :, sl] = bd.expected_decode(c2f_in[:, :, sl], base_mask[:, :, sl],
                                                derive_seed(11, 0, 1, k), 4)
    np.testing.assert_array_equal(result.codes_out, expected)

    kept = result.mask == 0
    np.testing.assert_array_equal(result.codes_out[kept], codes_in[kept])
    assert result.audio.shape == (1, prepared.length) and result.sample_rate == bd.SAMPLE_RATE
    assert np.max(np.abs(result.audio)) <= 1.0


def test_seed_reproduces_and_variations_equal_single_runs(pipe: Pipeline) -> None:
    x = _clip(0.5)
    opts = VampOptions(seed=3, variations=3)
    batch = pipe.vamp_samples(x, 11025, opts)
    again = pipe.vamp_samples(x, 11025, opts)
    np.testing.assert_array_equal(batch.codes_out, again.codes_out)
    np.testing.assert_array_equal(batch.audio, again.audio)
    assert batch.mask.shape[0] == 3
    for i in range(3):  # item i of the batch == a single run seeded 3 + i, in everything (mask randomness too)
        alone = pipe.vamp_samples(x, 11025, VampOptions(seed=3 + i))
        np.testing.assert_array_equal(batch.mask[i: i + 1], alone.mask)
        np.testing.assert_array_equal(batch.codes_out[i: i + 1], alone.codes_out)
        np.testing.assert_array_equal(batch.audio[i: i + 1], alone.audio)
    assert len({batch.codes_out[i].tobytes() for i in range(3)}) == 3
    # the default mask is random (periodic roll): the items' masks differ, so the test above is not vacuous
    assert len({batch.mask[i].tobytes() for i in range(3)}) > 1


def test_variation_equals_single_run_with_every_random_mask_option(pipe: Pipeline) -> None:
    """Issue 13 #14: every random mask ingredient (intensity, roll, dropout) and feedback passes keyed per item."""
    x = _clip(0.5)
    mask = masks.MaskOptions(intensity=0.7, periodic_period=3, periodic_width=1, dropout=0.3)
    batch = pipe.vamp_samples(x, 11025, VampOptions(seed=-1, variations=2, feedback_steps=2, mask=mask))
    for i in range(2):
        alone = pipe.vamp_samples(x, 11025, VampOptions(seed=-1 + i, feedback_steps=2, mask=mask))
        np.testing.assert_array_equal(batch.mask[i: i + 1], alone.mask)
        np.testing.assert_array_equal(batch.codes_out[i: i + 1], alone.codes_out)
        np.testing.assert_array_equal(batch.audio[i: i + 1], alone.audio)
    assert not np.array_equal(batch.mask[0], batch.mask[1])


def test_time_stretch_and_feedback(pipe: Pipeline) -> None:
    x = _clip(0.5)
    plain = pipe.vamp_samples(x, 11025, VampOptions())
    stretched = pipe.vamp_samples(x, 11025, VampOptions(time_stretch=3, feedback_steps=2))
    assert stretched.codes_out.shape[-1] == 3 * plain.codes_out.shape[-1]
    assert stretched.audio.shape[-1] == 3 * plain.audio.shape[-1]
    np.testing.assert_array_equal(stretched.codes_in[:, :, ::3], plain.codes_in)


def test_no_c2f_keeps_fine_codebooks(tmp_path: Path) -> None:
    pipe = Pipeline(bd.write_bundle(tmp_path / "b", with_c2f=False))
    r = pipe.vamp_samples(_clip(0.3), 11025, VampOptions())
    np.testing.assert_array_equal(r.codes_out[:, 4:], r.codes_in[:, 4:])
    assert not r.mask[:, 4:].any()


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: VampOptions(coarse=SamplingOptions(steps=0)), "steps"),
        (lambda: VampOptions(coarse=SamplingOptions(temperature=-1)), "temperature"),
        (lambda: VampOptions(coarse=SamplingOptions(top_p=2.0)), "top-p"),
        (lambda: VampOptions(c2f=SamplingOptions(typical_mass=1.0)), "typical mass"),
        (lambda: VampOptions(coarse=SamplingOptions(sample_cutoff=float("nan"))), "finite"),
        (lambda: VampOptions(variations=0), "variations"),
        (lambda: VampOptions(time_stretch=0), "time stretch"),
        (lambda: VampOptions(feedback_steps=0), "feedback"),
        (lambda: VampOptions(mask=masks.MaskOptions(periodic_width=-1)), "width"),
    ],
)
def test_impossible_options(pipe: Pipeline, make, message: str) -> None:
    with pytest.raises(ValueError, match=message):  # refused as built (frozen options validate once)
        pipe.vamp_samples(_clip(0.1), 11025, make())


def test_vamp_file_writes_variations_and_plot(pipe: Pipeline, tmp_path: Path) -> None:
    src = tmp_path / "in.flac"
    sf.write(str(src), _clip(0.5).T, 11025)
    written, result = pipe.vamp_file(src, tmp_path / "out.wav", VampOptions(variations=2),
                                     plot=tmp_path / "codes.png", output_sample_rate=11025)
    assert written == output_paths(tmp_path / "out.wav", 2) == [tmp_path / "out_0.wav", tmp_path / "out_1.wav"]
    for path in written:
        info = sf.info(str(path))
        assert info.samplerate == 11025 and info.channels == 1 and abs(info.frames - 5512) <= 2
    assert (tmp_path / "codes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.png", "in.flac", "out_0.wav", "out_1.wav"]


def test_vamp_file_checks_outputs_before_work(pipe: Pipeline, tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    sf.write(str(src), _clip(0.2).T, 11025)
    with pytest.raises(audio.AudioError, match="extension"):
        pipe.vamp_file(src, tmp_path / "out.mp4")
    with pytest.raises(PipelineError, match="does not exist"):
        pipe.vamp_file(src, tmp_path / "missing" / "out.wav")
    with pytest.raises(PipelineError, match="PNG"):
        pipe.vamp_file(src, tmp_path / "out.wav", plot=tmp_path / "plot.jpg")
    with pytest.raises(audio.AudioError, match="no such file"):
        pipe.vamp_file(tmp_path / "nope.wav", tmp_path / "out.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_derive_seed_is_additive_distinct_and_signed() -> None:
    assert derive_seed(0) == 0 and derive_seed(-7) == -7
    values = {derive_seed(0, p, st, k) for p in range(3) for st in range(2) for k in range(50)}
    assert len(values) == 300
    assert all(-(2**63) <= v < 2**63 for v in values)
    for labels in [(0, 0, 0), (1, 1, 3)]:  # item b of a batch (graph seed + b) == a run seeded seed + b
        assert derive_seed(5, *labels) + 2 == derive_seed(7, *labels)
    assert min(abs(a - b) for a in values for b in values if a != b) > 2**20  # far-apart streams


def test_missing_extras_are_clear_errors(monkeypatch: pytest.MonkeyPatch, pipe: Pipeline, tmp_path: Path) -> None:
    import builtins

    real_import = builtins.__import__

    def without_extras(name, *args, **kwargs):
        if name.split(".")[0] in ("librosa", "matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_extras)
    with pytest.raises(masks.MaskError, match=r"vampnet-ort\[analysis\]"):
        masks.MaskOptions(onset_width=2).validate(14)
    src = tmp_path / "in.wav"
    sf.write(str(src), _clip(0.2).T, 11025)
    with pytest.raises(PipelineError, match=r"vampnet-ort\[plot\]"):
        pipe.vamp_file(src, tmp_path / "o.wav", plot=tmp_path / "p.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_real_codec_with_stand_in_decoders(tmp_path: Path) -> None:
    """The golden LAC codec export (run through vampnet_ort.codec) around stand-in decode graphs."""
    from op_testing import GOLDEN

    pipe = Pipeline(bd.write_bundle(tmp_path / "b", coarse_chunk=100, c2f_chunk=40,
                                    codec_checkpoint=GOLDEN / "codec.pth"))
    rng = np.random.default_rng(3)
    t = np.arange(int(2.5 * 22050)) / 22050
    x = np.stack([0.3 * np.sin(2 * np.pi * 330 * t), 0.1 * rng.standard_normal(t.size)]).astype(np.float32)
    result = pipe.vamp_samples(x, 22050, VampOptions(seed=1))
    prepared = audio.prepare(x, 22050, 44100, 768)
    whole = pipe.bundle.session("codec_encoder").run(None, {"audio": prepared.samples.reshape(1, 1, -1)})[0]
    np.testing.assert_array_equal(result.codes_in, whole)  # the codec runner == one plain session run
    assert result.codes_in.shape == (1, 14, -(-prepared.length // 768))
    kept = result.mask == 0
    np.testing.assert_array_equal(result.codes_out[kept], result.codes_in[kept])
    assert result.audio.shape == (1, prepared.length) and np.isfinite(result.audio).all()
    assert 0 < np.abs(result.audio).max() <= 1.0
