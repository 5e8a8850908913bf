"""`vampnet-ort web`'s server attacked over real sockets on the loopback interface (issue 24, robustness round 3).

Each test names the finding it guards (docs/RELIABILITY.md, "Servers and batch"): DNS rebinding (Host header),
request bodies parsed as requests, files that grow or shrink while served, idle connections, a bundle re-exported
in place, IPv6 hosts. Every socket has a timeout and every loop a bound: a regression fails, it never hangs."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, Tuple

import pytest

import bundle_doubles as bd
from cli_testing import cli_command
from vampnet_ort import web_server

TIMEOUT_S = 20.0  # generous: the machine running the tests may be loaded


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _start(bundle: Path, app_root: Path, host: str = "127.0.0.1", **kwargs):
    server = web_server.create_server(bundle, host, 0, app_root=app_root, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture()
def served(tmp_path: Path, app_root: Path) -> Iterator[Tuple[object, Path]]:
    bundle = bd.write_bundle(tmp_path / "bundle")
    server, thread = _start(bundle, app_root)
    yield server, bundle
    server.shutdown()
    server.server_close()
    thread.join(TIMEOUT_S)


def _connect(server) -> socket.socket:
    host, port = server.server_address[:2]
    sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
    return sock


def _read_head(sock: socket.socket, already: bytes = b"") -> Tuple[bytes, bytes]:
    """(status line + headers, the bytes already received after them)."""
    data = already
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        assert len(data) < 1 << 20, "no end of headers in 1 MiB"
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return int(value.strip())
    raise AssertionError(f"no Content-Length in {head!r}")


def _read_exactly(sock: socket.socket, n: int, already: bytes = b"") -> bytes:
    data = already
    while len(data) < n:
        chunk = sock.recv(min(1 << 20, n - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _raw_request(path: str, host: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


def _get(server, path: str, host_header: str | None = None):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
    try:
        if host_header is None:
            conn.request("GET", path)
        else:
            conn.putrequest("GET", path, skip_host=True)
            conn.putheader("Host", host_header)
            conn.endheaders()
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


# -------------------------------------------------------------------------------------------- DNS rebinding
@pytest.mark.parametrize("host_header", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example",
                                         "localhost.evil.example:1", "[::1].evil.example", "", "a b"])
def test_dns_rebinding_foreign_host_header_is_refused(served, host_header: str) -> None:
    server, _ = served
    for path in ("/", "/bundle/vampnet.json"):
        response, body = _get(server, path, host_header=host_header)
        assert response.status == 421, (host_header, path, response.status)
        assert b"<title>" not in body and b"vampnet-ort-bundle" not in body


@pytest.mark.parametrize("host_header", ["127.0.0.1", "127.0.0.1:{port}", "localhost:{port}", "LOCALHOST",
                                         "[::1]:{port}", "app.localhost:{port}"])
def test_dns_rebinding_loopback_names_and_ip_literals_are_served(served, host_header: str) -> None:
    server, _ = served
    response, body = _get(server, "/", host_header=host_header.format(port=server.server_address[1]))
    assert response.status == 200 and b"<title>t</title>" in body


def test_dns_rebinding_missing_host_header_is_refused(served) -> None:
    server, _ = served
    with _connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        head, _ = _read_head(sock)
    assert head.startswith(b"HTTP/1.1 400"), head


def test_dns_rebinding_allowed_host_names_are_served(tmp_path: Path, app_root: Path) -> None:
    bundle = bd.write_bundle(tmp_path / "bundle")
    server, thread = _start(bundle, app_root, allowed_hosts=["studio.lan"])
    try:
        assert _get(server, "/", host_header="studio.lan:8765")[0].status == 200
        assert _get(server, "/", host_header="Studio.LAN.")[0].status == 200
        assert _get(server, "/", host_header="other.lan")[0].status == 421
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT_S)


# -------------------------------------------------------------------------------------------- request bodies
@pytest.mark.parametrize("method", ["POST", "GET", "PUT", "DELETE"])
def test_request_body_is_never_parsed_as_a_second_request(served, method: str) -> None:
    server, _ = served
    host = f"127.0.0.1:{server.server_address[1]}"
    smuggled = _raw_request("/app.js", host)  # would be answered with the file if the body were parsed
    request = (f"{method} / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(smuggled)}\r\n\r\n").encode() + smuggled
    with _connect(server) as sock:
        sock.sendall(request)
        received = b""
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break  # the server closed the connection: good
            received += chunk
    assert received.count(b"HTTP/1.1 ") == 1, received
    assert b"export const x" not in received
    assert received.startswith(b"HTTP/1.1 4") or received.startswith(b"HTTP/1.1 5"), received[:80]


def test_request_body_chunked_transfer_encoding_is_refused_and_closed(served) -> None:
    server, _ = served
    host = f"127.0.0.1:{server.server_address[1]}"
    smuggled = _raw_request("/app.js", host)
    body = f"{len(smuggled):x}\r\n".encode() + smuggled + b"\r\n0\r\n\r\n"
    request = f"POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + body
    with _connect(server) as sock:
        sock.sendall(request)
        received = b""
        for _ in range(1000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.count(b"HTTP/1.1 ") == 1 and b"export const x" not in received, received


# -------------------------------------------------------------------------------- files changing while served
BIG = 64 << 20  # more than loopback's socket buffers hold: the server is mid-file when the file changes


def _big_file(app_root: Path) -> Path:
    path = app_root / "big.data"
    with path.open("wb") as fh:
        fh.truncate(BIG)  # sparse: quick to make and to read
    return path


def test_file_growing_while_served_sends_exactly_content_length(served, app_root: Path) -> None:
    server, _ = served
    path = _big_file(app_root)
    host = f"127.0.0.1:{server.server_address[1]}"
    with _connect(server) as sock:
        sock.sendall(_raw_request("/big.data", host))
        head, rest = _read_head(sock)
        assert head.startswith(b"HTTP/1.1 200") and _content_length(head) == BIG
        with path.open("ab") as fh:
            fh.write(b"GROWN" * (1 << 18))
        body = _read_exactly(sock, BIG, rest)
        assert len(body) == BIG
        # the connection is still in step: the next bytes are the answer to the next request, not file data
        sock.sendall(_raw_request("/app.js", host))
        head2, rest2 = _read_head(sock)
        assert head2.startswith(b"HTTP/1.1 200"), head2[:80]
        assert _read_exactly(sock, _content_length(head2), rest2) == b"export const x = 1;"


def test_file_shrinking_while_served_closes_the_connection_instead_of_hanging(served, app_root: Path) -> None:
    server, _ = served
    path = _big_file(app_root)
    host = f"127.0.0.1:{server.server_address[1]}"
    with _connect(server) as sock:
        sock.sendall(_raw_request("/big.data", host))
        head, rest = _read_head(sock)
        assert _content_length(head) == BIG
        os.truncate(path, 1 << 20)
        started = time.monotonic()
        try:
            body = _read_exactly(sock, BIG, rest)  # returns at EOF; a server that keeps the socket open times out
        except socket.timeout:
            pytest.fail("the server kept the connection open after sending less than Content-Length")
        assert len(body) < BIG and time.monotonic() - started < TIMEOUT_S


# -------------------------------------------------------------------------------------------- idle sockets
def test_idle_connection_is_closed_after_the_idle_timeout(tmp_path: Path, app_root: Path) -> None:
    bundle = bd.write_bundle(tmp_path / "bundle")
    server, thread = _start(bundle, app_root, idle_timeout=1.0)
    try:
        with _connect(server) as sock:
            started = time.monotonic()
            assert sock.recv(1) == b""  # closed by the server (socket timeout 20 s: a hang fails the test)
            assert time.monotonic() - started < 10
        with _connect(server) as sock:  # a half-sent request is idle too
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            data = b""
            for _ in range(100):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert not data.startswith(b"HTTP/1.1 200")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT_S)


def test_idle_connections_are_capped_and_the_server_stays_usable(tmp_path: Path, app_root: Path) -> None:
    bundle = bd.write_bundle(tmp_path / "bundle")
    server, thread = _start(bundle, app_root, idle_timeout=30.0, max_connections=4)
    held = []
    try:
        threads_before = threading.active_count()
        for _ in range(12):
            held.append(_connect(server))
        # connections past the cap are closed at once, so threads stay bounded
        closed = 0
        for sock in held[4:]:
            sock.settimeout(TIMEOUT_S)
            if sock.recv(1) == b"":
                closed += 1
        assert closed == 8
        assert threading.active_count() <= threads_before + 4
        for sock in held[:4]:
            sock.close()
        held.clear()
        deadline = time.monotonic() + TIMEOUT_S  # the slots come free once the server sees the closes
        while True:
            try:
                response, body = _get(server, "/")
                if response.status == 200:
                    break
            except (ConnectionError, http.client.HTTPException, socket.timeout):
                pass
            assert time.monotonic() < deadline, "the server did not recover after idle connections closed"
            time.sleep(0.1)
    finally:
        for sock in held:
            sock.close()
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT_S)


# -------------------------------------------------------------------------------------- re-exported bundle
def test_bundle_reexported_in_place_is_served_fresh(served, tmp_path: Path) -> None:
    server, bundle = served
    first = json.loads(_get(server, "/bundle/vampnet.json")[1])
    assert first["coarse"]["chunk_frames"] == 20
    # a re-export replaces the whole directory (vampnet-ort export --overwrite renames a new one into place)
    fresh = bd.write_bundle(tmp_path / "fresh", coarse_chunk=33, with_c2f=False)
    (fresh / "extra.onnx").write_bytes(b"new file")
    manifest = json.loads((fresh / "vampnet.json").read_text())
    manifest["files"]["extra.onnx"] = {"sha256": "0" * 64, "bytes": 8}
    (fresh / "vampnet.json").write_text(json.dumps(manifest))
    shutil.rmtree(bundle)
    fresh.rename(bundle)
    response, body = _get(server, "/bundle/vampnet.json")
    assert response.status == 200
    second = json.loads(body)
    assert second["coarse"]["chunk_frames"] == 33 and "c2f.onnx" not in second["files"]
    assert _get(server, "/bundle/extra.onnx")[1] == b"new file"
    assert _get(server, "/bundle/c2f.onnx")[0].status == 404
    # vampnet.json rewritten in the same directory (same size even) is seen too
    text = (bundle / "vampnet.json").read_text().replace('"chunk_frames": 33', '"chunk_frames": 44')
    (bundle / "vampnet.json").write_text(text)
    assert json.loads(_get(server, "/bundle/vampnet.json")[1])["coarse"]["chunk_frames"] == 44


def test_bundle_broken_while_served_gives_a_clear_error(served) -> None:
    server, bundle = served
    (bundle / "vampnet.json").write_text("{not json")
    response, body = _get(server, "/bundle/vampnet.json")
    assert response.status == 503 and b"not valid JSON" in body
    assert _get(server, "/")[0].status == 200  # the app itself is still served


# -------------------------------------------------------------------------------------------- IPv6
@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_host_is_served(tmp_path: Path, app_root: Path) -> None:
    bundle = bd.write_bundle(tmp_path / "bundle")
    server, thread = _start(bundle, app_root, host="::1")
    try:
        url = web_server.server_url(server)
        assert url.startswith("http://[::1]:")
        port = server.server_address[1]
        conn = http.client.HTTPConnection("::1", port, timeout=TIMEOUT_S)
        conn.request("GET", "/bundle/vampnet.json")
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["format"] == "vampnet-ort-bundle"
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT_S)


@pytest.mark.slow
@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_host_through_the_cli(tmp_path: Path) -> None:
    bundle = bd.write_bundle(tmp_path / "bundle")
    proc = subprocess.Popen([*cli_command(), "web", "--models", str(bundle), "--host", "::1", "--port", "0", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        if not line:
            err = proc.stderr.read()
            if "onnxruntime-web files missing" in err:
                pytest.skip("installed without the onnxruntime-web files")
            pytest.fail(err)
        assert line.startswith("http://[::1]:"), line
        port = int(line.rsplit(":", 1)[1].rstrip("/"))
        conn = http.client.HTTPConnection("::1", port, timeout=TIMEOUT_S)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
