"""``vampnet-ort web``: serve the browser app (vampnet_ort/web) and a model bundle over HTTP.

The app runs the bundle's graphs client-side with onnxruntime-web (wasm). The server only hands out files:
``/`` the app (HTML + ES modules + the vendored onnxruntime-web dist files), ``/bundle/vampnet.json`` the bundle's
manifest (plus the ``codec.geometry`` chunking numbers when an older bundle lacks them), ``/bundle/<file>`` the
files the manifest lists, nothing else. Every response carries the cross-origin isolation headers (COOP/COEP)
that multi-threaded wasm needs. Standard library only (ThreadingHTTPServer): the page is for one user on the
local machine, not a production web server.
"""

from __future__ import annotations

import argparse
import copy
import json
import mimetypes
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Optional
from urllib.parse import unquote, urlsplit

from .bundle import BundleError, MANIFEST_NAME, read_manifest

WEB_ROOT = Path(__file__).resolve().parent / "web"
VENDOR_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
                "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
DEFAULT_PORT = 8765
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".data": "application/octet-stream",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class WebError(ValueError):
    """The app or the bundle cannot be served."""


def check_app_files(root: Path = WEB_ROOT) -> None:
    """The app's own files and the vendored onnxruntime-web files are installed."""
    if not (root / "index.html").is_file():
        raise WebError(f"{root}: the web app is not installed (no index.html)")
    missing = [name for name in VENDOR_FILES if not (root / "vendor" / name).is_file()]
    if missing:
        raise WebError(
            f"{root / 'vendor'}: onnxruntime-web files missing ({', '.join(missing)}); this installation was built "
            "without node_modules: run 'npm ci' in the source tree, then 'pip install .' again (docs/WEB.md)")


def browser_manifest(bundle_dir: Path) -> Dict[str, Any]:
    """The bundle's vampnet.json for the browser: as written, plus ``codec.geometry`` (vampnet_ort.codec.geometry)
    when the bundle was exported before the exporter wrote it. A codec without a LAC config gets none: the app then
    runs it unchunked, as the Python pipeline does for codec graphs without codec metadata."""
    manifest = copy.deepcopy(read_manifest(bundle_dir))
    codec_entry = manifest.get("codec") or {}
    if "geometry" not in codec_entry:
        from . import codec
        from .codec_geometry import CodecConfig, CodecConfigError

        try:
            config = CodecConfig.from_kwargs(codec_entry.get("config") or {})
        except CodecConfigError:
            return manifest  # no LAC config: the codec runs unchunked, as Pipeline.encode/decode do then
        manifest.setdefault("codec", {})["geometry"] = codec.geometry(config)
    return manifest


def step_graphs(bundle_dir: Path, manifest: Dict[str, Any],
                log: Callable[[str], None] = lambda _m: None) -> Dict[str, bytes]:
    """The step-window form (vampnet_ort.decode_steps) of the bundle's coarse / c2f graphs, served as
    ``<stage>.steps.onnx`` beside them so the page can report progress per step; added to `manifest` (``files``
    with size and sha256, ``step_graphs``: stage -> file). Only the graph file is derived: it refers to the
    bundle's ``<stage>.onnx.data``. A graph that cannot be windowed is skipped (the page then reports per chunk)."""
    import hashlib

    import onnx
    from google.protobuf.message import DecodeError

    from .decode_steps import StepWindowError, step_window_model

    derived: Dict[str, bytes] = {}
    for stage in ("coarse", "c2f"):
        name = f"{stage}.onnx"
        if name not in manifest.get("files", {}):
            continue
        try:
            model = onnx.load(str(bundle_dir / name), load_external_data=False)
            data = step_window_model(model).SerializeToString()
        except (OSError, DecodeError, StepWindowError, ValueError) as exc:
            log(f"{name}: no per-step progress in the browser ({exc})")
            continue
        locations = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
        if not locations <= set(manifest["files"]):
            log(f"{name}: no per-step progress in the browser (external data not listed in vampnet.json)")
            continue
        file = f"{stage}.steps.onnx"
        derived[file] = data
        manifest["files"][file] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                   "derived_from": name}
        manifest.setdefault("step_graphs", {})[stage] = file
    return derived


