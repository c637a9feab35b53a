"""Item 4: the train -> save -> evaluate DAG under ``kfp.local`` against the same step functions in-process.

Per repeat, two fresh local stores get the same digits dataset and model
(``tests/pipelines/pipelines_support.make_digits``). One runs the train pipeline under
``kfp.local`` (``pipelines.kfp.local.run_local``, each step a subprocess) in a child
process; the per-task times come from kfp.local's own log lines ("Executing task" /
"finished"). The other runs the steps' functions (``adapter_base.steps``) one
after the other in a fresh child process, each timed. The difference per step is what
running as a pipeline step costs: a new interpreter, imports, the KFP executor, output files.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from .common import REPO, fmt_spread, median, spread

#: kfp.local task name -> the step function it calls
TASKS = {
    "load": "load",
    "train": "train",
    "commit": "commit",
    "evaluate": "evaluate",
    "promote": "promote",
    "finalize": "finalize",
}
STEPS = list(TASKS.values())
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) - INFO - (Executing task|Task) '([^']+)'(?: finished with status (\w+))?")


def _support() -> Any:
    for p in (str(REPO), str(REPO / "tests" / "pipelines")):
        if p not in sys.path:
            sys.path.insert(0, p)
    import pipelines_support

    return pipelines_support


def parse_task_times(log: str) -> dict[str, float]:
    """Seconds per kfp.local task from its "Executing task 'x'" and "Task 'x' finished" lines."""
    started: dict[str, datetime] = {}
    out: dict[str, float] = {}
    for raw in log.splitlines():
        m = _LINE.match(_ANSI.sub("", raw).strip())
        if not m:
            continue
        stamp, what, task, status = m.groups()
        t = datetime.strptime(stamp, "%H:%M:%S.%f")
        if what == "Executing task":
            started[task] = t
        elif status and task in started:
            out[task] = (t - started[task]).total_seconds() % 86400
    return out


def child_kfp(store: str, root: str) -> dict[str, Any]:
    sup = _support()
    from pipelines.kfp.local import run_local

    t = time.perf_counter()
    result = run_local("train", sup.train_arguments(store), pipeline_root=root)
    return {"total_s": time.perf_counter() - t, "version": result.summary["version"], "status": result.summary["status"]}


def child_inprocess(store: str) -> dict[str, Any]:
    sup = _support()
    import logging

    from adapter_base.steps.commit import commit
    from adapter_base.steps.evaluate import evaluate
    from adapter_base.steps.finalize import finalize
    from adapter_base.steps.load import load
    from adapter_base.steps.promote import promote
    from adapter_base.steps.train import train

    logging.basicConfig(level=logging.WARNING)
    args = sup.train_arguments(store)
    run_id = f"inproc-{os.getpid()}"
    times: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - t
        return out

    t0 = time.perf_counter()
    ref = timed("load", lambda: load(args["adapter"], args["model"], store_uri=store, configuration={}, run_id=run_id))
    staged = timed("train", lambda: train(args["adapter"], ref, run_id, dataset=args["dataset"], store_uri=store, configuration={}))
    committed = timed("commit", lambda: commit(staged.ref, store_uri=store))
    outcome = timed(
        "evaluate",
        lambda: evaluate(
            args["adapter"], committed, run_id, dataset=args["dataset"], filters=args["test_filters"], metric=args["metric"], store_uri=store,
            configuration={}, threshold=args["threshold"],
        ),
    )  # fmt: skip
    if outcome.promote:  # promote acts on what evaluate decided and journaled
        timed("promote", lambda: promote(committed, args["alias"], store_uri=store, run_id=run_id))
    timed("finalize", lambda: finalize(args["model"], run_id, "SUCCEEDED", None, store_uri=store))
    return {"total_s": time.perf_counter() - t0, "steps": times}


def _child(mode: str, *extra: str, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    cmd = [sys.executable, "-m", "bench.pipeline_bench", "--child", mode, *extra]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    log = out.stdout + "\n" + out.stderr
    if out.returncode != 0:
        raise RuntimeError(f"pipeline child {mode} failed ({out.returncode}):\n{log[-4000:]}")
    last = [line for line in out.stdout.splitlines() if line.startswith("{")][-1]
    return json.loads(last), log


def run(workdir: Path, *, repeats: int, progress: Callable[[str], None] = print) -> dict[str, Any]:
    sup = _support()
    kfp_runs: list[dict[str, Any]] = []
    inproc_runs: list[dict[str, Any]] = []
    for r in range(repeats):
        base = Path(tempfile.mkdtemp(prefix="pipe-", dir=workdir))
        env = {**os.environ, "MODEL_ADAPTER_HOME": str(base / "home")}
        stores = {m: str(base / m / "store") for m in ("kfp", "inproc")}
        for s in stores.values():
            sup.make_digits(s)
        order = ["kfp", "inproc"] if r % 2 == 0 else ["inproc", "kfp"]
        for mode in order:
            if mode == "kfp":
                res, log = _child("kfp", "--store", stores["kfp"], "--root", str(base / "kfp-root"), env=env)
                res["tasks"] = {TASKS[k]: v for k, v in parse_task_times(log).items() if k in TASKS}
                kfp_runs.append(res)
            else:
                res, _ = _child("inproc", "--store", stores["inproc"], env=env)
                inproc_runs.append(res)
    per_step: dict[str, Any] = {}
    for step in STEPS:
        k = [x["tasks"][step] for x in kfp_runs if step in x["tasks"]]
        i = [x["steps"][step] for x in inproc_runs if step in x["steps"]]
        if k and i:  # seconds: median with the min-max of the repeats
            per_step[step] = {"kfp_local_s": spread(k, 3), "in_process_s": spread(i, 3), "overhead_s": round(median(k) - median(i), 3)}
    steps_run = list(per_step)
    kfp_total = median([x["total_s"] for x in kfp_runs])
    inproc_total = median([x["total_s"] for x in inproc_runs])
    out = {
        "repeats": repeats,
        "dataset_items": sup.LIMIT,
        "epochs": sup.EPOCHS,
        "per_step": per_step,
        "kfp_local_total_s": spread([x["total_s"] for x in kfp_runs], 3),
        "in_process_total_s": spread([x["total_s"] for x in inproc_runs], 3),
        "overhead_per_step_s": round((kfp_total - inproc_total) / len(steps_run), 3),
        "max_step_overhead_s": round(max(per_step[s]["overhead_s"] for s in steps_run), 3),
        "runs": {"kfp_local": kfp_runs, "in_process": inproc_runs},
    }
    progress(
        f"  DAG: kfp.local {fmt_spread(out['kfp_local_total_s'], '.2f')} s vs in-process {fmt_spread(out['in_process_total_s'], '.2f')} s "
        f"over {len(steps_run)} steps: "
        f"{out['overhead_per_step_s']:.2f}s per step (max {out['max_step_overhead_s']:.2f}s); "
        + ", ".join(f"{s} +{v['overhead_s']:.2f}" for s, v in per_step.items())
    )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", choices=["kfp", "inproc"], required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--root")
    a = ap.parse_args(argv)
    res = child_kfp(a.store, a.root) if a.child == "kfp" else child_inprocess(a.store)
    sys.stdout.flush()
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
