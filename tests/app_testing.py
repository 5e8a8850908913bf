"""Starting ``vampnet-ort app`` for the app tests: a subprocess on a free port, as a user starts it.

The demo bundle is built once per test session into a cache under pytest's base temporary directory. Gradio's
analytics are off and nothing here reaches the network.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

from cli_testing import cli_command

START_TIMEOUT_S = 240.0  # importing Gradio and building the demo bundle on a busy 2-core machine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_env(cache: Path) -> dict:
    env = dict(os.environ)
    env.update(VAMPNET_ORT_CACHE=str(cache), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               GRADIO_TEMP_DIR=str(cache / "gradio-tmp"), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    return env


def start_app(cache: Path, log_path: Path, models: Optional[Path] = None) -> Iterator[str]:
    """Yield the URL of a running app; stop it afterwards (a generator for a pytest fixture)."""
    port = free_port()
    args = [*cli_command(), "app", "--port", str(port)] + (["--models", str(models)] if models else [])
    log = open(log_path, "w")
    proc = subprocess.Popen(args, env=app_env(cache), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start in {START_TIMEOUT_S:.0f} s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
