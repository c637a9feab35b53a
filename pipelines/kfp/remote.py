"""Talking to a KFP API: connect (auth, namespace, backend floor), submit runs, keep one recurring run per name, list runs.

``connect`` checks the API once (reachable? credentials accepted? multi-user? backend
version?) and builds a ``kfp.Client`` with the credentials of where it runs:

* a bearer token (``--token`` or ``$MODEL_ADAPTER_KFP_TOKEN``): a laptop talking to a
  multi-user Kubeflow;
* the projected service-account token at ``$KF_PIPELINES_SA_TOKEN_PATH`` (default
  ``/var/run/secrets/kubeflow/pipelines/token``, audience ``pipelines.kubeflow.org``): a pod
  in a profile namespace; it is re-read on every request, as the kubelet rotates it;
* nothing: a standalone KFP.

Unreachable hosts and refused requests become one ``KFPAccessError`` line naming the host
and what to check (``api_errors``). Tokens never appear in messages. Store credentials
never travel this way: steps read them from a Kubernetes Secret.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from adapter_base.errors import AdapterError, ValidationError
from adapter_base.secrets import register_secret

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "model-adapter"
PAGE_SIZE = 100

#: Where a bearer token for the KFP API may come from instead of ``--token``.
TOKEN_ENV = "MODEL_ADAPTER_KFP_TOKEN"
#: The projected service-account token of a pod (kfp.Client and the KFP backend read the same names).
SA_TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
SA_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"
#: The audience the KFP API server reviews tokens for by default (backend/src/apiserver/common/const.go); a server
#: may be configured for another (``TOKEN_REVIEW_AUDIENCE``, backend/src/apiserver/common/config.go).
TOKEN_AUDIENCE = "pipelines.kubeflow.org"
#: The ClusterRole a profile namespace's accounts need to submit runs (KFP's multi-user manifests).
EDIT_CLUSTER_ROLE = "kubeflow-pipelines-edit"

#: Oldest KFP backend the compiled pipelines run on (docs/pipelines.md, "Backend compatibility").
MIN_BACKEND = (2, 14)
#: Backend from which exit handlers see the final state of the DAG they wrap (kubeflow/pipelines #13322).
RECOMMENDED_BACKEND = (2, 17)
BACKEND_FLOOR_HELP = (
    f"Needs a KFP backend >= {MIN_BACKEND[0]}.{MIN_BACKEND[1]} (PipelineTaskFinalStatus input, artifact dsl.Collected, "
    f"retries with backoff of steps inside loops and exit handlers); {RECOMMENDED_BACKEND[0]}.{RECOMMENDED_BACKEND[1]} or later recommended (exit handlers "
    "see the final DAG state, unless a condition branch was skipped). An older backend is refused when it reports its version. See docs/pipelines.md."
)

PROBE_TIMEOUT_S = 15.0


class KFPAccessError(AdapterError):
    """The KFP API cannot be reached, refused the request, or cannot run these pipelines."""


# --- credentials ------------------------------------------------------------------------


@dataclass(frozen=True)
class Auth:
    """How requests to the KFP API authenticate: ``bearer`` token, ``service-account`` token file, or ``none``."""

    kind: str
    source: str = ""
    token: str | None = field(default=None, repr=False)
    path: str | None = None

    def describe(self) -> str:
        """Where the credentials come from, for messages (never the token itself)."""
        if self.kind == "bearer":
            return f"a bearer token from {self.source}"
        if self.kind == "service-account":
            return f"the service-account token file {self.path}"
        return "no credentials"

    def header(self) -> dict[str, str]:
        """The ``Authorization`` header (read from the file each time: the kubelet rotates it)."""
        if self.kind == "bearer" and self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.kind == "service-account" and self.path:
            return {"Authorization": f"Bearer {_read_token_file(self.path)}"}
        return {}

    def kfp_client_kwargs(self) -> dict[str, Any]:
        """The ``kfp.Client`` arguments that send these credentials."""
        if self.kind == "bearer":
            return {"existing_token": self.token}
        if self.kind == "service-account":
            from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

            return {"credentials": ServiceAccountTokenVolumeCredentials(path=self.path)}
        return {}


def _read_token_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as exc:
        raise KFPAccessError(f"cannot read the service-account token {path} ({exc.strerror or exc}): check the projected token volume") from None
    if not token:
        raise KFPAccessError(f"the service-account token file {path} is empty: check the projected token volume")
    return token


def resolve_auth(token: str | None = None, env: Mapping[str, str] | None = None) -> Auth:
    """The credentials to use: ``token``, else ``$MODEL_ADAPTER_KFP_TOKEN``, else the projected token file, else none.

    ``$KF_PIPELINES_SA_TOKEN_PATH`` names the token file; set but missing is an error.
    Without it, the default path is used when it exists (a pod with the projected volume).
    """
    env = os.environ if env is None else env
    if token is not None and not token.strip():
        raise ValidationError("pipeline", "--token", "is empty")
    if token:
        register_secret(token.strip())
        return Auth("bearer", source="--token", token=token.strip())
    if env.get(TOKEN_ENV, "").strip():
        return Auth("bearer", source=f"${TOKEN_ENV}", token=env[TOKEN_ENV].strip())
    path = env.get(SA_TOKEN_ENV, "")
    if path:
        if not os.path.isfile(path):
            raise ValidationError(
                "pipeline", SA_TOKEN_ENV, f"{path} does not exist: mount the projected service-account token there "
                f"(audience {TOKEN_AUDIENCE}) or unset {SA_TOKEN_ENV}"
            )
        return Auth("service-account", source=f"${SA_TOKEN_ENV}", path=path)
    if os.path.isfile(SA_TOKEN_PATH):
        return Auth("service-account", source="the default path", path=SA_TOKEN_PATH)
    return Auth("none")


# --- errors -----------------------------------------------------------------------------


def _server_message(body: Any) -> str:
    """The ``message`` of a KFP (gRPC-gateway) error body, or its first line; short."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = str(body or "").strip()
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            text = str(data.get("message") or data.get("error") or "")
    except ValueError:
        pass
    text = " ".join(text.split())
    return text[:200]


