"""The app's logic without a server (``vampnet_ort.app.VampApp`` on a stand-in bundle, tests/bundle_doubles.py):
what a click writes, the mask images, the seed rule, the pitch shift, and the errors the UI shows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import bundle_doubles as bd
from vampnet_ort.app import Controls, VampApp, pitch_shift
from vampnet_ort.pipeline import Pipeline, PipelineError

pytest.importorskip("matplotlib", reason="the mask image needs matplotlib")


@pytest.fixture(scope="module")
def app(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> VampApp:
    return VampApp(Pipeline(bundle), tmp_path_factory.mktemp("work"))


def test_vamp_writes_two_outputs_and_the_mask(app: VampApp, clip: Path) -> None:
    events: list = []
    outputs, image, seed = app.vamp(str(clip), Controls(seed=5), lambda *e: events.append(e))
    assert seed == 5 and len(outputs) == 2
    for path in outputs:
        audio, rate = sf.read(path)
        assert rate == bd.SAMPLE_RATE and abs(audio.size / rate - 1.0) < 1e-3
    assert Path(image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert events[0] == ("encode", 0, 1) and events[-1] == ("decode", 2, 2)
    again, _, _ = app.vamp(str(clip), Controls(seed=5))
    for a, b in zip(outputs, again):
        np.testing.assert_array_equal(sf.read(a)[0], sf.read(b)[0])


def test_seed_zero_draws_a_seed(app: VampApp) -> None:
    seeds = {app.pick_seed(0) for _ in range(5)}
    assert 0 not in seeds and len(seeds) > 1
    assert app.pick_seed(42) == 42


def test_preview_and_example(app: VampApp) -> None:
    assert Path(app.preview(Controls(periodic_prompt=3, dropout=0.3))).read_bytes()[:4] == b"\x89PNG"
    audio, rate = sf.read(app.example())
    assert rate == 44100 and audio.shape == (5 * 44100, 2)


def test_pitch_shift_moves_the_pitch() -> None:
    pytest.importorskip("librosa")
    rate = 22050
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 220 * t))[None, :].astype(np.float32)
    y = pitch_shift(x, rate, 12)
    assert y.shape == x.shape
    spectrum = np.abs(np.fft.rfft(y[0] * np.hanning(y.shape[1])))
    assert abs(np.argmax(spectrum) * rate / y.shape[1] - 440) < 5  # one octave up
    assert pitch_shift(x, rate, 0) is x
    with pytest.raises(ValueError, match="between -24 and 24"):
        pitch_shift(x, rate, 30)


def test_errors_the_ui_shows(app: VampApp, clip: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no input audio"):
        app.vamp(None, Controls())
    bad = tmp_path / "upload-dir" / "song.mp3"
    bad.parent.mkdir()
    bad.write_text("no audio here")
    with pytest.raises(ValueError) as info:
        app.vamp(str(bad), Controls())
    assert str(info.value).startswith("song.mp3:") and str(tmp_path) not in str(info.value)
    with pytest.raises(ValueError, match="conditioning codebooks"):
        app.vamp(str(clip), replace(Controls(), conditioning_codebooks=20))
    with pytest.raises(PipelineError, match="time stretch"):
        app.vamp(str(clip), replace(Controls(), time_stretch=0))


def test_serve_without_gradio_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from vampnet_ort.app import serve

    monkeypatch.setitem(sys.modules, "gradio", None)  # as if the extra were not installed
    with pytest.raises(ValueError, match=r"pip install 'vampnet-ort\[app\]'"):
        serve()
