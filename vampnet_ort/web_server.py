"""``vampnet-ort web``: serve the browser app (vampnet_ort/web) and a model bundle over HTTP.

The app runs the bundle's graphs client-side with onnxruntime-web (wasm). The server only hands out files:
``/`` the app (HTML + ES modules + the vendored onnxruntime-web dist files), ``/bundle/vampnet.json`` the bundle's
manifest (plus the ``codec.geometry`` chunking numbers when an older bundle lacks them), ``/bundle/<file>`` the
files the manifest lists, nothing else. Every response carries the cross-origin isolation headers (COOP/COEP)
that multi-threaded wasm needs.

Standard library only (``ThreadingHTTPServer``, docs/WEB.md says why), hardened where the standard library is
not: the ``Host`` header must be an IP literal, ``localhost`` or a name given with ``--allow-host`` (DNS
rebinding); a request with a body is refused and its connection closed (a body is never parsed as a request);
a file is sent as exactly the ``Content-Length`` its open descriptor had (a file that grows is cut there, one that
shrinks closes the connection); idle connections close after ``IDLE_TIMEOUT_S`` and at most ``MAX_CONNECTIONS``
are served at once; ``vampnet.json`` is re-read whenever it changes on disk (a bundle re-exported in place); IPv4
and IPv6 addresses and names are listened on.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import mimetypes
import os
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Tuple
from urllib.parse import unquote, urlsplit

from .bundle import BundleError, MANIFEST_NAME, read_manifest

WEB_ROOT = Path(__file__).resolve().parent / "web"
VENDOR_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
                "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
DEFAULT_PORT = 8765
IDLE_TIMEOUT_S = 30.0  # a connection that sends nothing (no request, or a request half sent) for this long is closed
MAX_CONNECTIONS = 32  # connections served at once (one thread each); further ones are closed at once
SEND_BLOCK = 1 << 20
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


def host_allowed(header: Optional[str], allowed_names: Iterable[str] = ()) -> bool:
    """Whether a request's ``Host`` header names this server and not a DNS name an attacker controls.

    Accepted: an IPv4 or IPv6 literal (a page whose origin is an IP address is that address: no rebinding),
    ``localhost`` and ``*.localhost`` (resolved to loopback by browsers, RFC 6761), and the `allowed_names`
    (``--allow-host``), each with or without a port. Names compare case-insensitively, a final dot ignored."""
    if not header:
        return False
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return False
        name, rest = value[1:end], value[end + 1:]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return False
        try:
            return isinstance(ipaddress.ip_address(name), ipaddress.IPv6Address)
        except ValueError:
            return False
    name, colon, port = value.partition(":")
    if colon and not port.isdigit():
        return False
    name = name.rstrip(".")
    if not name or any(c.isspace() for c in name):
        return False
    try:
        ipaddress.IPv4Address(name)
        return True
    except ValueError:
        pass
    if name == "localhost" or name.endswith(".localhost"):
        return True
    return name in {n.strip().lower().rstrip(".") for n in allowed_names}


class _BundleView:
    """The bundle's browser manifest, re-read whenever ``vampnet.json`` changes on disk (inode, size, mtime), so a
    bundle re-exported in place (a new directory renamed over the old, or the file rewritten) is served fresh."""

    def __init__(self, bundle_dir: Path, log: Callable[[str], None] = lambda _m: None) -> None:
        self.bundle_dir = bundle_dir
        self.log = log
        self._lock = threading.Lock()
        self._key: Optional[Tuple[int, ...]] = None
        self._state: Tuple[bytes, frozenset, Dict[str, bytes]] = (b"", frozenset(), {})

    def current(self) -> Tuple[bytes, frozenset, Dict[str, bytes]]:
        """(vampnet.json for the browser as bytes, the listed file names, the derived files made here: the step
        graphs); BundleError when it is unusable now."""
        path = self.bundle_dir / MANIFEST_NAME
        try:
            st = os.stat(path)
        except OSError:
            read_manifest(self.bundle_dir)  # raises the BundleError that names the problem
            raise
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            if key != self._key:
                manifest = browser_manifest(self.bundle_dir)
                derived = step_graphs(self.bundle_dir, manifest, self.log)  # adds them to the manifest
                self._state = (json.dumps(manifest).encode("utf-8"), frozenset(manifest["files"]), derived)
                self._key = key
            return self._state


def make_handler(bundle_dir: Path, app_root: Path = WEB_ROOT, log: Callable[[str], None] = lambda _m: None,
                 allowed_hosts: Iterable[str] = (), idle_timeout: float = IDLE_TIMEOUT_S) -> type:
    view = _BundleView(bundle_dir, log)
    view.current()  # at start-up: the step graphs are made now, and a broken bundle is an error before serving
    allowed = frozenset(allowed_hosts)

    class Handler(BaseHTTPRequestHandler):
        server_version = "vampnet-ort-web"
        protocol_version = "HTTP/1.1"
        timeout = idle_timeout  # StreamRequestHandler: a socket timeout; handle_one_request then closes

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            log(format % args)

        def handle_expect_100(self) -> bool:
            return True  # never invite a body: every request with one is refused (parse_request)

        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            if self.headers.get("Transfer-Encoding") is not None or \
                    self.headers.get("Content-Length", "0").strip() not in ("", "0"):
                self.close_connection = True  # the body is never read, so it can never be taken for a request
                self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "this server takes no request bodies")
                return False
            hosts = self.headers.get_all("Host") or []
            if len(hosts) != 1:
                self.close_connection = True
                self._error(HTTPStatus.BAD_REQUEST, "exactly one Host header is required")
                return False
            if not host_allowed(hosts[0], allowed):
                self._error(HTTPStatus.MISDIRECTED_REQUEST,
                            f"host {hosts[0][:100]!r} is not served here (DNS rebinding protection); open the URL "
                            "the server printed, or start it with --allow-host NAME")
                return False
            return True

        def _headers(self, status: int, content_type: str, length: int, cache: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(length))
            self.send_header("Cache-Control", cache)
            for key, value in ISOLATION_HEADERS.items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
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
                size = os.fstat(handle.fileno()).st_size  # the size of what is open, not of what the path names later
                self._headers(200, content_type, size, "no-cache")
                if self.command == "HEAD":
                    return
                remaining = size
                while remaining > 0:
                    chunk = handle.read(min(SEND_BLOCK, remaining))  # never past Content-Length: a grown file is cut
                    if not chunk:  # the file shrank: the client must see a short body and a closed connection
                        log(f"{path.name} shrank while it was served; connection closed")
                        self.close_connection = True
                        return
                    try:
                        self.wfile.write(chunk)
                    except OSError:  # broken pipe, reset, timeout
                        self.close_connection = True
                        return
                    remaining -= len(chunk)

        def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802
            path = unquote(urlsplit(self.path).path)
            if path == "/bundle/" + MANIFEST_NAME or path.startswith("/bundle/"):
                try:
                    manifest_bytes, bundle_files, derived = view.current()
                except (BundleError, OSError) as exc:
                    self._error(HTTPStatus.SERVICE_UNAVAILABLE, f"the bundle cannot be served now: {exc}")
                    return
                if path == "/bundle/" + MANIFEST_NAME:
                    self._send_bytes(manifest_bytes, "application/json")
                    return
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


class WebServer(ThreadingHTTPServer):
    """ThreadingHTTPServer for IPv4 or IPv6 with at most `max_connections` connections (threads) at once: one more
    is closed as soon as it is accepted, so idle or slow clients cannot pile up threads."""

    daemon_threads = True

    def __init__(self, address: Tuple[Any, ...], handler: type, family: int, max_connections: int) -> None:
        self.address_family = family
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            try:  # "::" also accepts IPv4 where the system allows dual-stack sockets
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            except OSError:
                pass
        # TCPServer.server_bind, without HTTPServer's getfqdn (a DNS look-up that can stall start-up)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _listen_address(host: str, port: int) -> Tuple[int, Tuple[Any, ...]]:
    """(address family, socket address) to bind for `host` (an IPv4/IPv6 literal or a name) and `port`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebError(f"--host {host!r}: not an address or a name this machine resolves ({exc})") from None
    family, _, _, _, address = infos[0]
    return family, address


