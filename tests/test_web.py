"""`vampnet-ort web`: the server (headers, what it serves and refuses, the browser manifest, the CLI), and the
web app's JS unit tests run with Node on vectors the Python implementation writes now (tests/web/).

The onnxruntime-web and real-browser tests need `npm ci` and chromium: scripts/test_web.sh runs them in CI."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import bundle_doubles as bd
from cli_testing import cli_command
from vampnet_ort import web_server
from vampnet_ort import codec
from vampnet_ort.bundle import BundleError
from vampnet_ort.codec_geometry import CodecConfig
from vampnet_ort.demo import DEMO_CODEC

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


@pytest.fixture()
def served(tmp_path: Path, app_root: Path):
    bundle = bd.write_bundle(tmp_path / "bundle")
    (bundle / "not_listed.txt").write_text("SECRET-UNLISTED")
    # an older bundle's manifest: a LAC codec config and no codec.geometry (vampnet.json itself is not hashed)
    manifest = json.loads((bundle / "vampnet.json").read_text())
    manifest["codec"] = {"config": DEMO_CODEC, "source_sha256": "0" * 64}
    (bundle / "vampnet.json").write_text(json.dumps(manifest))
    server = web_server.create_server(bundle, "127.0.0.1", 0, app_root=app_root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, bundle
    server.shutdown()
    server.server_close()


def get(server, path: str, method: str = "GET"):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request(method, path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def test_serves_app_and_bundle_with_isolation_headers(served) -> None:
    server, bundle = served
    response, body = get(server, "/")
    assert response.status == 200 and b"<title>t</title>" in body
    for key, value in web_server.ISOLATION_HEADERS.items():
        assert response.getheader(key) == value
    response, _ = get(server, "/vendor/ort-wasm-simd-threaded.wasm")
    assert response.status == 200 and response.getheader("Content-Type") == "application/wasm"
    response, _ = get(server, "/app.js")
    assert response.getheader("Content-Type").startswith("text/javascript")
    manifest = json.loads(get(server, "/bundle/vampnet.json")[1])
    on_disk = json.loads((bundle / "vampnet.json").read_text())
    assert manifest["files"] == on_disk["files"]
    assert "geometry" not in on_disk["codec"]
    assert manifest["codec"]["geometry"] == codec.geometry(CodecConfig.from_kwargs(DEMO_CODEC))
    name = sorted(on_disk["files"])[0]
    response, body = get(server, f"/bundle/{name}")
    assert response.status == 200 and body == (bundle / name).read_bytes()
    response, body = get(server, f"/bundle/{name}", method="HEAD")
    assert response.status == 200 and body == b"" and int(response.getheader("Content-Length")) == (bundle / name).stat().st_size


def test_serves_step_window_graphs_of_the_decode_graphs(tmp_path: Path, app_root: Path) -> None:
    """The page's per-step progress: coarse.steps.onnx / c2f.steps.onnx derived from the bundle's decode graphs
    (vampnet_ort.decode_steps), listed in the served manifest with their size and sha256."""
    import hashlib

    import onnx

    from vampnet_ort.decode_steps import step_window_model
    from vampnet_ort.demo import demo_bundle_path

    bundle = demo_bundle_path()
    server = web_server.create_server(bundle, "127.0.0.1", 0, app_root=app_root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        manifest = json.loads(get(server, "/bundle/vampnet.json")[1])
        assert manifest["step_graphs"] == {"coarse": "coarse.steps.onnx", "c2f": "c2f.steps.onnx"}
        for stage, name in manifest["step_graphs"].items():
            response, body = get(server, f"/bundle/{name}")
            assert response.status == 200
            entry = manifest["files"][name]
            assert entry["bytes"] == len(body) and entry["sha256"] == hashlib.sha256(body).hexdigest()
            expected = step_window_model(onnx.load(str(bundle / f"{stage}.onnx"), load_external_data=False))
            assert body == expected.SerializeToString()
        on_disk = json.loads((bundle / "vampnet.json").read_text())
        assert "step_graphs" not in on_disk and "coarse.steps.onnx" not in on_disk["files"]  # nothing written
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("path", [
    "/../outside.txt", "/%2e%2e/outside.txt", "/vendor/../../outside.txt", "/.secret", "/bundle/not_listed.txt",
    "/bundle/../bundle/vampnet.json/..", "/bundle/%2e%2e%2foutside.txt", "/nope.js", "//etc/passwd", "/vendor",
])
def test_refuses_traversal_and_unlisted_files(served, path: str) -> None:
    response, body = get(served[0], path)
    assert response.status == 404, (path, body)
    assert b"SECRET" not in body


def test_missing_vendor_files_and_bad_bundles_give_clear_errors(tmp_path: Path, app_root: Path) -> None:
    bundle = bd.write_bundle(tmp_path / "bundle")
    (app_root / "vendor" / "ort-wasm-simd-threaded.wasm").unlink()
    with pytest.raises(web_server.WebError, match="onnxruntime-web files missing .*npm ci"):
        web_server.create_server(bundle, port=0, app_root=app_root)
    shutil.copytree(app_root, tmp_path / "app2")  # a complete app (whether or not this install has npm's files)
    (tmp_path / "app2" / "vendor" / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm")
    with pytest.raises(BundleError, match="no such bundle directory"):
        web_server.create_server(tmp_path / "nope", port=0, app_root=tmp_path / "app2")
    listed = sorted(json.loads((bundle / "vampnet.json").read_text())["files"])[0]
    (bundle / listed).unlink()
    with pytest.raises(BundleError, match=f"{listed} is missing"):
        web_server.create_server(bundle, port=0, app_root=tmp_path / "app2")


def test_cli_web_prints_the_url_or_a_clear_error(tmp_path: Path) -> None:
    bundle = bd.write_bundle(tmp_path / "bundle")
    proc = subprocess.Popen([*cli_command(), "web", "--models", str(bundle), "--port", "0", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        if not line:  # installed without the onnxruntime-web files: one clear line
            err = proc.stderr.read()
            assert proc.wait(timeout=30) == 1 and "onnxruntime-web files missing" in err and len(err.strip().splitlines()) == 1
            return
        assert line.startswith("http://127.0.0.1:") and line.endswith("/")
        host, port = line[len("http://"):-1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200 and b"VampNet in the browser" in response.read()
        assert response.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    bad = subprocess.run([*cli_command(), "web", "--models", str(tmp_path / "nope"), "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "no such bundle directory" in bad.stderr and "Traceback" not in bad.stderr


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed (scripts/test_web.sh installs it)")
def test_js_unit_tests_against_python_vectors(tmp_path: Path) -> None:
    """Philox, masks, options, loudness, chunk plans, WAV writer and the replayed orchestration (tests/web)."""
    subprocess.run([sys.executable, str(TESTS / "web" / "make_vectors.py"), str(tmp_path)], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, str(TESTS / "web" / "make_pipeline_vectors.py"), str(tmp_path)], check=True,
                   capture_output=True)
    files = [str(TESTS / "web" / f"{name}.test.mjs") for name in ("masks", "loudness", "chunks", "wav", "replay", "backend")]
    proc = subprocess.run([NODE, "--test", *files], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, VAMPNET_WEB_VECTORS=str(tmp_path)))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout and "# pass 13" in proc.stdout, proc.stdout[-2000:]
