"""``vampnet-ort app`` in a real browser: headless Debian Chromium driven by selenium through Debian's
chromium-driver (nothing downloads a browser: the driver's path is given, selenium-manager never runs).

As a person uses it: upload a file, pick a preset (the sliders follow), click generate, wait for both outputs; the
mask image and the outputs exist; "use as input" and the example button fill the input; a bad file shows an error
and the app keeps working. A screenshot of the finished page is saved (``$VAMPNET_ORT_SCREENSHOT`` or the test's
temporary directory). Without chromium the tests are skipped, except under CI=true, where that is a failure."""

from __future__ import annotations

import os
import shutil
import time
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
def url(tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.getbasetemp() / "app-cache"  # shared with test_app.py: one demo bundle build
    cache.mkdir(exist_ok=True)
    yield from app_testing.start_app(cache, tmp_path_factory.mktemp("browser-log") / "server.log")


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
        shot = Path(os.environ.get("VAMPNET_ORT_SCREENSHOT", "/tmp/vampnet-ort-app-failure.png"))
        driver.save_screenshot(str(shot.with_name("failure-" + shot.name)))
        raise AssertionError(f"timed out waiting for {what}") from None


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


def test_upload_preset_generate(browser, clip: Path, tmp_path: Path) -> None:
    d = browser
    _upload(d, clip)
    _wait(d, lambda d: _css(d, "#input-audio audio"), "the uploaded input")
    preview = _wait(d, lambda d: (_css(d, "#mask-image img") or [None])[0], "the mask preview")
    assert "mask-preview.png" in preview.get_attribute("src")

    _pick_preset(d, "large variation (follow beat)")
    _wait(d, lambda d: _slider_value(d, "beat-mask-ms") == 80, "the preset to set the beat mask width")
    assert (_slider_value(d, "periodic-prompt"), _slider_value(d, "compression-prompt"), _slider_value(d, "dropout")) \
        == (0, 4, 0)
    _pick_preset(d, "timbre transfer")
    _wait(d, lambda d: _slider_value(d, "periodic-prompt") == 2, "the preset to set the periodic prompt")
    assert (_slider_value(d, "compression-prompt"), _slider_value(d, "beat-mask-ms")) == (1, 0)

    _css(d, "#vamp-button")[0].click()
    for i in range(2):
        _wait(d, lambda d: _file_link(d, f"output-{i}", f"output_{i}.wav") and _css(d, f"#output-{i} audio"),
              f"output {i + 1}")
    image = _css(d, "#mask-image img")[0].get_attribute("src")
    assert image.endswith("/mask.png"), image  # the mask the models saw, no longer the preview
    status = _css(d, "#status")[0].text
    assert "seed used" in status and "not music" in status, status
    assert "not music" in _css(d, "#output-0")[0].text
    shot = Path(os.environ.get("VAMPNET_ORT_SCREENSHOT", str(tmp_path / "app.png")))
    d.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000

    # "use as input" on output 2 puts that file into the input
    _css(d, "#use-as-input-1")[0].click()
    _wait(d, lambda d: _file_link(d, "input-audio", "output_1.wav"), "output 2 as the input")


def test_example_button_and_bad_file(browser, tmp_path: Path) -> None:
    d = browser
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    _upload(d, bad)
    time.sleep(1.0)
    _css(d, "#vamp-button")[0].click()
    toast = _wait(d, lambda d: next((t for t in _css(d, "[data-testid=toast-body]") if "broken.wav" in t.text), None),
                  "the error message")
    assert "cannot read audio" in toast.text or "unsupported" in toast.text, toast.text

    for close in _css(d, "[data-testid=toast-close]"):  # dismiss the message, as a person would
        close.click()
    _wait(d, lambda d: not _css(d, "[data-testid=toast-body]"), "the message to close", 30)

    # the app still works: load the example and vamp it
    _css(d, "#example-button")[0].click()
    _wait(d, lambda d: _file_link(d, "input-audio", "example.wav"), "the example clip in the input")
    _css(d, "#vamp-button")[0].click()
    _wait(d, lambda d: _file_link(d, "output-0", "output_0.wav"), "the output of the example")
