"""``vampnet-ort app`` used from a DAW: a client that speaks to the app exactly as HARP v3.0.1 does (plain HTTP,
``app_testing.HarpClient``; no gradio_client): upload, ``controls``, ``process`` with every control, download,
``cancel``. The app runs in a subprocess on a free port with the demo bundle (random weights: not music)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("gradio", reason="the app tests need the app extra (gradio)")

import app_testing  # noqa: E402

pytestmark = pytest.mark.slow  # a server subprocess

SECONDS = 2.0
LONG_SECONDS = 90.0  # long enough that cancel lands while process runs (about 30 s on a busy 2-core machine)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.getbasetemp() / "app-cache"  # shared with the other app tests: one demo bundle build
    cache.mkdir(exist_ok=True)
    log = tmp_path_factory.mktemp("harp-log") / "server.log"
    for url in app_testing.start_app(cache, log):
        yield url, log
        assert not app_testing.tracebacks(log), "user errors printed tracebacks:\n" + "\n".join(
            app_testing.tracebacks(log))


@pytest.fixture(scope="module")
def harp(server) -> app_testing.HarpClient:
    return app_testing.HarpClient(server[0])


@pytest.fixture(scope="module")
def controls(harp: app_testing.HarpClient) -> dict:
    event, data = harp.call("controls", [])
    assert event == "complete" and isinstance(data, list) and len(data) == 1, (event, data)
    return data[0]


def _clip(path: Path, seconds: float, rate: int = 22050) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2,
                  0.2 * np.sin(2 * np.pi * 330 * t)]).T
    sf.write(str(path), x, rate)
    return path


def test_controls_are_upstreams_harp_card(controls: dict) -> None:
    assert controls["card"]["name"] == "vampnet"
    assert isinstance(controls["card"]["tags"], list) and controls["card"]["author"]
    inputs = controls["inputs"]
    assert inputs[0] == {"label": "input audio", "info": inputs[0]["info"], "required": True, "type": "audio_track"}
    assert [(c["type"], c["label"]) for c in inputs[1:]] == [
        ("slider", "sample temperature"), ("slider", "periodic prompt"), ("slider", "mask dropout"),
        ("slider", "compression prompt"), ("dropdown", "model choice"), ("slider", "beat mask width (ms)")]
    for control in inputs[1:]:
        assert isinstance(control["info"], str) and control["info"]
        if control["type"] == "slider":
            assert control["minimum"] <= control["value"] <= control["maximum"] and control["step"] > 0
        else:
            assert control["choices"] == ["demo"] and control["value"] == "demo"
    assert [c["type"] for c in controls["outputs"]] == ["audio_track", "json"]


def _values(controls: dict, **given) -> list:
    """Every control's value in `controls`' order: its default unless `given` by label."""
    return [given.get(c["label"], c["value"]) for c in controls["inputs"][1:]]


def _process(harp: app_testing.HarpClient, upload: str, values: list, target: Path) -> tuple:
    event, data = harp.call("process", [harp.file(upload), *values])
    assert event == "complete", data
    assert isinstance(data, list) and len(data) == 2, data
    audio, labels = data
    harp.download(audio, target)
    return sf.read(str(target), dtype="float32"), labels


def test_process_with_every_control_downloads_the_output(harp, controls: dict, tmp_path: Path) -> None:
    upload = harp.upload(_clip(tmp_path / "my loop.wav", SECONDS))
    values = _values(controls, **{"sample temperature": 0.8, "periodic prompt": 5, "mask dropout": 0.1,
                                  "compression prompt": 2, "beat mask width (ms)": 40, "model choice": "demo"})
    (audio, rate), labels = _process(harp, upload, values, tmp_path / "out-a.wav")
    assert rate == 44100 and audio.ndim == 1 and abs(audio.size / rate - SECONDS) < 1.0 / rate + 1e-9
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    assert labels["meta"] == {"_type": "pyharp.LabelList"}
    (label,) = labels["labels"]
    assert label["label_type"] == "OutputLabel" and label["t"] == 0.0 and abs(label["duration"] - SECONDS) < 1e-3
    assert "demo" in label["label"] and "not music" in label["description"]

    # the same controls give the same audio (HARP's process uses a fixed seed); other controls other audio
    (again, _), _ = _process(harp, upload, values, tmp_path / "out-b.wav")
    np.testing.assert_array_equal(audio, again)
    (other, _), _ = _process(harp, upload, _values(controls, **{"periodic prompt": 3}), tmp_path / "out-c.wav")
    assert other.shape == audio.shape and not np.array_equal(other, audio)


def test_process_errors_are_one_message(harp, controls: dict, tmp_path: Path) -> None:
    event, data = harp.call("process", [None, *_values(controls)])
    assert event == "error" and "no input audio" in data["error"], data
    bad = tmp_path / "not audio.wav"
    bad.write_text("this is not a wav file")
    event, data = harp.call("process", [harp.file(harp.upload(bad)), *_values(controls)])
    assert event == "error" and data["error"].startswith("not audio.wav: "), data
    upload = harp.upload(_clip(tmp_path / "clip.wav", 1.0))
    for label, value, fragment in (("compression prompt", 99, "beyond the model's 14 codebooks"),
                                   ("model choice", "nope", "unknown model 'nope'"),
                                   ("periodic prompt", 2.5, "whole number")):
        event, data = harp.call("process", [harp.file(upload), *_values(controls, **{label: value})])
        assert event == "error" and fragment in data["error"], (label, data)


def test_cancel_ends_a_running_process(harp, controls: dict, tmp_path: Path) -> None:
    upload = harp.upload(_clip(tmp_path / "long.wav", LONG_SECONDS))
    event_id = harp.submit("process", [harp.file(upload), *_values(controls)])
    deadline = time.monotonic() + 120
    while harp.queue_size() > 0:  # wait until it left the queue: it runs
        assert time.monotonic() < deadline, "the process never started"
        time.sleep(0.2)
    time.sleep(1.0)
    started = time.monotonic()
    event, data = harp.call("cancel", [])
    assert event == "complete", data
    event, data = harp.result("process", event_id)
    ended = time.monotonic() - started
    assert event == "error" and "cancelled" in data["error"], (event, data)
    assert ended < 60, f"the process ran on for {ended:.0f} s after cancel"
    # the app serves the next process at once
    (audio, rate), _ = _process(harp, harp.upload(_clip(tmp_path / "short.wav", 1.0)), _values(controls),
                                tmp_path / "after.wav")
    assert abs(audio.size / rate - 1.0) < 1e-3
