"""A stand-in Hugging Face Hub on 127.0.0.1 for the online paths of ``export --hf`` (tests make no other network
access). It answers the requests huggingface_hub makes, as the Hub answers them:

- ``HEAD|GET /{owner}/{name}/resolve/{revision}/{path}``: the file, with ``X-Repo-Commit``, ``ETag`` (the sha256,
  as for LFS files) and ``Content-Length``; a missing repository, revision or file is a 404 (401 for a repository)
  with ``X-Error-Code: RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``;
- ``GET /api/models/{owner}/{name}/tree/{revision}[/{folder}]?recursive=...``: the JSON listing of files and
  folders under the folder (one page, no ``Link`` header).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

# repo id -> branch name -> (commit, {path: bytes})
Repos = dict[str, dict[str, tuple[str, dict[str, bytes]]]]


class _Handler(BaseHTTPRequestHandler):
    repos: Repos = {}

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _error(self, status: int, code: str) -> None:
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _revision(self, repo: str, revision: str) -> tuple[str, dict[str, bytes]] | None:
        for commit, files in self.repos[repo].values():
            if revision == commit:
                return commit, files
        return self.repos[repo].get(revision)

    def _resolve(self, body: bool) -> None:
        parts = unquote(urlsplit(self.path).path).strip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, revision, path = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            if repo not in self.repos:
                return self._error(401, "RepoNotFound")
            found = self._revision(repo, revision)
            if found is None:
                return self._error(404, "RevisionNotFound")
            commit, files = found
            if path not in files:
                return self._error(404, "EntryNotFound")
            data = files[path]
            self.send_response(200)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if body:
                self.wfile.write(data)
            return None
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "tree" and body:
            repo, revision, folder = "/".join(parts[2:4]), parts[5], "/".join(parts[6:])
            if repo not in self.repos:
                return self._error(401, "RepoNotFound")
            found = self._revision(repo, revision)
            if found is None:
                return self._error(404, "RevisionNotFound")
            return self._tree(found[1], folder, "recursive=true" in urlsplit(self.path).query.lower())
        return self._error(404, "EntryNotFound")

    def _tree(self, files: dict[str, bytes], folder: str, recursive: bool) -> None:
        prefix = folder + "/" if folder else ""
        entries: dict[str, dict] = {}
        for path, data in files.items():
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):].split("/")
            depth = len(rest) if recursive else 1
            for i in range(1, min(depth, len(rest) - 1) + 1):  # the folders on the way
                sub = prefix + "/".join(rest[:i])
                entries[sub] = {"type": "directory", "oid": "0" * 40, "path": sub}
            if recursive or len(rest) == 1:
                entries[path] = {"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data),
                                 "path": path}
        if folder and not entries:
            return self._error(404, "EntryNotFound")
        body = json.dumps(list(entries.values())).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return None

    def do_HEAD(self) -> None:  # noqa: N802
        self._resolve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._resolve(body=True)


class FakeHub:
    """``with FakeHub(repos) as endpoint:`` serves `repos` at `endpoint` (http://127.0.0.1:PORT) until exit."""

    def __init__(self, repos: Repos) -> None:
        handler = type("Handler", (_Handler,), {"repos": repos})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
