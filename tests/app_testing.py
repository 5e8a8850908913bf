"""Starting ``vampnet-ort app`` for the app tests: a subprocess on a free port, as a user starts it.

The demo bundle is built once per test session into a cache under pytest's base temporary directory. Gradio's
analytics are off and nothing here reaches the network.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator, Optional, Tuple

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


def two_models(root: Path) -> Path:
    """A folder of two demo-sized bundles (random weights, not music), built once under `root`: ``base`` (the demo
    bundle's recipe) and, in folder ``variant``, a stand-in fine-tune whose coarse model has other random weights and
    whose vampnet.json records ``"model_name": "fine-tune"`` (as a bundle exported from the Hub does)."""
    folder = root / "two-models"
    if (folder / "complete").exists():
        return folder
    from vampnet_ort.demo import DEMO_C2F, DEMO_CODEC, DEMO_COARSE, DEMO_SEEDS
    from vampnet_ort.export.bundle import export_bundle
    from vampnet_ort.export.random_checkpoint import random_vampnet_checkpoint, vampnet_kwargs
    from vampnet_ort.export.random_codec import random_codec

    shutil.rmtree(folder, ignore_errors=True)
    codec = random_codec(DEMO_CODEC, seed=DEMO_SEEDS["codec"])
    c2f = random_vampnet_checkpoint(vampnet_kwargs(**DEMO_C2F), seed=DEMO_SEEDS["c2f"], name="demo c2f")
    for name, coarse_seed in (("base", DEMO_SEEDS["coarse"]), ("variant", 7)):
        coarse = random_vampnet_checkpoint(vampnet_kwargs(**DEMO_COARSE), seed=coarse_seed, name=f"{name} coarse")
        export_bundle(folder / name, codec=codec, coarse=coarse, c2f=c2f, demo=True)
    manifest_path = folder / "variant" / "vampnet.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model_name"] = "fine-tune"
    manifest_path.write_text(json.dumps(manifest, indent=1))
    (folder / "complete").write_text("")
    return folder


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


class HarpClient:
    """The HTTP calls HARP (TEAMuP-dev/HARP v3.0.1, src/client/GradioClient.cpp) makes to a Gradio server, with
    urllib only: upload a file, call an endpoint and read its event stream, download an output by its url."""

    def __init__(self, url: str, timeout: float = 600.0) -> None:
        self.base = url.rstrip("/")
        self.timeout = timeout

    def _post(self, path: str, body: bytes, content_type: str) -> object:
        request = urllib.request.Request(self.base + path, data=body, method="POST",
                                         headers={"Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            assert response.status == 200, response.status
            return json.loads(response.read())

    def upload(self, path: Path) -> str:
        """POST /gradio_api/upload, multipart field "files" (HARP sends every file as audio/midi); the server path."""
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
                f"Content-Type: audio/midi\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        paths = self._post("/gradio_api/upload", body, f"multipart/form-data; boundary={boundary}")
        assert isinstance(paths, list) and len(paths) == 1 and isinstance(paths[0], str), paths
        return paths[0]

    @staticmethod
    def file(server_path: str) -> dict:
        return {"path": server_path, "meta": {"_type": "gradio.FileData"}}

    def submit(self, name: str, data: list) -> str:
        """POST /gradio_api/call/<name> {"data": [...]}; the event id."""
        answer = self._post(f"/gradio_api/call/{name}", json.dumps({"data": data}).encode(), "application/json")
        assert isinstance(answer, dict) and answer.get("event_id"), answer
        return str(answer["event_id"])

    def result(self, name: str, event_id: str) -> Tuple[str, object]:
        """GET /gradio_api/call/<name>/<event_id>, read as HARP does: up to the line "event: complete" or
        "event: error"; returns that event and the JSON of the "data: " line after it."""
        url = f"{self.base}/gradio_api/call/{name}/{event_id}"
        with urllib.request.urlopen(url, timeout=self.timeout) as response:
            for raw in response:
                line = raw.decode().strip()
                if line in ("event: complete", "event: error"):
                    data = response.readline().decode().strip()
                    assert data.startswith("data: "), data
                    return line.split(": ", 1)[1], json.loads(data[len("data: "):])
        raise AssertionError(f"the event stream of {name} ended without complete or error")

    def call(self, name: str, data: list) -> Tuple[str, object]:
        return self.result(name, self.submit(name, data))

    def download(self, output: dict, target: Path) -> Path:
        assert output["meta"]["_type"] == "gradio.FileData", output
        with urllib.request.urlopen(output["url"], timeout=self.timeout) as response:
            assert response.status == 200
            target.write_bytes(response.read())
        return target

    def queue_size(self) -> int:
        with urllib.request.urlopen(self.base + "/gradio_api/queue/status", timeout=self.timeout) as response:
            return int(json.loads(response.read())["queue_size"])


def tracebacks(log_path: Path) -> list:
    """The Python tracebacks the server printed (a user error must print none)."""
    lines = log_path.read_text(errors="replace").splitlines()
    return ["\n".join(lines[i:i + 12]) for i, line in enumerate(lines) if line.startswith("Traceback")]
