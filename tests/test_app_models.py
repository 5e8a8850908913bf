"""Model choice: ``vampnet-ort app --models FOLDER`` with two bundles (``app_testing.two_models``: "base" and a
stand-in fine-tune named "fine-tune" by its vampnet.json). The API's ``model_choice`` (upstream's ``/vamp_1`` and
``/vamp``) and HARP's dropdown each select the right bundle: the same seed gives the same audio from the same model
and different audio from the other. (The UI's dropdown: tests/test_app_browser.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

gradio_client = pytest.importorskip("gradio_client", reason="the app tests need the test extra (gradio_client)")

import app_testing  # noqa: E402

pytestmark = pytest.mark.slow  # a server subprocess

SECONDS = 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.getbasetemp() / "app-cache"
    cache.mkdir(exist_ok=True)
    log = tmp_path_factory.mktemp("models-log") / "server.log"
    for url in app_testing.start_app(cache, log, models=app_testing.two_models(cache)):
        yield url
        assert not app_testing.tracebacks(log), "\n".join(app_testing.tracebacks(log))


@pytest.fixture(scope="module")
def client(server: str):
    return gradio_client.Client(server, verbose=False, download_files=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rate = 32000
    t = np.arange(int(SECONDS * rate)) / rate
    path = tmp_path_factory.mktemp("models-clip") / "clip.wav"
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 196 * t) * np.exp(-3 * (t % 0.5)), rate)
    return path


def _read(paths) -> list:
    return [sf.read(str(path), dtype="float32")[0] for path in paths]


def _vamp_1(client, clip: Path, model: str, **kwargs) -> list:
    file = gradio_client.handle_file(str(clip))
    return _read(client.predict(input_audio=file, model_choice=model, api_name="/vamp_1", **kwargs))


def test_the_api_selects_the_model(client, clip: Path) -> None:
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/vamp"]["parameters"]
    assert info[-1]["parameter_name"] == "model_choice" and info[-1]["parameter_default"] == "base"
    kwargs = dict(seed=5, sampling_steps=4)
    base = _vamp_1(client, clip, "base", **kwargs)
    tuned = _vamp_1(client, clip, "fine-tune", **kwargs)
    default = _vamp_1(client, clip, "default", **kwargs)
    for a, b, c in zip(base, tuned, default):
        assert a.shape == b.shape == c.shape and abs(a.size / 44100 - SECONDS) < 1e-3
        np.testing.assert_array_equal(a, c)  # "default" is the first model
        assert not np.array_equal(a, b)  # another model, another output
    # /vamp (every control) with the same settings gives the same audio per model
    file = gradio_client.handle_file(str(clip))
    again = _read(client.predict(file, seed=5, sampling_steps=4, compression_prompt=3, typical_filtering=True,
                                 model_choice="fine-tune", api_name="/vamp"))
    for a, b in zip(tuned, again):
        np.testing.assert_array_equal(a, b)


def test_harp_selects_the_model(server: str, client, clip: Path, tmp_path: Path) -> None:
    harp = app_testing.HarpClient(server)
    event, data = harp.call("controls", [])
    assert event == "complete", data
    inputs = data[0]["inputs"]
    dropdown = next(c for c in inputs if c["type"] == "dropdown")
    assert dropdown["choices"] == ["base", "fine-tune"] and dropdown["value"] == "base"
    upload = harp.upload(clip)
    outputs = {}
    for model in ("base", "fine-tune"):
        values = [model if c["type"] == "dropdown" else c["value"] for c in inputs[1:]]
        event, data = harp.call("process", [harp.file(upload), *values])
        assert event == "complete", data
        outputs[model] = sf.read(str(harp.download(data[0], tmp_path / f"{model}.wav")), dtype="float32")[0]
        assert model in data[1]["labels"][0]["label"]
    assert not np.array_equal(outputs["base"], outputs["fine-tune"])
    # HARP's process = upstream's harp_vamp settings (seed 1 here): variation 0 of /vamp_1 with the same values
    by_label = {c["label"]: c["value"] for c in inputs[1:]}
    same = _vamp_1(client, clip, "fine-tune", seed=1, sampletemp=by_label["sample temperature"],
                   periodic_p=by_label["periodic prompt"], dropout=by_label["mask dropout"],
                   n_mask_codebooks=by_label["compression prompt"], beat_mask_ms=by_label["beat mask width (ms)"],
                   typical_filtering=False, typical_min_tokens=1, sampling_steps=36)
    np.testing.assert_array_equal(outputs["fine-tune"], same[0])