def _resolve_inside(root: Path, relative: str) -> Optional[Path]:
    """root / relative when it stays inside root and names a regular file (no dot files), else None."""
    parts = [p for p in relative.split("/") if p]
    if any(p in (".", "..") or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        return None
    candidate = (root / Path(*parts)) if parts else root / "index.html"
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if root.resolve() not in resolved.parents or not resolved.is_file():
        return None
    return resolved


def make_handler(bundle_dir: Path, manifest: Dict[str, Any], app_root: Path = WEB_ROOT,
                 log: Callable[[str], None] = lambda _m: None, derived: Optional[Dict[str, bytes]] = None) -> type:
    """`derived`: served files made here, not read from the bundle (step_graphs)."""
    derived = dict(derived or {})
    manifest_bytes = json.dumps(manifest).encode("utf-8")
    bundle_files = set(manifest["files"])

    class Handler(BaseHTTPRequestHandler):
        server_version = "vampnet-ort-web"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            log(format % args)

        def _headers(self, status: int, content_type: str, length: int, cache: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(length))
            self.send_header("Cache-Control", cache)
            for key, value in ISOLATION_HEADERS.items():
                self.send_header(key, value)
            self.end_headers()

        def _error(self, status: HTTPStatus, message: str) -> None:
            body = f"{status.value} {status.phrase}: {message}\n".encode("utf-8")
            self._headers(status.value, "text/plain; charset=utf-8", len(body), "no-store")
            if self.command != "HEAD":
                self.wfile.write(body)

        def _send_bytes(self, data: bytes, content_type: str) -> None:
            self._headers(200, content_type, len(data), "no-cache")
            if self.command != "HEAD":
                self.wfile.write(data)

        def _send_file(self, path: Path) -> None:
            content_type = CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] \
                or "application/octet-stream"
            try:
                handle = path.open("rb")
            except OSError as exc:
                self._error(HTTPStatus.NOT_FOUND, f"cannot open {path.name} ({exc.strerror})")
                return
            with handle:
                size = path.stat().st_size
                self._headers(200, content_type, size, "no-cache")
                if self.command == "HEAD":
                    return
                while True:
                    chunk = handle.read(1 << 20)
                    if not chunk:
                        break
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        return

        def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802
            path = unquote(urlsplit(self.path).path)
            if path == "/bundle/" + MANIFEST_NAME:
                self._send_bytes(manifest_bytes, "application/json")
                return
            if path.startswith("/bundle/"):
                name = path[len("/bundle/"):]
                if name not in bundle_files:
                    self._error(HTTPStatus.NOT_FOUND, f"{name!r} is not a file of the bundle")
                    return
                if name in derived:
                    self._send_bytes(derived[name], "application/octet-stream")
                    return
                target = _resolve_inside(bundle_dir, name)
                if target is None:
                    self._error(HTTPStatus.NOT_FOUND, f"{name} is listed in vampnet.json but missing")
                    return
                self._send_file(target)
                return
            target = _resolve_inside(app_root, path.lstrip("/"))
            if target is None:
                self._error(HTTPStatus.NOT_FOUND, f"no such file {path!r}")
                return
            self._send_file(target)

        def do_POST(self) -> None:  # noqa: N802
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "this server only serves files")

    return Handler


def create_server(bundle_dir: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                  app_root: Path = WEB_ROOT, log: Callable[[str], None] = lambda _m: None) -> ThreadingHTTPServer:
    """A server for the app and `bundle_dir` (not started); port 0 picks a free port."""
    check_app_files(app_root)
    bundle_dir = Path(bundle_dir)
    manifest = browser_manifest(bundle_dir)
    for name in manifest["files"]:
        if not (bundle_dir / name).is_file():
            raise BundleError(f"{bundle_dir}: incomplete bundle: {name} is missing")
    if not 0 <= int(port) <= 65535:
        raise WebError(f"--port must be between 0 and 65535, got {port}")
    derived = step_graphs(bundle_dir, manifest, log)
    try:
        server = ThreadingHTTPServer((host, int(port)), make_handler(bundle_dir, manifest, app_root, log, derived))
    except OSError as exc:
        raise WebError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    server.daemon_threads = True
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    return f"http://{shown}:{port}/"


def add_parser(sub: Any) -> None:
    """Register ``vampnet-ort web`` on the CLI's subparsers."""
    w = sub.add_parser("web", help="serve the browser app (vamps client-side with onnxruntime-web)",
                       description="Serve the web app and a bundle over HTTP with the cross-origin isolation "
                                   "headers; open the printed URL in a browser. The models run in the browser "
                                   "(onnxruntime-web, wasm). Without --models the demo bundle is served.")
    w.add_argument("--models", metavar="DIR", help="bundle directory (default: the demo bundle, built if needed)")
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    w.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    w.add_argument("--quiet", "-q", action="store_true", help="no request log")


def run(args: argparse.Namespace) -> int:
    """The ``web`` command: serve until interrupted."""
    log = (lambda _m: None) if args.quiet else (lambda m: sys.stderr.write(m + "\n"))
    if args.models is None:
        from .demo import DEMO_NOTE, demo_bundle_path

        log(DEMO_NOTE)
        bundle_dir = Path(demo_bundle_path(log=log))
    else:
        bundle_dir = Path(args.models)
    server = create_server(bundle_dir, args.host, args.port, log=log)
    print(server_url(server), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