def create_server(bundle_dir: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                  app_root: Path = WEB_ROOT, log: Callable[[str], None] = lambda _m: None, *,
                  allowed_hosts: Iterable[str] = (), idle_timeout: float = IDLE_TIMEOUT_S,
                  max_connections: int = MAX_CONNECTIONS) -> WebServer:
    """A server for the app and `bundle_dir` (not started); port 0 picks a free port. `allowed_hosts`: host
    names besides IP literals and localhost that requests may name in their ``Host`` header."""
    check_app_files(app_root)
    bundle_dir = Path(bundle_dir)
    manifest = browser_manifest(bundle_dir)
    for name in manifest["files"]:
        if not (bundle_dir / name).is_file():
            raise BundleError(f"{bundle_dir}: incomplete bundle: {name} is missing")
    if not 0 <= int(port) <= 65535:
        raise WebError(f"--port must be between 0 and 65535, got {port}")
    if not idle_timeout > 0 or max_connections < 1:
        raise WebError("idle_timeout must be > 0 and max_connections >= 1")
    names = [str(host)] if not _is_ip_literal(str(host)) else []
    names += [name for name in allowed_hosts]
    if str(host) in ("0.0.0.0", "::", ""):
        names.append(socket.gethostname())  # reachable from the network: its own name is a natural URL
    family, address = _listen_address(str(host), int(port))
    handler = make_handler(bundle_dir, app_root, log, allowed_hosts=names, idle_timeout=idle_timeout)
    try:
        server = WebServer(address, handler, family, max_connections)
    except OSError as exc:
        raise WebError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return server


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


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
    w.add_argument("--host", default="127.0.0.1",
                   help="address or name to listen on, IPv4 or IPv6 (default 127.0.0.1; '::' for all IPv6 and, "
                        "where the system allows, IPv4 addresses)")
    w.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    w.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name the browser may use in the URL besides IP addresses and localhost (repeatable; "
                        "other names are refused: DNS rebinding protection)")
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
    server = create_server(bundle_dir, args.host, args.port, log=log, allowed_hosts=args.allow_host)
    print(server_url(server), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
