"""Audio I/O and preprocessing of the pipeline."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from vampnet_ort import audio


def _tone(sr: int, seconds: float, channels: int, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    chans = [amplitude * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]
    return np.stack(chans).astype(np.float32)


@pytest.mark.parametrize(
    "ext,subtype", [("wav", "PCM_16"), ("wav", "PCM_24"), ("wav", "FLOAT"), ("flac", "PCM_16"), ("ogg", "VORBIS")]
)
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_read_formats_and_channels(tmp_path: Path, ext: str, subtype: str, channels: int) -> None:
    x = _tone(22050, 0.5, channels)
    path = tmp_path / f"a.{ext}"
    sf.write(str(path), x.T, 22050, subtype=subtype)
    samples, sr = audio.read_audio(path)
    assert sr == 22050 and samples.shape == (channels, x.shape[1]) and samples.dtype == np.float32
    tol = 0.05 if subtype == "VORBIS" else 1e-3
    np.testing.assert_allclose(samples, x, atol=tol)


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(audio.AudioError, match="no such file"):
        audio.read_audio(tmp_path / "missing.wav")
    with pytest.raises(audio.AudioError, match="directory"):
        audio.read_audio(tmp_path)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(audio.AudioError, match="unsupported or unrecognised"):
        audio.read_audio(junk)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0, 1), dtype=np.float32), 44100)
    with pytest.raises(audio.AudioError, match="no audio samples"):
        audio.read_audio(empty)
    nan = tmp_path / "nan.wav"
    x = np.zeros((1000, 1), dtype=np.float32)
    x[10] = np.nan
    sf.write(str(nan), x, 44100, subtype="FLOAT")
    with pytest.raises(audio.AudioError, match="NaN"):
        audio.read_audio(nan)
    truncated = tmp_path / "cut.flac"
    sf.write(str(truncated), _tone(44100, 1.0, 1).T, 44100)
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(audio.AudioError):
        audio.read_audio(truncated)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_read_permission_denied(tmp_path: Path) -> None:
    p = tmp_path / "locked.wav"
    sf.write(str(p), _tone(8000, 0.1, 1).T, 8000)
    p.chmod(0)
    with pytest.raises(audio.AudioError, match="permission"):
        audio.read_audio(p)


def test_prepare_resamples_downmixes_normalizes_and_pads() -> None:
    x = _tone(22050, 2.0, 2, amplitude=0.05)
    prepared = audio.prepare(x, 22050, 44100, 768)
    assert prepared.sample_rate == 44100
    assert prepared.length == 88200
    assert prepared.samples.size % 768 == 0 and prepared.samples.size >= prepared.length
    assert not prepared.samples[prepared.length:].any()
    meter = pyloudnorm.Meter(44100)
    assert meter.integrated_loudness(prepared.samples[: prepared.length].astype(np.float64)) == pytest.approx(-24.0, abs=0.05)
    assert np.max(np.abs(prepared.samples)) <= 1.0
    # loudness recorded = loudness of the mono resampled input (independent measurement)
    mono = x.mean(axis=0)
    assert prepared.input_loudness == pytest.approx(meter.integrated_loudness(
        np.interp(np.arange(88200) / 2, np.arange(mono.size), mono)), abs=0.1)
    # resampled content: a 220/330 Hz mix keeps its spectrum peak at 220 Hz / 330 Hz
    spectrum = np.abs(np.fft.rfft(prepared.samples[: prepared.length]))
    freqs = np.fft.rfftfreq(prepared.length, 1 / 44100)
    top_two = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert top_two == pytest.approx([220.0, 330.0], abs=1.0)


def test_prepare_peak_limit_and_silence() -> None:
    spiky = np.zeros((1, 44100), dtype=np.float32)
    spiky[0, 100] = 1.0  # a lone click: -24 LUFS would need a huge gain, the peak limit then caps it
    prepared = audio.prepare(spiky, 44100, 44100, 768)
    assert np.max(np.abs(prepared.samples)) == pytest.approx(1.0)
    silent = audio.prepare(np.zeros((1, 1000), dtype=np.float32), 44100, 44100, 768)
    assert silent.input_loudness == audio.MIN_LOUDNESS_LUFS
    assert not silent.samples.any() and silent.samples.size == 1536


def test_finish_trims_and_restores_loudness() -> None:
    decoded = _tone(44100, 1.2, 1, amplitude=0.5)[0]
    out = audio.finish(decoded, 44100, 44100, -30.0)
    assert out.shape == (44100,)
    assert pyloudnorm.Meter(44100).integrated_loudness(out.astype(np.float64)) == pytest.approx(-30.0, abs=0.05)
    loud = audio.finish(decoded, 44100, 44100, 0.0)  # asks for more than the peak allows
    assert np.max(np.abs(loud)) <= 1.0 + 1e-6
    with pytest.raises(audio.AudioError, match="NaN"):
        audio.finish(np.full(10, np.nan, dtype=np.float32), 44100, 10, -24.0)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_write_round_trip(tmp_path: Path, ext: str) -> None:
    x = _tone(44100, 0.3, 1)[0]
    out = audio.write_audio(tmp_path / f"o.{ext}", x, 44100)
    back, sr = sf.read(str(out), dtype="float32")
    assert sr == 44100 and back.shape == x.shape
    np.testing.assert_allclose(back, x, atol=0.05 if ext == "ogg" else 1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"o.{ext}"]


def test_write_errors_leave_nothing(tmp_path: Path) -> None:
    x = _tone(44100, 0.1, 1)[0]
    with pytest.raises(audio.AudioError, match="extension"):
        audio.write_audio(tmp_path / "o.xyz", x, 44100)
    with pytest.raises(audio.AudioError, match="does not exist"):
        audio.write_audio(tmp_path / "nope" / "o.wav", x, 44100)
    with pytest.raises(audio.AudioError, match="sample rates from 1 to 655350 Hz"):
        audio.write_audio(tmp_path / "o.flac", x, 1_000_000)  # flac cannot hold this sample rate
    assert list(tmp_path.iterdir()) == []


def test_a_failing_write_leaves_no_part_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing_write(self, data):
        calls.append(len(data))
        if len(calls) == 2:
            raise sf.LibsndfileError(0, "disk full (simulated)")

    monkeypatch.setattr(sf.SoundFile, "write", failing_write)
    with pytest.raises(audio.AudioError, match="cannot write audio"):
        audio.write_audio(tmp_path / "o.wav", np.zeros(3 * audio.WRITE_BLOCK_FRAMES, np.float32), 8000)
    assert calls == [audio.WRITE_BLOCK_FRAMES] * 2 and list(tmp_path.iterdir()) == []


def test_write_replaces_existing_file_atomically(tmp_path: Path) -> None:
    target = tmp_path / "o.wav"
    target.write_bytes(b"old")
    audio.write_audio(target, np.zeros(100, dtype=np.float32), 8000)
    assert sf.info(str(target)).frames == 100
    assert [p.name for p in tmp_path.iterdir()] == ["o.wav"]