def refused(host: str, status: int, reason: str, body: Any, namespace: str | None, auth: Auth) -> KFPAccessError:
    """The one-line error for an HTTP error answer of the KFP API."""
    said = _server_message(body)
    said = f": {said}" if said else ""
    where = f" in namespace {namespace}" if namespace else ""
    if status == 401 or 300 <= status < 400:
        what = "redirected to a login page" if status < 400 else "401 Unauthorized"
        if auth.kind == "none":
            check = (
                f"a multi-user Kubeflow needs a bearer token: pass --token or set ${TOKEN_ENV}, or in a pod mount the "
                f"projected service-account token (audience {TOKEN_AUDIENCE}) at {SA_TOKEN_PATH} or ${SA_TOKEN_ENV}"
            )
        else:
            check = f"check that the token is valid, not expired, and issued for audience {TOKEN_AUDIENCE}"
        return KFPAccessError(f"the KFP API at {host} refused the request ({what}, sent {auth.describe()}){said}; {check}")
    if status == 403:
        return KFPAccessError(
            f"the KFP API at {host} denied access{where} (403 Forbidden, sent {auth.describe()}){said}; check that "
            f"--namespace is a profile namespace this identity may use and that it is bound to ClusterRole "
            f"{EDIT_CLUSTER_ROLE} there (RoleBinding)"
        )
    if status == 404:
        return KFPAccessError(f"the KFP API at {host} answered 404 Not Found{said}: check that --host is the KFP API (ml-pipeline, port 8888) and the object exists")
    return KFPAccessError(f"the KFP API at {host} answered {status} {reason}{said}")


def unreachable(host: str, reason: Any) -> KFPAccessError:
    """The one-line error for a KFP API that does not answer."""
    reason = getattr(reason, "reason", None) or reason
    text = " ".join(str(reason).split())
    text = re.sub(r"^<[^>]*>:\s*", "", text)[:160]
    return KFPAccessError(
        f"cannot reach the KFP API at {host} ({text}): check --host (scheme, name, port) and that this machine can reach it "
        "(in a cluster: http://ml-pipeline.kubeflow.svc.cluster.local:8888; from a laptop: "
        "kubectl -n kubeflow port-forward svc/ml-pipeline 8888)"
    )


