"""A small Argo Server REST API on 127.0.0.1 for ``model-adapter argo submit|schedule`` to talk to.

It answers the paths of argo-workflows ``pkg/apiclient`` (version, workflow-templates,
cron-workflows, workflows), keeps what was created in memory, records every request, and
behaves like a server in client auth mode when ``token`` is set (401 without ``Bearer
<token>``) and like RBAC when ``allowed_namespaces`` is set (403 elsewhere). Like the
Kubernetes API behind it, an update must carry the current ``metadata.resourceVersion``.
Errors are gRPC-gateway's ``{"code", "message"}``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ArgoAPIServer:
    version: str = "v4.0.10"
    token: str | None = None
    allowed_namespaces: tuple[str, ...] | None = None
    requests: list[Request] = field(default_factory=list)
    objects: dict[tuple[str, str, str], dict] = field(default_factory=dict)  # (collection, namespace, name) -> object

    def __post_init__(self) -> None:
        self._versions = itertools.count(100)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "ArgoAPIServer":
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw) if raw else None)
                with api._lock:
                    api.requests.append(req)
                    status, body = api._route(req)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "ArgoAPIServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @staticmethod
    def _error(status: int, code: int, message: str) -> tuple[int, dict]:
        return status, {"code": code, "message": message}

    def _route(self, req: Request) -> tuple[int, Any]:
        if self.token and req.headers.get("authorization") != f"Bearer {self.token}":
            return self._error(401, 16, "token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/")
        if req.path == "/api/v1/version" and req.method == "GET":
            return 200, {"version": self.version, "gitCommit": "0" * 40, "platform": "linux/amd64"}
        m = re.fullmatch(r"/api/v1/(workflow-templates|cron-workflows|workflows)/([^/]+)(?:/([^/]+))?", req.path)
        if not m:
            return self._error(404, 5, f"no route {req.path}")
        collection, ns, name = m.groups()
        if self.allowed_namespaces is not None and ns not in self.allowed_namespaces:
            return self._error(403, 7, f'{collection} is forbidden: User "system:serviceaccount:x:y" cannot create resource in the namespace "{ns}"')
        key = {"workflow-templates": "template", "cron-workflows": "cronWorkflow", "workflows": "workflow"}[collection]
        if req.method == "GET" and name:
            obj = self.objects.get((collection, ns, name))
            return (200, obj) if obj else self._error(404, 5, f'{collection} "{name}" not found')
        if req.method == "POST" and not name:
            obj = json.loads(json.dumps(req.body[key]))
            meta = obj["metadata"]
            if "generateName" in meta and "name" not in meta:
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if (collection, ns, meta["name"]) in self.objects:
                return self._error(409, 6, f'{collection} "{meta["name"]}" already exists')
            meta.update(uid=str(uuid.uuid4()), resourceVersion=str(next(self._versions)), namespace=ns)
            self.objects[(collection, ns, meta["name"])] = obj
            return 200, obj
        if req.method == "PUT" and name:
            current = self.objects.get((collection, ns, name))
            if current is None:
                return self._error(404, 5, f'{collection} "{name}" not found')
            obj = json.loads(json.dumps(req.body[key]))
            if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return self._error(409, 10, "the object has been modified; please apply your changes to the latest version and try again")
            obj["metadata"].update(uid=current["metadata"]["uid"], resourceVersion=str(next(self._versions)))
            self.objects[(collection, ns, name)] = obj
            return 200, obj
        return self._error(405, 12, f"{req.method} {req.path} not allowed")
