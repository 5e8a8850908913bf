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


# ------------------------------------------------------------------------------------------ the app's additions
def test_preview_covers_the_loaded_input(app: VampApp, clip: Path) -> None:
    """The preview is drawn over the input's length once one is loaded (PREVIEW_SECONDS without one)."""
    from vampnet_ort.app import PREVIEW_SECONDS

    seconds = app.input_seconds(str(clip))
    assert abs(seconds - 1.0) < 1e-9
    for length in (seconds, None):
        path = Path(app.preview(Controls(), length))
        shown = PREVIEW_SECONDS if length is None else length
        assert path.name == f"mask-preview-{shown:.1f}s.png" and path.read_bytes()[:4] == b"\x89PNG"


def test_the_ui_starts_on_a_preset_and_shows_the_one_the_controls_match() -> None:
    from vampnet_ort.app import START_PRESET, matching_preset, preset_controls
    from vampnet_ort.app_presets import PRESETS

    assert START_PRESET == "medium variation"
    for name in PRESETS:
        assert matching_preset(preset_controls(name, Controls(seed=3, sampling_steps=5))) == name
    assert matching_preset(replace(preset_controls(START_PRESET), dropout=0.35)) is None
    assert matching_preset(replace(preset_controls(START_PRESET), dropout="x")) is None


def test_check_reports_what_a_vamp_would_refuse(app: VampApp, clip: Path, tmp_path: Path) -> None:
    app.check(str(clip), Controls())
    with pytest.raises(ValueError, match="no input audio"):
        app.check(None, Controls())
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF" + bytes(300))
    with pytest.raises(ValueError, match="^noise.wav: "):
        app.check(str(bad), Controls())
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        app.check(str(clip), Controls(), "nope")


def test_one_variation_without_the_mask_image(app: VampApp, clip: Path) -> None:
    outputs, image, seed = app.vamp(str(clip), Controls(seed=9), variations=1, mask_image=False)
    assert len(outputs) == 1 and image is None and seed == 9
    both, _, _ = app.vamp(str(clip), Controls(seed=9))
    np.testing.assert_array_equal(sf.read(outputs[0])[0], sf.read(both[0])[0])  # variation 0 is seed 9 either way


def test_the_space_api_is_upstreams_signature() -> None:
    """Upstream app.py's api_vamp (hugofloresgarcia/vampnet, main): its parameters in order, and each default =
    the initial value of the upstream UI control it reads."""
    from vampnet_ort import space_api

    upstream = dict(input_audio=None, sampletemp=1.0, top_p=0.0, periodic_p=7, dropout=0.0, stretch_factor=1,
                    onset_mask_width=0, typical_filtering=True, typical_mass=0.15, typical_min_tokens=64, seed=0,
                    model_choice="default", n_mask_codebooks=3, pitch_shift_amt=0, sample_cutoff=1.0,
                    sampling_steps=36, beat_mask_ms=0, num_feedback_steps=1)
    assert space_api.API_NAME == "vamp_1" and space_api.NAMES == tuple(upstream)
    parameters = space_api.parameters(Controls())
    assert {p.name: p.default for p in parameters} == {k: v for k, v in upstream.items() if v is not None}
    for p in parameters:  # every upstream keyword reaches a control of the app (or the model choice)
        assert p.control == space_api.MODEL_CHOICE or p.control in Controls.__dataclass_fields__, p
    controls, model = space_api.controls_of(dict(periodic_p=3, n_mask_codebooks=5, model_choice="x"))
    assert controls == dict(periodic_prompt=3, compression_prompt=5) and model == "x"
    with pytest.raises(ValueError, match="unknown parameter"):
        space_api.controls_of(dict(periodic_prompt=3))


def test_harp_controls_describe_upstreams_card(app: VampApp) -> None:
    """pyharp v0.3.0's serialised controls: the card, the input track, six controls in upstream's order, each with
    exactly the fields of its pyharp class; the fixed values are upstream harp_vamp's."""
    from vampnet_ort import harp
    from vampnet_ort.app import harp_endpoint, preset_controls, START_PRESET

    described = harp_endpoint(app, preset_controls(START_PRESET)).describe()
    assert set(described) == {"card", "inputs", "outputs"}
    assert described["card"]["name"] == "vampnet" and set(described["card"]) == {"name", "description", "author",
                                                                                  "tags"}
    fields = {"audio_track": {"label", "info", "required", "type"},
              "slider": {"label", "info", "minimum", "maximum", "step", "value", "type"},
              "dropdown": {"label", "info", "choices", "value", "type"}, "json": {"label", "info", "type"}}
    for control in described["inputs"] + described["outputs"]:
        assert set(control) == fields[control["type"]], control
        if control["type"] == "slider":
            assert control["minimum"] <= control["value"] <= control["maximum"] and control["step"] > 0
    assert [c["type"] for c in described["inputs"]] == ["audio_track"] + ["slider"] * 4 + ["dropdown", "slider"]
    assert [c["label"] for c in described["inputs"][1:]] == ["sample temperature", "periodic prompt", "mask dropout",
                                                            "compression prompt", "model choice",
                                                            "beat mask width (ms)"]
    assert described["inputs"][5]["choices"] == app.models.names
    assert [c["type"] for c in described["outputs"]] == ["audio_track", "json"]
    assert harp.FIXED_CONTROLS["sampling_steps"] == 36 and harp.FIXED_CONTROLS["seed"] != 0
    labels = harp.label_list([harp.OutputLabel(t=0.0, label="x", duration=2.0)])
    assert labels["meta"] == {"_type": "pyharp.LabelList"} and labels["labels"][0]["label_type"] == "OutputLabel"


def test_cancel_board_stops_only_running_jobs() -> None:
    from vampnet_ort.harp import CancelBoard, Cancelled

    board = CancelBoard()
    assert board.cancel() == 0
    with board.job() as check:
        check()
        assert board.cancel() == 1
        with pytest.raises(Cancelled):
            check()
    with board.job() as check:  # a job started after the cancel runs
        check()
