"""End to end on the golden checkpoints (tiny upstream VampNet + LAC): export through the CLI once, then vamp a
5 s synthesized stereo clip at 22.05 kHz through the Python API and the CLI; plus the demo bundle."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from op_testing import GOLDEN

pytest.importorskip("vampnet_ort.export.bundle", reason="the bundle exporter has not landed in this checkout")

from vampnet_ort.bundle import load_bundle  # noqa: E402
from vampnet_ort.demo import synthesize_clip  # noqa: E402
from vampnet_ort.pipeline import Pipeline, VampOptions  # noqa: E402
from cli_testing import cli_command  # noqa: E402


def cli(*args: object, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def golden_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("e2e") / "golden-bundle"
    proc = cli("export", "--codec", GOLDEN / "codec.pth", "--coarse", GOLDEN / "coarse.pth", "--c2f",
               GOLDEN / "c2f.pth", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out.resolve())
    return out


@pytest.fixture(scope="session")
def clip_22k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import soxr

    x = synthesize_clip(5.0, 44100, seed=1)
    x22 = soxr.resample(x.T, 44100, 22050)
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    sf.write(str(path), x22, 22050, subtype="PCM_16")
    assert sf.info(str(path)).frames == 5 * 22050 and sf.info(str(path)).channels == 2
    return path


def test_bundle_describes_golden_models(golden_bundle: Path) -> None:
    b = load_bundle(golden_bundle)
    assert (b.sample_rate, b.hop_length, b.n_codebooks, b.mask_token) == (44100, 768, 14, 1024)
    assert (b.coarse.n_codebooks, b.coarse.chunk_frames) == (4, 575)
    assert b.c2f is not None and (b.c2f.n_conditioning_codebooks, b.c2f.chunk_frames) == (4, 173)
    assert not b.demo
    info = cli("info", golden_bundle)
    assert info.returncode == 0 and "c2f.onnx" in info.stdout


def test_vamp_golden_models(golden_bundle: Path, clip_22k: Path, tmp_path: Path) -> None:
    pipe = Pipeline(golden_bundle)
    out = tmp_path / "out.wav"
    opts = VampOptions(seed=5)
    written, result = pipe.vamp_file(clip_22k, out, opts)
    assert written == [out]
    data, sr = sf.read(str(out), dtype="float32")
    assert sr == 44100 and data.ndim == 1 and data.shape[0] == 5 * 44100  # same duration as the input
    assert np.isfinite(data).all() and 0 < np.max(np.abs(data)) <= 1.0

    T = result.codes_in.shape[-1]
    assert T == -(-5 * 44100 // 768) and result.codes_out.shape == (1, 14, T)
    assert ((result.codes_out >= 0) & (result.codes_out < 1024)).all()
    kept = result.mask == 0
    assert kept[:, :3].any()  # the periodic prompt keeps frames of codebooks 0..2
    np.testing.assert_array_equal(result.codes_out[kept], result.codes_in[kept])
    assert (result.codes_out[~kept] != result.codes_in[~kept]).any()

    again = pipe.vamp_file(clip_22k, tmp_path / "again.wav", opts)[1]
    np.testing.assert_array_equal(again.codes_out, result.codes_out)
    np.testing.assert_array_equal(sf.read(str(tmp_path / "again.wav"), dtype="float32")[0], data)


def test_variations_in_one_batch_match_single_runs(golden_bundle: Path, clip_22k: Path) -> None:
    pipe = Pipeline(golden_bundle)
    x, sr = sf.read(str(clip_22k), dtype="float32", always_2d=True)
    x = x.T[:, : sr * 2]
    batch = pipe.vamp_samples(x, sr, VampOptions(seed=9, variations=2, coarse=_fast()))
    first = pipe.vamp_samples(x, sr, VampOptions(seed=9, variations=1, coarse=_fast()))
    single = pipe.vamp_samples(x, sr, VampOptions(seed=10, variations=1, coarse=_fast()))
    for item, alone in ((0, first), (1, single)):  # variation b == a single run seeded 9 + b, mask included
        np.testing.assert_array_equal(batch.mask[item: item + 1], alone.mask)
        np.testing.assert_array_equal(batch.codes_out[item: item + 1], alone.codes_out)
        np.testing.assert_array_equal(batch.audio[item: item + 1], alone.audio)
    assert not np.array_equal(batch.codes_out[0], batch.codes_out[1])


def _fast():
    from vampnet_ort.pipeline import SamplingOptions

    return SamplingOptions(steps=8)


@pytest.mark.slow
def test_cli_vamp_golden(golden_bundle: Path, clip_22k: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.ogg"
    proc = cli("vamp", clip_22k, out, "--models", golden_bundle, "--steps", "8", "--seed", "2", "-q",
               "--time-stretch", "2", "--feedback-steps", "2", "--onset-width", "2", "--beat-width", "40")
    assert proc.returncode == 0, proc.stderr
    info = sf.info(str(out))
    assert info.samplerate == 44100 and abs(info.frames - 10 * 44100) <= 1


@pytest.mark.slow
def test_demo_bundle_commands(tmp_path: Path, clip_22k: Path) -> None:
    env = {"VAMPNET_ORT_CACHE": str(tmp_path / "cache")}
    proc = cli("demo", tmp_path / "demo", "--seconds", "2", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "NOT music" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["codes.png", "input.wav", "output.wav"]
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and load_bundle(cached[0]).demo
    from vampnet_ort.demo import build_demo_bundle  # the build is deterministic: same files, same sha256

    rebuilt = build_demo_bundle(tmp_path / "rebuilt")
    assert load_bundle(rebuilt).manifest["files"] == load_bundle(cached[0]).manifest["files"]
    first = sf.read(str(tmp_path / "demo" / "output.wav"))[0]
    # `vamp IN OUT` without --models uses the cached demo bundle; the build is deterministic
    proc = cli("vamp", tmp_path / "demo" / "input.wav", tmp_path / "again.wav", env=env)
    assert proc.returncode == 0 and "NOT music" in proc.stderr
    np.testing.assert_array_equal(sf.read(str(tmp_path / "again.wav"))[0], first)
    info = cli("info", env=env)  # without DIR: the demo bundle
    assert info.returncode == 0 and "NOT music" in info.stdout


@pytest.mark.slow
def test_cli_export_bad_inputs(golden_bundle: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint")
    out = tmp_path / "b"
    for args in (["--codec", junk, "--coarse", GOLDEN / "coarse.pth"],
                 ["--codec", GOLDEN / "coarse.pth", "--coarse", GOLDEN / "coarse.pth"],  # not a codec
                 ["--codec", GOLDEN / "codec.pth", "--coarse", GOLDEN / "codec.pth"]):  # not a VampNet model
        proc = cli("export", *args, "--out", out)
        assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith("vampnet-ort: error:") and "Traceback" not in proc.stderr
        assert not out.exists()
    proc = cli("export", "--codec", GOLDEN / "codec.pth", "--coarse", GOLDEN / "coarse.pth", "--out", golden_bundle)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert load_bundle(golden_bundle).c2f is not None  # the existing bundle is untouched
