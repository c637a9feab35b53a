"""Talking to the Argo Server's REST API: create or update WorkflowTemplates and CronWorkflows, submit a run.

The paths are those of argo-workflows ``pkg/apiclient`` (gRPC-gateway): ``/api/v1/version``,
``/api/v1/workflow-templates/{ns}[/{name}]``, ``/api/v1/cron-workflows/{ns}[/{name}]``,
``/api/v1/workflows/{ns}``; errors are ``{"code", "message"}``. Every call sends
``Authorization: Bearer <token>`` when a token is given (``argo auth token`` prints one with
the ``Bearer`` prefix; either form is taken). ``connect`` checks the server once
(``/api/v1/version``) before anything is created; every failure is one ``ArgoAccessError`` line.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

from adapter_base.errors import AdapterError

TOKEN_ENV = "ARGO_TOKEN"
SERVER_ENV = "ARGO_SERVER"
DEFAULT_NAMESPACE = "argo"
TIMEOUT_S = 30.0


class ArgoAccessError(AdapterError):
    """The Argo Server could not be reached, or refused or failed a call."""


def _message(body: bytes) -> str:
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return " ".join(body.decode("utf-8", "replace").split())[:200]
    return " ".join(str(data.get("message") or data.get("error") or "").split())[:300] if isinstance(data, dict) else ""


def normalize_url(server: str) -> str:
    """``server`` as a base URL (``host:port`` alone means https, as the argo CLI does)."""
    text = server.strip().rstrip("/")
    if not text:
        raise ArgoAccessError(f"no Argo Server given: pass --server URL or set ${SERVER_ENV}")
    return text if "://" in text else f"https://{text}"


@dataclass
class ArgoServer:
    """A checked connection to one Argo Server, for one namespace."""

    url: str
    namespace: str = DEFAULT_NAMESPACE
    token: str | None = None
    timeout: float = TIMEOUT_S
    version: str = ""

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = self.token if self.token.startswith("Bearer ") else f"Bearer {self.token}"
        return headers

    def call(self, method: str, path: str, body: Any = None, *, missing_ok: bool = False) -> Any:
        """The JSON answer of ``method path``; None for a 404 when ``missing_ok``."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=self._headers())
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            raise self._refused(method, path, exc.code, exc.reason, exc.read()) from None
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as exc:
            reason = " ".join(str(getattr(exc, "reason", None) or exc).split())[:160]
            raise ArgoAccessError(
                f"cannot reach the Argo Server at {self.url} ({reason}): check --server (scheme, name, port) and that this machine "
                "can reach it (from a laptop: kubectl -n argo port-forward svc/argo-server 2746)"
            ) from None
        try:
            return json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            raise ArgoAccessError(f"the Argo Server at {self.url} answered {method} {path} with something that is not JSON: check --server") from None

    def _refused(self, method: str, path: str, status: int, reason: str, body: bytes) -> ArgoAccessError:
        said = _message(body)
        said = f": {said}" if said else ""
        sent = "a bearer token" if self.token else "no token"
        if status == 401:
            return ArgoAccessError(f"the Argo Server at {self.url} refused the request (401 Unauthorized, sent {sent}){said}; pass --token or set ${TOKEN_ENV} (argo auth token)")
        if status == 403:
            return ArgoAccessError(
                f"the Argo Server at {self.url} denied {method} {path} in namespace {self.namespace} (403 Forbidden, sent {sent}){said}; "
                "check that the token's service account may use this namespace"
            )
        return ArgoAccessError(f"the Argo Server at {self.url} answered {method} {path} with {status} {reason}{said}")

    # --- objects ------------------------------------------------------------------------

    def _upsert(self, collection: str, key: str, doc: Mapping[str, Any]) -> str:
        """Create ``doc`` in ``collection``, or replace the one of the same name; returns ``created`` or ``updated``."""
        name = doc["metadata"]["name"]
        ns = urllib.parse.quote(self.namespace, safe="")
        obj = json.loads(json.dumps(doc))
        obj["metadata"]["namespace"] = self.namespace
        current = self.call("GET", f"/api/v1/{collection}/{ns}/{urllib.parse.quote(name, safe='')}", missing_ok=True)
        if current is None:
            self.call("POST", f"/api/v1/{collection}/{ns}", {"namespace": self.namespace, key: obj})
            return "created"
        obj["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion", "")
        self.call("PUT", f"/api/v1/{collection}/{ns}/{urllib.parse.quote(name, safe='')}", {"namespace": self.namespace, key: obj})
        return "updated"

    def upsert_template(self, doc: Mapping[str, Any]) -> str:
        """Create or replace a WorkflowTemplate."""
        return self._upsert("workflow-templates", "template", doc)

    def upsert_cron(self, doc: Mapping[str, Any]) -> str:
        """Create or replace a CronWorkflow."""
        return self._upsert("cron-workflows", "cronWorkflow", doc)

    def submit(self, template: str, parameters: Mapping[str, str], labels: Mapping[str, str] | None = None) -> dict[str, str]:
        """Start a Workflow from WorkflowTemplate ``template`` with ``parameters``; returns its name and uid."""
        workflow = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"generateName": f"{template}-", "namespace": self.namespace, "labels": dict(labels or {})},
            "spec": {
                "workflowTemplateRef": {"name": template},
                "arguments": {"parameters": [{"name": k, "value": v} for k, v in parameters.items()]},
            },
        }
        ns = urllib.parse.quote(self.namespace, safe="")
        created = self.call("POST", f"/api/v1/workflows/{ns}", {"namespace": self.namespace, "workflow": workflow})
        meta = created.get("metadata") or {}
        return {"name": str(meta.get("name", "")), "uid": str(meta.get("uid", ""))}

    def ui_url(self, workflow: str) -> str:
        return f"{self.url}/workflows/{self.namespace}/{workflow}"


def connect(server: str | None, namespace: str | None = None, token: str | None = None, env: Mapping[str, str] | None = None) -> ArgoServer:
    """An ``ArgoServer`` after one health check (``/api/v1/version``); token from ``token`` or ``$ARGO_TOKEN``."""
    env = os.environ if env is None else env
    conn = ArgoServer(
        url=normalize_url(server or env.get(SERVER_ENV, "")),
        namespace=namespace or DEFAULT_NAMESPACE,
        token=token or env.get(TOKEN_ENV) or None,
    )
    answer = conn.call("GET", "/api/v1/version")
    conn.version = str(answer.get("version", "")) if isinstance(answer, dict) else ""
    if not conn.version:
        raise ArgoAccessError(f"{conn.url} answered /api/v1/version without a version: is --server an Argo Server?")
    return conn
