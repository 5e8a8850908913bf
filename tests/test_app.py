"""``vampnet-ort app`` end to end through ``gradio_client``: the app runs in a subprocess on a free port with the
demo bundle; ``/vamp`` is called with a file as a user of the API would. The same seed must give the same audio,
a different seed different audio; bad input is an error and the server keeps serving; a second job waits in the
queue while the first reports its stages."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

gradio_client = pytest.importorskip("gradio_client", reason="the app tests need the test extra (gradio_client)")

import app_testing  # noqa: E402
from cli_testing import cli_command  # noqa: E402
from vampnet_ort.app import CONTROL_NAMES, START_PRESET, preset_controls  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess-heavy: left out of the inner loop (-m "not slow")

SECONDS = 2.0
RATE = 22050


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.getbasetemp() / "app-cache"  # shared with the browser tests: one demo bundle build
    cache.mkdir(exist_ok=True)
    log = tmp_path_factory.mktemp("app-log") / "server.log"
    for running in app_testing.start_app(cache, log):
        yield running
        assert not app_testing.tracebacks(log), "user errors printed tracebacks:\n" + "\n".join(
            app_testing.tracebacks(log))


@pytest.fixture(scope="module")
def client(url: str):
    return gradio_client.Client(url, verbose=False, download_files=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = np.arange(int(SECONDS * RATE)) / RATE
    x = np.stack([0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2,
                  0.2 * np.sin(2 * np.pi * 330 * t)]).T
    path = tmp_path_factory.mktemp("app-clip") / "clip.wav"
    sf.write(str(path), x, RATE)
    return path


def _vamp(client, clip: Path, **controls) -> list:
    result = client.predict(gradio_client.handle_file(str(clip)), api_name="/vamp", **controls)
    assert isinstance(result, (list, tuple)) and len(result) == 2, result
    return [sf.read(path, dtype="float32") for path in result]


def test_api_parameters_have_the_ui_defaults(client) -> None:
    """/vamp's parameters: the input, every control with the value the UI starts with (the start preset), the
    model choice (the first model)."""
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/vamp"]
    params = info["parameters"]
    assert [p["parameter_name"] for p in params] == ["input_audio", *CONTROL_NAMES, "model_choice"]
    assert not params[0]["parameter_has_default"]
    defaults = preset_controls(START_PRESET)
    for p in params[1:-1]:
        assert p["parameter_has_default"], p["parameter_name"]
        assert p["parameter_default"] == getattr(defaults, p["parameter_name"]), p["parameter_name"]
    assert params[-1]["parameter_default"] == "demo"
    assert len(info["returns"]) == 2


def test_vamp_duration_and_seed(client, clip: Path) -> None:
    first = _vamp(client, clip, seed=7)
    again = _vamp(client, clip, seed=7)
    other = _vamp(client, clip, seed=8)
    for audio, rate in first:
        assert rate == 44100  # the codec's rate
        assert audio.ndim == 1 and abs(audio.size / rate - SECONDS) < 1.0 / rate + 1e-9
        assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    for (a, _), (b, _) in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # the two variations differ (seeds 7 and 8), and variation 0 of seed 8 is variation 1 of seed 7
    assert not np.array_equal(first[0][0], first[1][0])
    np.testing.assert_array_equal(other[0][0], first[1][0])


def test_vamp_with_every_input_control(client, clip: Path) -> None:
    outputs = _vamp(client, clip, seed=3, pitch_shift=2, time_stretch=2, feedback_steps=2, onset_mask_width=2,
                    beat_mask_ms=40, downbeats_only=True, prefix_s=0.2, suffix_s=0.2, random_mask_intensity=0.9,
                    typical_filtering=True, top_p=0.9, use_c2f=False, sampling_steps=4)
    for audio, rate in outputs:
        assert abs(audio.size / rate - 2 * SECONDS) < 1.0 / rate + 1e-9  # time stretch 2
        assert np.isfinite(audio).all()


@pytest.mark.parametrize("controls, fragment", [
    (dict(conditioning_codebooks=5, compression_prompt=2, sampling_steps=2), None),  # allowed: a valid corner
    (dict(periodic_prompt=3.5), "whole number"),
    (dict(compression_prompt=99), "beyond the model's 14 codebooks"),
    (dict(dropout=1.5), "dropout"),
    (dict(model_choice="nope"), "unknown model 'nope'"),
])
def test_impossible_settings_are_errors(client, clip: Path, controls: dict, fragment) -> None:
    if fragment is None:
        assert len(_vamp(client, clip, **controls)) == 2
        return
    with pytest.raises(Exception) as info:
        _vamp(client, clip, **controls)
    assert fragment in str(info.value), str(info.value)


def test_unreadable_file_is_an_error_and_the_server_keeps_serving(client, clip: Path, tmp_path: Path) -> None:
    bad = tmp_path / "not-audio.wav"
    bad.write_text("this is not a wav file")
    with pytest.raises(Exception) as info:
        _vamp(client, bad)
    message = str(info.value)
    assert "not-audio.wav" in message and "audio" in message, message
    assert str(tmp_path) not in message  # named as the user knows it, not by the server's upload path
    assert len(_vamp(client, clip, seed=1, sampling_steps=2)) == 2


def test_second_job_waits_in_the_queue_and_progress_names_the_stages(client, clip: Path) -> None:
    from gradio_client.utils import Status

    file = gradio_client.handle_file(str(clip))
    # submitted together: whichever reaches the server first runs, the other must wait (concurrency 1)
    jobs = [client.submit(file, seed=11 + i, feedback_steps=2, api_name="/vamp") for i in range(2)]
    running = (Status.PROCESSING, Status.PROGRESS)
    stages, queued = set(), []
    deadline = time.monotonic() + 300
    while not all(job.done() for job in jobs) and time.monotonic() < deadline:
        status = [job.status() for job in jobs]
        for s in status:
            stages.update(unit.desc for unit in s.progress_data or [])
        for me, other in ((status[0], status[1]), (status[1], status[0])):
            if me.code in running and other.code == Status.IN_QUEUE:
                queued.append(other.rank)  # the position the UI shows ("queue: 1/1")
        time.sleep(0.02)
    assert all(len(job.result()) == 2 for job in jobs)
    assert queued and queued[-1] == 0, "the second job did not wait in the queue while the first ran"
    assert stages >= {"coarse decode", "coarse-to-fine"} and stages <= {"encoding", "coarse decode", "coarse-to-fine",
                                                                       "decoding audio"}, stages


# ------------------------------------------------------------------- upstream's Space API, as its clients call it
UPSTREAM = dict(sampletemp=1.0, top_p=0.0, periodic_p=7, dropout=0.0, stretch_factor=1, onset_mask_width=0,
                typical_filtering=True, typical_mass=0.15, typical_min_tokens=64, seed=0, model_choice="default",
                n_mask_codebooks=3, pitch_shift_amt=0, sample_cutoff=1.0, sampling_steps=36, beat_mask_ms=0,
                num_feedback_steps=1)  # upstream app.py api_vamp's parameters after input_audio, with its defaults


def _upstream(client, clip: Path, **kwargs) -> list:
    result = client.predict(input_audio=gradio_client.handle_file(str(clip)), api_name="/vamp_1", **kwargs)
    assert isinstance(result, (list, tuple)) and len(result) == 2, result
    return [sf.read(path, dtype="float32") for path in result]


def test_vamp_1_is_upstreams_signature(client) -> None:
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/vamp_1"]
    params = info["parameters"]
    assert [p["parameter_name"] for p in params] == ["input_audio", *UPSTREAM]
    assert not params[0]["parameter_has_default"]
    assert {p["parameter_name"]: p["parameter_default"] for p in params[1:]} == UPSTREAM
    assert len(info["returns"]) == 2


def test_vamp_1_with_none_and_every_keyword(client, clip: Path) -> None:
    for audio, rate in _upstream(client, clip):  # nothing but the input: upstream's defaults, a random seed
        assert rate == 44100 and abs(audio.size / rate - SECONDS) < 1.0 / rate + 1e-9 and np.isfinite(audio).all()
    # every keyword, as upstream's looper client (unloop/client.py) submits them
    given = dict(sampletemp=0.9, top_p=0.9, periodic_p=5, dropout=0.1, stretch_factor=1, onset_mask_width=2,
                 typical_filtering=True, typical_mass=0.2, typical_min_tokens=16, seed=21, model_choice="demo",
                 n_mask_codebooks=4, pitch_shift_amt=2, sample_cutoff=0.9, sampling_steps=6, beat_mask_ms=40,
                 num_feedback_steps=2)
    assert set(given) == set(UPSTREAM)
    first = _upstream(client, clip, **given)
    again = _upstream(client, clip, **given)
    other = _upstream(client, clip, **{**given, "seed": 22})
    for (a, rate), (b, _), (c, _) in zip(first, again, other):
        assert rate == 44100 and abs(a.size / rate - SECONDS) < 1.0 / rate + 1e-9
        np.testing.assert_array_equal(a, b)  # seed s reproduces
    np.testing.assert_array_equal(other[0][0], first[1][0])  # variation 1 of seed s = variation 0 of seed s + 1
    assert not np.array_equal(first[0][0], first[1][0])
    stretched = _upstream(client, clip, seed=3, stretch_factor=2, sampling_steps=2)
    assert all(abs(a.size / r - 2 * SECONDS) < 1.0 / r + 1e-9 for a, r in stretched)


def test_vamp_1_errors_name_the_problem(client, clip: Path) -> None:
    for kwargs, fragment in ((dict(n_mask_codebooks=99), "beyond the model's 14 codebooks"),
                             (dict(model_choice="saxophone"), "unknown model 'saxophone'"),
                             (dict(periodic_p=2.5), "whole number")):
        with pytest.raises(Exception) as info:
            _upstream(client, clip, **kwargs)
        assert fragment in str(info.value), str(info.value)


def test_app_command_errors() -> None:
    import subprocess

    for args, fragment in ((["--port", "70000"], "--port"), (["--models", "/no/such/dir"], "no such directory")):
        proc = subprocess.run([*cli_command(), "app", *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vampnet-ort: error:") and fragment in lines[0], proc.stderr
