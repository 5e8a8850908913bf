"""``vampnet-ort app`` in a real browser: headless Debian Chromium driven by selenium through Debian's
chromium-driver (nothing downloads a browser: the driver's path is given, selenium-manager never runs).

As a person uses it, with two models (``app_testing.two_models``): upload a file (the mask preview follows its
length), pick a preset (the sliders follow; the preset shown follows the sliders, "medium variation" at start), pick
a model, click generate, wait for both outputs; "use as input" and the example button fill the input; no input or
a bad file shows one message (a bad file as soon as it is uploaded) and no output turns into an error box. Screenshots
go to ``test-artifacts/app/`` (``$VAMPNET_ORT_ARTIFACTS`` overrides). Without chromium the tests are skipped, except
under CI=true, where that is a failure."""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1400,1700"]
WAIT_S = 240
ARTIFACTS = Path(os.environ.get("VAMPNET_ORT_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts" / "app"))


def _browser_missing() -> str:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    try:
        import gradio_client  # noqa: F401
        import selenium  # noqa: F401
    except ImportError as exc:
        missing.append(str(exc))
    return ", ".join(missing)


if _browser_missing():
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs the browser tests, missing: {_browser_missing()} "
                    "(apt-get install chromium chromium-driver; pip install '.[test]')", pytrace=False)
    pytest.skip(f"browser tests need chromium, chromium-driver and selenium: missing {_browser_missing()}",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

import app_testing  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess-heavy: left out of the inner loop (-m "not slow")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.getbasetemp() / "app-cache"  # shared with the other app tests
    cache.mkdir(exist_ok=True)
    log = tmp_path_factory.mktemp("browser-log") / "server.log"
    for running in app_testing.start_app(cache, log, models=app_testing.two_models(cache)):
        yield running, log


@pytest.fixture(scope="module")
def url(server) -> str:
    return server[0]


@pytest.fixture()
def browser(url: str):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        driver.get(url)
        WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#vamp-button"))
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rate = 32000
    t = np.arange(int(2.5 * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 196 * t) * np.exp(-3 * (t % 0.5))
    path = tmp_path_factory.mktemp("browser-clip") / "my clip.wav"
    sf.write(str(path), x, rate)
    return path


def _wait(driver, predicate, what: str, timeout: float = WAIT_S):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: predicate(d))
    except Exception:
        _screenshot(driver, "failure-" + "".join(c if c.isalnum() else "-" for c in what)[:60])
        raise AssertionError(f"timed out waiting for {what}") from None


def _screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(shot))
    return shot


def _css(driver, selector: str) -> list:
    return driver.find_elements(By.CSS_SELECTOR, selector)


def _file_link(driver, component: str, name: str):
    """The component's link to a served file called `name` (the download button), once it is there."""
    for link in _css(driver, f"#{component} a[href]"):
        if name in (link.get_attribute("href") or ""):
            return link
    return None


def _slider_value(driver, elem_id: str) -> float:
    return float(_css(driver, f"#{elem_id} input[type=number]")[0].get_attribute("value"))


def _upload(driver, path: Path) -> None:
    _css(driver, "#input-audio input[type=file]")[0].send_keys(str(path))


def _pick_preset(driver, name: str) -> None:
    _css(driver, "#preset input")[0].click()
    option = _wait(driver, lambda d: next((o for o in _css(d, "[role=option]") if o.text.strip() == name), None),
                   f"the preset option {name!r}", 30)
    option.click()


def _preset_shown(driver) -> str:
    return _css(driver, "#preset input")[0].get_attribute("value")


def _set_number(driver, elem_id: str, value: float) -> None:
    """Type a value into a slider's number box, as a person does, and leave the box."""
    from selenium.webdriver.common.keys import Keys

    box = _css(driver, f"#{elem_id} input[type=number]")[0]
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.TAB)


def _preview_src(driver) -> str:
    images = _css(driver, "#mask-image img")
    return images[0].get_attribute("src") if images else ""


def _error_boxes(driver) -> list:
    """The ids of components showing Gradio's error state: the red "Error" badge its status tracker puts in place
    of the component's content (``span.error`` in ``[data-testid=status-tracker]``) after an event that had the
    component as an output failed."""
    return [block.get_attribute("id") for block in _css(driver, ".block")
            if block.find_elements(By.CSS_SELECTOR, "[data-testid=status-tracker] span.error")]


def _toasts(driver) -> list:
    return [t.text for t in _css(driver, "[data-testid=toast-body]")]


def _close_toasts(driver) -> None:
    for close in _css(driver, "[data-testid=toast-close]"):
        close.click()
    _wait(driver, lambda d: not _css(d, "[data-testid=toast-body]"), "the messages to close", 30)


def test_start_state_preview_length_and_presets(browser, clip: Path) -> None:
    d = browser
    _wait(d, lambda d: "mask-preview-10.0s.png" in _preview_src(d), "the preview over 10 s (no input yet)")
    assert _preset_shown(d) == "medium variation"
    assert (_slider_value(d, "periodic-prompt"), _slider_value(d, "compression-prompt"),
            _slider_value(d, "beat-mask-ms"), _slider_value(d, "dropout")) == (7, 4, 0, 0)

    _upload(d, clip)  # 2.5 s: the preview follows the input's length
    _wait(d, lambda d: "mask-preview-2.5s.png" in _preview_src(d), "the preview over the 2.5 s input")

    _set_number(d, "dropout", 0.35)  # no preset has these values: the preset box empties
    _wait(d, lambda d: _preset_shown(d) == "", "the preset box to empty")
    _pick_preset(d, "large variation (follow beat)")
    _wait(d, lambda d: _slider_value(d, "beat-mask-ms") == 80, "the preset to set the beat mask width")
    assert (_slider_value(d, "periodic-prompt"), _slider_value(d, "compression-prompt"), _slider_value(d, "dropout")) \
        == (0, 4, 0)
    _set_number(d, "periodic-prompt", 13)  # 13, 4, 0, 0.0, 0 after the next change is "large variation"'s
    _set_number(d, "beat-mask-ms", 0)
    _set_number(d, "dropout", 0.2)
    _wait(d, lambda d: _preset_shown(d) == "large variation", "the preset the sliders match")
    _screenshot(d, "presets")


