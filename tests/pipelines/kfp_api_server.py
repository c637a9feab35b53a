"""A small KFP v2beta1 REST API on 127.0.0.1 for the real ``kfp.Client`` to talk to.

It answers the paths our commands call (healthz, experiments, runs, recurring runs),
keeps what was created in memory, records every request (method, path, query,
headers, JSON body), and can behave like a multi-user Kubeflow: a bearer token is
required (401 without the right one) and only some namespaces are allowed (403).
The JSON shapes are those of kubeflow/pipelines ``backend/api/v2beta1`` (gRPC-gateway:
snake_case fields, RFC 3339 times, ``{"code", "message"}`` errors).
"""

from __future__ import annotations

import itertools
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EPOCH = "1970-01-01T00:00:00Z"
CREATED = "2026-01-02T03:04:05Z"
TERMINAL = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class KFPAPIServer:
    """The fake API; ``start()`` it, use ``url``, ``stop()`` it (or use it as a context manager)."""

    multi_user: bool = False
    tag_name: str = "2.17.0"
    token: str | None = None  # when set, every call but healthz needs "Bearer <token>"
    allowed_namespaces: tuple[str, ...] | None = None  # when set, other namespaces get 403
    page_size: int | None = None  # cap on list pages (to exercise paging)
    fail_create_recurring: bool = False
    #: states a run goes through, one per GET of it (then it stays at the last)
    run_states: tuple[str, ...] = ("RUNNING", "SUCCEEDED")
    requests: list[Request] = field(default_factory=list)
    experiments: dict[str, dict] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)
    recurring_runs: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = (f"id-{i:04d}" for i in itertools.count(1))
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> "KFPAPIServer":
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                req = Request(
                    method=self.command,
                    path=parsed.path,
                    query={k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with api._lock:
                    api.requests.append(req)
                    status, payload = api._route(req)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="fake-kfp-api", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "KFPAPIServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- what was asked ----------------------------------------------------------------

    def calls(self, method: str | None = None, path_prefix: str = "") -> list[Request]:
        """Recorded requests other than healthz, optionally of one method / under one path."""
        return [
            r for r in self.requests
            if not r.path.endswith("/healthz") and (method is None or r.method == method) and r.path.startswith(path_prefix)
        ]

    def named(self, name: str) -> list[dict]:
        return [r for r in self.recurring_runs.values() if r["display_name"] == name]

    # --- the API -----------------------------------------------------------------------

    def _error(self, status: int, code: int, message: str) -> tuple[int, dict]:
        return status, {"error": message, "code": code, "message": message, "details": []}

    def _denied(self, namespace: str | None) -> tuple[int, dict] | None:
        if self.allowed_namespaces is not None and namespace not in self.allowed_namespaces:
            return self._error(403, 7, f"PermissionDenied: user is not allowed to access namespace {namespace!r}")
        return None

    def _route(self, req: Request) -> tuple[int, Any]:
        p = req.path.removeprefix("/apis/v2beta1")
        if req.method == "GET" and p == "/healthz":
            return 200, {"commit_sha": "0000000", "tag_name": self.tag_name, "multi_user": self.multi_user, "pipeline_store": "database"}
        if self.token is not None:
            if not req.authorization:
                return self._error(401, 16, "Request header error: there is no user identity header.")
            if req.authorization != f"Bearer {self.token}":
                return self._error(401, 16, "Request header error: Failed to review the token provided")
        if p == "/experiments":
            if req.method == "GET":
                return self._list_experiments(req)
            if req.method == "POST":
                return self._create_experiment(req.body)
        if p == "/runs":
            if req.method == "POST":
                return self._create_run(req.body)
            if req.method == "GET":
                return self._list(req, self.runs.values(), "runs")
        if p.startswith("/runs/") and req.method == "GET":
            return self._get_run(p.split("/")[2])
        if p == "/recurringruns":
            if req.method == "POST":
                return self._create_recurring_run(req.body)
            if req.method == "GET":
                # the proto field is spelled recurringRuns (backend/api/v2beta1/recurring_run.proto)
                return self._list(req, self.recurring_runs.values(), "recurringRuns")
        if p.startswith("/recurringruns/"):
            rid = p.split("/")[2]
            if rid.endswith(":enable") and req.method == "POST":
                return self._set_mode(rid.removesuffix(":enable"), "ENABLE")
            if req.method == "DELETE":
                if self.recurring_runs.pop(rid, None) is None:
                    return self._error(404, 5, f"recurring run {rid} not found")
                return 200, {}
        return self._error(404, 5, f"no route {req.method} {req.path}")

    def _namespace_of(self, experiment_id: str | None) -> str | None:
        exp = self.experiments.get(experiment_id or "")
        return exp["namespace"] if exp else None

    def _list_experiments(self, req: Request) -> tuple[int, Any]:
        namespace = req.query.get("namespace")
        if (denied := self._denied(namespace)) is not None:
            return denied
        name = None
        if "filter" in req.query:
            for pred in json.loads(req.query["filter"]).get("predicates", []):
                if pred.get("key") == "display_name":
                    name = pred.get("stringValue", pred.get("string_value"))
        found = [e for e in self.experiments.values() if (name is None or e["display_name"] == name) and e["namespace"] == (namespace or "")]
        return 200, {"experiments": found, "total_size": len(found)}

    def _create_experiment(self, body: dict) -> tuple[int, Any]:
        namespace = body.get("namespace") or ""
        if self.multi_user and not namespace:
            return self._error(400, 3, "Invalid input error: An experiment cannot have an empty namespace in multi-user mode")
        if (denied := self._denied(namespace)) is not None:
            return denied
        exp = {"experiment_id": next(self._ids), "display_name": body["display_name"], "description": body.get("description") or "",
               "namespace": namespace, "created_at": CREATED, "storage_state": "AVAILABLE"}
        self.experiments[exp["experiment_id"]] = exp
        return 200, exp

    def _create_run(self, body: dict) -> tuple[int, Any]:
        namespace = self._namespace_of(body.get("experiment_id"))
        if (denied := self._denied(namespace)) is not None:
            return denied
        run = {**body, "run_id": next(self._ids), "state": "PENDING", "created_at": CREATED, "finished_at": EPOCH,
               "_namespace": namespace, "_gets": 0}
        self.runs[run["run_id"]] = run
        return 200, self._public(run)

    def _get_run(self, run_id: str) -> tuple[int, Any]:
        run = self.runs.get(run_id)
        if run is None:
            return self._error(404, 5, f"run {run_id} not found")
        run["state"] = self.run_states[min(run["_gets"], len(self.run_states) - 1)]
        run["_gets"] += 1
        if run["state"] in TERMINAL:
            run["finished_at"] = "2026-01-02T04:00:00Z"
        return 200, self._public(run)

    def _create_recurring_run(self, body: dict) -> tuple[int, Any]:
        namespace = self._namespace_of(body.get("experiment_id"))
        if (denied := self._denied(namespace)) is not None:
            return denied
        if self.fail_create_recurring:
            return self._error(500, 13, "API said no")
        rr = {**body, "recurring_run_id": next(self._ids), "namespace": namespace or "", "created_at": CREATED,
              "status": "ENABLED" if body.get("mode") == "ENABLE" else "DISABLED", "_namespace": namespace}
        self.recurring_runs[rr["recurring_run_id"]] = rr
        return 200, self._public(rr)

    def _set_mode(self, rid: str, mode: str) -> tuple[int, Any]:
        rr = self.recurring_runs.get(rid)
        if rr is None:
            return self._error(404, 5, f"recurring run {rid} not found")
        rr["mode"], rr["status"] = mode, "ENABLED" if mode == "ENABLE" else "DISABLED"
        return 200, {}

    def _list(self, req: Request, items: Any, key: str) -> tuple[int, Any]:
        namespace = req.query.get("namespace")
        if (denied := self._denied(namespace)) is not None:
            return denied
        if self.multi_user and not namespace and not req.query.get("experiment_id"):
            return self._error(400, 3, "Invalid input error: ListRuns must filter by resource reference in multi-user mode.")
        chosen = [i for i in items if (namespace is None or (i["_namespace"] or "") == namespace)]
        if req.query.get("experiment_id"):
            chosen = [i for i in chosen if i.get("experiment_id") == req.query["experiment_id"]]
        if req.query.get("sort_by") == "created_at desc":
            chosen = list(reversed(chosen))  # creation order is insertion order here
        size = int(req.query.get("page_size") or 10)
        if self.page_size:
            size = min(size, self.page_size)
        start = int(req.query.get("page_token") or 0)
        page = chosen[start:start + size]
        token = str(start + size) if start + size < len(chosen) else ""
        return 200, {key: [self._public(i) for i in page], "total_size": len(chosen), "next_page_token": token}

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}