@contextlib.contextmanager
def api_errors(host: str, namespace: str | None = None, auth: Auth | None = None) -> Iterator[None]:
    """Turn what ``kfp.Client`` raises for an unreachable or refusing API into one ``KFPAccessError`` line."""
    import urllib3
    from kfp_server_api.exceptions import ApiException

    auth = auth or Auth("none")
    try:
        yield
    except ApiException as exc:
        raise refused(host, int(exc.status or 0), str(exc.reason or ""), exc.body, namespace, auth) from None
    except (urllib3.exceptions.HTTPError, ConnectionError, socket.timeout) as exc:
        raise unreachable(host, getattr(exc, "reason", None) or exc) from None


# --- connecting -------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendInfo:
    """What the API's healthz says: multi-user mode and the release (``tag_name``, ``unknown`` for dev builds)."""

    multi_user: bool
    tag_name: str

    @property
    def version(self) -> tuple[int, int] | None:
        match = re.match(r"v?(\d+)\.(\d+)", self.tag_name or "")
        return (int(match.group(1)), int(match.group(2))) if match else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None


def probe(host: str, auth: Auth, namespace: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> BackendInfo:
    """``GET /apis/v2beta1/healthz`` once, with ``auth``; a clear ``KFPAccessError`` if it fails."""
    url = f"{host.rstrip('/')}/apis/v2beta1/healthz"
    request = urllib.request.Request(url, headers={"Accept": "application/json", **auth.header()})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise refused(host, exc.code, str(exc.reason), exc.read(), namespace, auth) from None
    except (urllib.error.URLError, OSError) as exc:
        raise unreachable(host, getattr(exc, "reason", None) or exc) from None
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError:
        raise KFPAccessError(f"{url} did not answer like a KFP API (no JSON): check that --host is the KFP API (ml-pipeline, port 8888)") from None
    return BackendInfo(multi_user=bool(data.get("multi_user")), tag_name=str(data.get("tag_name") or "unknown"))


@dataclass
class Connection:
    """A ``kfp.Client`` with what ``connect`` learned: use ``errors()`` around its calls."""

    client: Any
    host: str
    namespace: str | None
    auth: Auth
    backend: BackendInfo

    def errors(self) -> contextlib.AbstractContextManager[None]:
        return api_errors(self.host, self.namespace, self.auth)


def check_backend_floor(host: str, backend: BackendInfo, floor: tuple[int, int] = MIN_BACKEND) -> None:
    """Refuse a backend that reports a release older than ``floor``; a dev build (no version) passes."""
    version = backend.version
    if version is not None and version < floor:
        raise KFPAccessError(
            f"the KFP backend at {host} is {backend.tag_name}; these pipelines need >= {floor[0]}.{floor[1]} "
            "(see docs/pipelines.md, Backend compatibility): upgrade KFP"
        )
    if version is not None and version < RECOMMENDED_BACKEND:
        log.warning(
            "KFP backend %s at %s: exit handlers may see RUNNING instead of the final state (fixed in %d.%d, kubeflow/pipelines #13322, "
            "except when a condition branch was skipped); the exit step then decides from the run's journal",
            backend.tag_name, host, *RECOMMENDED_BACKEND,
        )


def connect(
    host: str,
    namespace: str | None = None,
    token: str | None = None,
    *,
    min_backend: tuple[int, int] | None = None,
    env: Mapping[str, str] | None = None,
) -> Connection:
    """Check the KFP API at ``host`` and return a client sending the right credentials.

    A multi-user API needs ``namespace`` (the profile namespace); ``min_backend``, when
    given, refuses an older backend before anything is created.
    """
    if not host or not re.match(r"https?://[^/\s]+", host):
        raise ValidationError("pipeline", "host", f"a KFP API URL is needed (--host http(s)://HOST:PORT), got {host!r}")
    host = host.rstrip("/")
    namespace = namespace or None
    auth = resolve_auth(token, env)
    backend = probe(host, auth, namespace)
    if backend.multi_user and not namespace:
        raise KFPAccessError(f"the KFP API at {host} is multi-user (Kubeflow profiles): pass --namespace with your profile namespace")
    if min_backend is not None:
        check_backend_floor(host, backend, min_backend)
    import kfp

    with api_errors(host, namespace, auth), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")
        client = kfp.Client(host=host, namespace=namespace, **auth.kfp_client_kwargs())
    return Connection(client=client, host=host, namespace=namespace, auth=auth, backend=backend)


def run_url(host: str, run_id: str) -> str:
    """The KFP UI address of a run."""
    return f"{host.rstrip('/')}/#/runs/details/{run_id}"


def run_name(kind: str, model: str) -> str:
    """A readable, unique-enough run name: ``<kind>-<model>-<UTC timestamp>``."""
    return f"{kind}-{model}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"


@dataclass
class SubmitResult:
    run_id: str
    url: str
    run_name: str
    experiment: str
    state: str | None = None


def submit_run(
    client: Any,
    package_path: str,
    arguments: Mapping[str, Any],
    *,
    host: str,
    run_name: str,
    experiment: str = DEFAULT_EXPERIMENT,
    namespace: str | None = None,
    pipeline_root: str | None = None,
) -> SubmitResult:
    """Create a run of a compiled pipeline; returns its id and UI address."""
    result = client.create_run_from_pipeline_package(
        package_path,
        arguments=dict(arguments),
        run_name=run_name,
        experiment_name=experiment,
        namespace=namespace,
        pipeline_root=pipeline_root or None,
    )
    return SubmitResult(run_id=result.run_id, url=run_url(host, result.run_id), run_name=run_name, experiment=experiment)


#: Run states after which nothing changes (kfp.Client's own wait misses CANCELED).
FINAL_RUN_STATES = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"})


def wait_for_run(client: Any, run_id: str, timeout_s: float, max_poll_s: float = 10.0) -> str:
    """Wait until the run ends (or ``timeout_s``); returns its final state, e.g. ``SUCCEEDED``.

    Polls after 0.5 s, then twice as long each time up to ``max_poll_s``.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.5
    while True:
        state = str(getattr(client.get_run(run_id), "state", None) or "UNKNOWN").upper()
        if state in FINAL_RUN_STATES:
            return state
        if time.monotonic() + pause > deadline:
            raise TimeoutError(f"run {run_id} is still {state} after {timeout_s:g}s (--timeout)")
        time.sleep(pause)
        pause = min(pause * 2, max_poll_s)


def normalize_cron(expr: str) -> str:
    """KFP's 6-field cron (seconds first): a 5-field expression gets ``0`` seconds; ``@daily`` etc. pass."""
    expr = " ".join((expr or "").split())
    if expr.startswith("@"):
        return expr
    n = len(expr.split(" ")) if expr else 0
    if n == 5:
        return "0 " + expr
    if n == 6:
        return expr
    raise ValidationError("schedule", "cron", f"expected 5 or 6 cron fields (or @daily, @every 1h), got {expr!r}")


def _pages(list_fn: Any, items_attr: str, **kwargs: Any) -> Iterator[Any]:
    token = ""
    while True:
        page = list_fn(page_token=token, page_size=PAGE_SIZE, **kwargs)
        yield from getattr(page, items_attr, None) or []
        token = getattr(page, "next_page_token", None) or ""
        if not token:
            return


def find_recurring_runs(client: Any, name: str, namespace: str | None = None) -> list[Any]:
    """Every recurring run whose display name is exactly ``name``."""
    return [r for r in _pages(client.list_recurring_runs, "recurring_runs", namespace=namespace) if getattr(r, "display_name", None) == name]


def _experiment_id(client: Any, experiment: str, namespace: str | None) -> str | None:
    """The id of ``experiment``, or None when it does not exist yet (then it has no runs)."""
    for exp in _pages(client.list_experiments, "experiments", namespace=namespace):
        if getattr(exp, "display_name", None) == experiment:
            return exp.experiment_id
    return None


def _runs(client: Any, experiment: str, namespace: str | None) -> Iterator[Any]:
    experiment_id = _experiment_id(client, experiment, namespace)
    if experiment_id is None:
        return iter(())
    return _pages(client.list_runs, "runs", experiment_id=experiment_id, namespace=namespace)


def find_run_named(client: Any, name: str, *, experiment: str, namespace: str | None = None) -> Any | None:
    """The run of ``experiment`` whose display name is ``name``, or None."""
    return next((r for r in _runs(client, experiment, namespace) if getattr(r, "display_name", None) == name), None)


def find_active_run(client: Any, kind: str, model: str, *, experiment: str, namespace: str | None = None) -> Any | None:
    """A run of pipeline ``kind`` on ``model`` in ``experiment`` that has not ended, or None.

    A run of pipeline ``kind``: its name starts with ``<kind>-`` (``run_name`` and the CronJobs name
    them so) and its ``model`` parameter is ``model``.
    """
    for run in _runs(client, experiment, namespace):
        state = str(getattr(run, "state", "") or "").upper()
        if state in FINAL_RUN_STATES or not str(getattr(run, "display_name", "") or "").startswith(f"{kind}-"):
            continue
        params = getattr(getattr(run, "runtime_config", None), "parameters", None) or {}
        if str(params.get("model", "")) == model:
            return run
    return None


@dataclass
class ScheduleResult:
    action: str  # created | updated
    recurring_run_id: str
    name: str
    cron: str
    max_concurrency: int
    experiment_id: str
    replaced: list[str] = field(default_factory=list)


def upsert_recurring_run(
    client: Any,
    *,
    name: str,
    package_path: str,
    params: Mapping[str, Any],
    cron: str,
    experiment: str = DEFAULT_EXPERIMENT,
    max_concurrency: int = 1,
    namespace: str | None = None,
    description: str | None = None,
) -> ScheduleResult:
    """Create the recurring run ``name``, or replace the one(s) of that name: never two of them.

    KFP has no update of a recurring run, so an update creates the new one
    *disabled*, deletes every old one of that name, then enables the new one: at no
    point do two run on schedule, and if creating fails the old one is untouched.
    ``max_concurrency`` (default 1) keeps a slow run from overlapping the next.
    """
    if not name:
        raise ValidationError("schedule", "name", "a recurring run needs a name (--name)")
    if max_concurrency < 1:
        raise ValidationError("schedule", "max_concurrency", f"must be >= 1, got {max_concurrency}")
    cron = normalize_cron(cron)
    exp = client.create_experiment(experiment, namespace=namespace)  # gets it when it exists
    existing = find_recurring_runs(client, name, namespace)
    created = client.create_recurring_run(
        experiment_id=exp.experiment_id,
        job_name=name,
        description=description,
        cron_expression=cron,
        max_concurrency=max_concurrency,
        no_catchup=True,
        params=dict(params),
        pipeline_package_path=package_path,
        enabled=not existing,
    )
    new_id = created.recurring_run_id
    replaced = []
    for old in existing:
        if old.recurring_run_id == new_id:
            continue
        client.delete_recurring_run(old.recurring_run_id)
        replaced.append(old.recurring_run_id)
    if existing:
        client.enable_recurring_run(new_id)
    log.info("%s recurring run %s (%s), cron %r", "updated" if existing else "created", name, new_id, cron)
    return ScheduleResult(
        action="updated" if existing else "created",
        recurring_run_id=new_id,
        name=name,
        cron=cron,
        max_concurrency=max_concurrency,
        experiment_id=exp.experiment_id,
        replaced=replaced,
    )


def list_runs(client: Any, *, experiment: str | None = None, namespace: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs (newest first): id, name, state, created / finished times."""
    experiment_id = None
    if experiment:
        experiment_id = client.get_experiment(experiment_name=experiment, namespace=namespace).experiment_id
    page = client.list_runs(page_size=max(1, limit), sort_by="created_at desc", experiment_id=experiment_id, namespace=namespace)
    out = []
    for r in getattr(page, "runs", None) or []:
        out.append(
            {
                "run_id": r.run_id,
                "name": r.display_name,
                "state": str(r.state) if r.state is not None else "",
                "created_at": _iso(r.created_at),
                "finished_at": _iso(getattr(r, "finished_at", None)),
            }
        )
    return out


def _iso(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.year < 1971:  # KFP reports "not finished" as the epoch
            return ""
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)