def test_upload_preset_generate(browser, clip: Path, tmp_path: Path) -> None:
    d = browser
    _upload(d, clip)
    _wait(d, lambda d: _css(d, "#input-audio audio"), "the uploaded input")
    _wait(d, lambda d: "mask-preview-2.5s.png" in _preview_src(d), "the mask preview")

    _pick_preset(d, "timbre transfer")
    _wait(d, lambda d: _slider_value(d, "periodic-prompt") == 2, "the preset to set the periodic prompt")
    assert (_slider_value(d, "compression-prompt"), _slider_value(d, "beat-mask-ms")) == (1, 0)
    assert _preset_shown(d) == "timbre transfer"

    _css(d, "#vamp-button")[0].click()
    for i in range(2):
        _wait(d, lambda d: _file_link(d, f"output-{i}", f"output_{i}.wav") and _css(d, f"#output-{i} audio"),
              f"output {i + 1}")
    image = _css(d, "#mask-image img")[0].get_attribute("src")
    assert image.endswith("/mask.png"), image  # the mask the models saw, no longer the preview
    status = _css(d, "#status")[0].text
    assert "seed used" in status and "not music" in status, status
    assert "not music" in _css(d, "#output-0")[0].text
    assert _screenshot(d, "app").stat().st_size > 10_000

    # "use as input" on output 2 puts that file into the input
    _css(d, "#use-as-input-1")[0].click()
    _wait(d, lambda d: _file_link(d, "input-audio", "output_1.wav"), "output 2 as the input")


def test_errors_are_one_message_and_leave_no_error_boxes(browser, server, tmp_path: Path) -> None:
    d = browser
    _wait(d, lambda d: "mask-preview-10.0s.png" in _preview_src(d), "the first preview")
    _css(d, "#vamp-button")[0].click()  # no input yet
    _wait(d, lambda d: any("no input audio" in t for t in _toasts(d)), "the no-input message")
    time.sleep(1.0)
    assert len(_toasts(d)) == 1 and not _error_boxes(d), (_toasts(d), _error_boxes(d))
    assert "mask-preview-10.0s.png" in _preview_src(d)  # the preview is still shown
    _close_toasts(d)

    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    _upload(d, bad)  # reported at upload, before any click
    toast = _wait(d, lambda d: next((t for t in _toasts(d) if "broken.wav" in t), None), "the bad-file message")
    assert "unsupported or unrecognised audio format" in toast, toast
    time.sleep(1.0)
    assert len(_toasts(d)) == 1 and not _error_boxes(d), (_toasts(d), _error_boxes(d))
    _screenshot(d, "bad-file")
    _close_toasts(d)

    # the app still works: load the example and vamp it; nothing shows an error afterwards
    _css(d, "#example-button")[0].click()
    _wait(d, lambda d: _file_link(d, "input-audio", "example.wav"), "the example clip in the input")
    _wait(d, lambda d: "mask-preview-5.0s.png" in _preview_src(d), "the preview over the 5 s example")
    _css(d, "#vamp-button")[0].click()
    _wait(d, lambda d: _file_link(d, "output-0", "output_0.wav"), "the output of the example")
    assert not _toasts(d) and not _error_boxes(d)
    assert not app_testing.tracebacks(server[1]), app_testing.tracebacks(server[1])


def test_model_dropdown_selects_the_model(browser, url: str, clip: Path, tmp_path: Path) -> None:
    import gradio_client

    d = browser
    assert _css(d, "#model-choice input")[0].get_attribute("value") == "base"
    _css(d, "#model-choice input")[0].click()
    _wait(d, lambda d: next((o for o in _css(d, "[role=option]") if o.text.strip() == "fine-tune"), None),
          "the model option").click()
    _wait(d, lambda d: _css(d, "#model-choice input")[0].get_attribute("value") == "fine-tune", "the model chosen")
    seed = d.find_element(By.XPATH, "//label[.//*[starts-with(normalize-space(text()), 'seed')]]"
                                    "//*[self::input or self::textarea]")  # the seed box, found by its label
    seed.clear()
    seed.send_keys("5")
    _upload(d, clip)
    _wait(d, lambda d: _css(d, "#input-audio audio"), "the uploaded input")
    _css(d, "#vamp-button")[0].click()
    link = _wait(d, lambda d: _file_link(d, "output-0", "output_0.wav"), "the output")
    shown = tmp_path / "shown.wav"
    with urllib.request.urlopen(link.get_attribute("href"), timeout=60) as response:
        shown.write_bytes(response.read())
    _screenshot(d, "model-choice")

    client = gradio_client.Client(url, verbose=False, download_files=True)
    # /vamp's defaults are the values the UI starts with: only the seed and the model are passed
    expected = {model: sf.read(client.predict(gradio_client.handle_file(str(clip)), seed=5, model_choice=model,
                                              api_name="/vamp")[0], dtype="float32")[0]
                for model in ("base", "fine-tune")}
    audio = sf.read(str(shown), dtype="float32")[0]
    np.testing.assert_array_equal(audio, expected["fine-tune"])
    assert not np.array_equal(audio, expected["base"])

