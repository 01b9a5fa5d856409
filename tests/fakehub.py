"""A local Hugging Face compatible hub on 127.0.0.1 for the fetch-model tests.

Serves the routes the ``huggingface_hub`` client uses to download a snapshot:
``GET /api/models/{repo}/revision/{rev}`` (resolve a revision to a commit),
``GET /api/models/{repo}/tree/{commit}`` (file listing with LFS checksums) and
``HEAD``/``GET /{repo}/resolve/{commit}/{path}`` (metadata and bytes, ``Range`` honoured;
LFS files optionally redirected to another host, as the hub does to its CDN). Error
answers carry the hub's ``X-Error-Code`` headers. Every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


class Repo:
    def __init__(self, files: dict, commit: str, refs=("main",)):
        self.files = files                  # path -> bytes
        self.commit = commit
        self.refs = set(refs)

    @staticmethod
    def is_lfs(path: str) -> bool:
        return not path.endswith(".json")

    def etag(self, path: str) -> str:
        data = self.files[path]
        return hashlib.sha256(data).hexdigest() if self.is_lfs(path) else git_blob_id(data)


class FakeHub:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers with lower-case names)
        self.required_token = None
        self.redirect_lfs = False
        self.fail: dict[str, int] = {}      # url path prefix -> status
        self.corrupt: set[str] = set()      # file paths served with one byte changed
        self.truncate: dict[str, int] = {}  # file path -> how many more answers stop half-way

    def add(self, repo: str, files: dict, commit: str, refs=("main",)):
        self.repos[repo] = Repo(files, commit, refs)

    # ---------------------------------------------------------------- server
    def __enter__(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_HEAD(self):
                hub._serve(self, head=True)

            def do_GET(self):
                hub._serve(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def paths(self, method=None):
        return [p for m, p, _ in self.requests if method is None or m == method]

    # --------------------------------------------------------------- routing
    def _serve(self, h, head: bool):
        url = urllib.parse.urlsplit(h.path)
        path = urllib.parse.unquote(url.path)
        self.requests.append(("HEAD" if head else "GET", path, {k.lower(): v for k, v in h.headers.items()}))
        for prefix, status in self.fail.items():
            if path.startswith(prefix):
                return _send(h, status, b"", head, {"X-Error-Message": "injected failure"})
        if path.startswith("/cdn/"):
            return self._file(h, path[len("/cdn"):], head, via_cdn=True)
        if self.required_token and h.headers.get("Authorization") != f"Bearer {self.required_token}":
            return _send(h, 401, b"", head, {"X-Error-Message": "Invalid credentials"})
        if path.startswith("/api/models/"):
            return self._api(h, path[len("/api/models/"):], head)
        return self._file(h, path, head, via_cdn=False)

    def _repo(self, h, parts, head):
        repo = "/".join(parts[:2])
        if repo not in self.repos:
            _send(h, 404, b"", head, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            return None, None
        return repo, self.repos[repo]

    def _resolve(self, r: Repo, rev: str):
        return r.commit if rev in r.refs or rev == r.commit else None

    def _api(self, h, rest, head):
        parts = rest.split("/")
        repo, r = self._repo(h, parts, head)
        if r is None:
            return
        kind, rev = parts[2], parts[3] if len(parts) > 3 else "main"
        commit = self._resolve(r, rev)
        if commit is None:
            return _send(h, 404, b"", head, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev"})
        if kind == "revision":
            body = {"id": repo, "modelId": repo, "sha": commit, "private": False,
                    "siblings": [{"rfilename": p} for p in sorted(r.files)]}
        elif kind == "tree":
            prefix = "/".join(parts[4:])
            body, dirs = [], set()
            for p in sorted(r.files):
                if prefix and not p.startswith(prefix + "/"):
                    continue
                d = p.rsplit("/", 1)[0] if "/" in p else None
                if d and d not in dirs:
                    dirs.add(d)
                    body.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": d})
                entry = {"type": "file", "oid": git_blob_id(r.files[p]), "size": len(r.files[p]), "path": p}
                if r.is_lfs(p):
                    entry["lfs"] = {"oid": hashlib.sha256(r.files[p]).hexdigest(), "size": len(r.files[p]),
                                    "pointerSize": 134}
                body.append(entry)
        else:
            return _send(h, 404, b"", head)
        _send(h, 200, json.dumps(body).encode(), head, {"Content-Type": "application/json"})

    def _file(self, h, path, head, via_cdn):
        parts = path.lstrip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return _send(h, 404, b"", head)
        repo, r = self._repo(h, parts, head)
        if r is None:
            return
        commit = self._resolve(r, urllib.parse.unquote(parts[3]))
        if commit is None:
            return _send(h, 404, b"", head, {"X-Error-Code": "RevisionNotFound"})
        rel = "/".join(parts[4:])
        if rel not in r.files:
            return _send(h, 404, b"", head, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit})
        data = r.files[rel]
        headers = {"X-Repo-Commit": commit, "ETag": f'"{r.etag(rel)}"'}
        if r.is_lfs(rel):
            headers["X-Linked-Etag"] = f'"{r.etag(rel)}"'
            headers["X-Linked-Size"] = str(len(data))
            if self.redirect_lfs and not via_cdn:
                headers["Location"] = f"http://localhost:{self.server.server_port}/cdn{path}"
                return _send(h, 302, b"", head, headers)
        if rel in self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        start = 0
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[len("bytes="):].split("-")[0] or 0)
        body = data[start:]
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if self.truncate.get(rel) and not head:
            self.truncate[rel] -= 1
            return _send(h, status, body, head, headers, stop_after=len(body) // 2)
        _send(h, status, body, head, headers)


def _send(h, status, body, head, headers=None, stop_after=None):
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if not head:
        if stop_after is not None:
            h.wfile.write(body[:stop_after])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(body)
