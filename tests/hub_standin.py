"""A local stand-in for the Hugging Face Hub: the endpoints and headers huggingface_hub 2.x reads.

`model_info` / `repo_info`: GET /api/models/{repo}[/revision/{rev}] -> {sha, siblings[{rfilename, size}], gated}
`list_repo_tree`:          GET /api/models/{repo}/tree/{rev}       -> [{type, path, size, oid}]
`hf_hub_download`:         HEAD /{repo}/resolve/{rev}/{file}       -> X-Repo-Commit, ETag, Content-Length
                           GET  (same; honours `Range: bytes=N-` with 206 and Content-Range)
Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, GatedRepo), as the Hub's do, so huggingface_hub
raises its own typed errors. Faults for tests: `truncate_once` (send half a file, then drop the
connection) and `fail` (answer 500). Every request is logged. Binds 127.0.0.1 on an ephemeral port.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class StandinRepo:
    """One model repo: its refs (branch/tag -> commit) and each commit's files."""

    commits: dict[str, dict[str, bytes]]  # commit sha -> {path in repo: content}
    refs: dict[str, str]  # "main", tags -> commit sha
    gated: bool = False  # listing works; file requests answer 403 GatedRepo without an accepted token

    @classmethod
    def from_folder(cls, folder: Path, extra: dict[str, bytes] | None = None, sha: str = "a" * 40) -> StandinRepo:
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return cls({sha: files | (extra or {})}, {"main": sha})


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None
    authorization: str | None


@dataclass
class StandinHub:
    repos: dict[str, StandinRepo]
    accepted_token: str | None = None  # gated repos serve files to this bearer token only
    truncate_once: set[str] = field(default_factory=set)  # file names: first GET sends half, then drops
    fail: set[str] = field(default_factory=set)  # file names: GET answers 500 while listed here
    log: list[Request] = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> StandinHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                hub._handle(self, head=True)

            def do_GET(self) -> None:
                hub._handle(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def gets(self, filename: str) -> list[Request]:
        """GET requests for one file's content (any revision)."""
        return [r for r in self.log if r.method == "GET" and "/resolve/" in r.path and r.path.endswith("/" + filename)]

    # --- request handling -------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlsplit(request.path).path)
        self.log.append(
            Request("HEAD" if head else "GET", path, request.headers.get("Range"), request.headers.get("Authorization"))
        )
        # Dataset repos are keyed "datasets/org/name" in `repos`, as their URLs are prefixed.
        api = re.fullmatch(r"/api/(models|datasets)/([^/]+/[^/]+)(?:/revision/(.+)|/tree/([^/]+)(/.*)?)?", path)
        if api:
            kind, repo_id, revision, tree_revision, under = api.groups()
            key = repo_id if kind == "models" else f"datasets/{repo_id}"
            tree = tree_revision is not None
            return self._api(request, key, revision or tree_revision or "main", tree, (under or "").strip("/"))
        resolve = re.fullmatch(r"/((?:datasets/)?[^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if resolve:
            return self._file(request, *resolve.groups(), head=head)
        self._error(request, 404, "EntryNotFound")

    def _commit(self, request, repo_id: str, revision: str) -> tuple[StandinRepo, str] | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._error(request, 401, "RepoNotFound")
            return None
        sha = revision if revision in repo.commits else repo.refs.get(revision)
        if sha is None:
            self._error(request, 404, "RevisionNotFound")
            return None
        return repo, sha

    def _api(self, request, repo_id: str, revision: str, tree: bool, under: str = "") -> None:
        found = self._commit(request, repo_id, revision)
        if found is None:
            return
        repo, sha = found
        files = repo.commits[sha]
        if tree:
            inside = {name: data for name, data in files.items() if not under or name.startswith(under + "/")}
            body = [
                {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                for name, data in inside.items()
            ]
        else:
            body = {
                "id": repo_id.removeprefix("datasets/"),
                "modelId": repo_id,
                "sha": sha,
                "private": False,
                "gated": "manual" if repo.gated else False,
                "siblings": [{"rfilename": name, "size": len(data)} for name, data in files.items()],
            }
        self._send(request, 200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _file(self, request, repo_id: str, revision: str, filename: str, head: bool) -> None:
        found = self._commit(request, repo_id, revision)
        if found is None:
            return
        repo, sha = found
        if repo.gated and request.headers.get("Authorization") != f"Bearer {self.accepted_token}":
            return self._error(request, 403, "GatedRepo")
        data = repo.commits[sha].get(filename)
        if data is None:
            return self._error(request, 404, "EntryNotFound")
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if head:
            return self._send(request, 200, b"", headers | {"Content-Length": str(len(data))}, body_length=len(data))
        if filename in self.fail:
            return self._error(request, 500, None)
        asked = re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range") or "")
        start = int(asked.group(1)) if asked else 0
        if filename in self.truncate_once:
            self.truncate_once.discard(filename)
            # Promise the whole file, send half, drop the connection: a network failure mid-download.
            request.send_response(200)
            for key, value in (headers | {"Content-Length": str(len(data))}).items():
                request.send_header(key, value)
            request.end_headers()
            request.wfile.write(data[: len(data) // 2])
            request.wfile.flush()
            request.close_connection = True
            return
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return self._send(request, 206, data[start:], headers)
        self._send(request, 200, data, headers)

    def _error(self, request, status: int, code: str | None) -> None:
        self._send(request, status, b"{}", {"X-Error-Code": code} if code else {})

    @staticmethod
    def _send(request, status: int, body: bytes, headers: dict[str, str], body_length: int | None = None) -> None:
        request.send_response(status)
        headers = {"Content-Length": str(len(body) if body_length is None else body_length)} | headers
        for key, value in headers.items():
            request.send_header(key, value)
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)
