"""Render the bench JSON as Markdown tables, with each target marked met or missed.

``docs/benchmarks.md`` keeps hand-written text around the generated part: only what lies
between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` is replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

TARGETS = {
    "predict_vs_slowest_stage": 1.15,  # predict_items time <= 1.15 x max(io_only, model_only, write_only)
    "speedup_balanced": 1.5,  # batch_at_a_time / predict_items >= 1.5 in the balanced setting
    "artifact_vs_plain": 0.9,  # ours >= 0.9 x the plain client's throughput
    "rss_ratio": 1.2,  # peak RSS at the large N <= 1.2 x at the small N
    "dag_overhead_per_step_s": 0.6,
}
MEASURES = ("io_only", "model_only", "write_only", "batch_at_a_time", "predict_items")


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target and case: the figure, the limit and whether it is met."""
    rows: list[dict[str, Any]] = []
    for backend, data in (results.get("predict") or {}).items():
        for setting, s in data["settings"].items():
            rows.append(
                {
                    "target": "predict_items <= 1.15 x slowest stage",
                    "case": f"{backend} / {setting}",
                    "value": s["ratio_vs_slowest_stage"],
                    "limit": TARGETS["predict_vs_slowest_stage"],
                    "met": s["ratio_vs_slowest_stage"] <= TARGETS["predict_vs_slowest_stage"],
                }
            )
            if "balanced" in setting:
                rows.append(
                    {
                        "target": "predict_items >= 1.5 x faster than batch_at_a_time (balanced)",
                        "case": f"{backend} / {setting}",
                        "value": s["speedup_vs_batch_at_a_time"],
                        "limit": TARGETS["speedup_balanced"],
                        "met": s["speedup_vs_batch_at_a_time"] >= TARGETS["speedup_balanced"],
                    }
                )
    for shape, a in (results.get("artifacts") or {}).items():
        for what, key in (("save_to_model", "save_vs_plain"), ("load_from_model", "load_vs_plain")):
            rows.append(
                {
                    "target": "artifact transfer >= 0.9 x plain minio",
                    "case": f"{what} / {shape}",
                    "value": a[key],
                    "limit": TARGETS["artifact_vs_plain"],
                    "met": a[key] >= TARGETS["artifact_vs_plain"],
                }
            )
    for backend, m in (results.get("memory") or {}).items():
        rows.append(
            {
                "target": "peak RSS at large N <= 1.2 x at small N",
                "case": backend,
                "value": m["ratio_peak"],
                "limit": TARGETS["rss_ratio"],
                "met": m["ratio_peak"] <= TARGETS["rss_ratio"],
            }
        )
    p = results.get("pipeline")
    if p:
        rows.append(
            {
                "target": "kfp.local overhead <= 0.6 s per step",
                "case": "mean over the DAG's steps",
                "value": p["overhead_per_step_s"],
                "limit": TARGETS["dag_overhead_per_step_s"],
                "met": p["overhead_per_step_s"] <= TARGETS["dag_overhead_per_step_s"],
            }
        )
        rows.append(
            {
                "target": "kfp.local overhead <= 0.6 s per step",
                "case": "worst step",
                "value": p["max_step_overhead_s"],
                "limit": TARGETS["dag_overhead_per_step_s"],
                "met": p["max_step_overhead_s"] <= TARGETS["dag_overhead_per_step_s"],
            }
        )
    return rows


def render(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    cfg = results.get("config", {})
    out: list[str] = []
    out.append(
        f"Run {results.get('started_at', '?')} on {m.get('cpus', '?')} CPUs ({m.get('cpu_model', '?')}), "
        f"{m.get('memory_gib', '?')} GiB; load average {m.get('loadavg_at_start')} at the start, "
        f"{results.get('loadavg_at_end')} at the end; took {results.get('duration_s', 0):.0f} s. "
        f"Command: `{cfg.get('command', 'python -m bench')}`. Medians of {cfg.get('repeats', '?')} interleaved repeats."
    )
    out.append("")
    rows = evaluate_targets(results)
    if rows:
        out += ["### Targets", "", "| target | case | figure | limit | |", "|---|---|---:|---:|---|"]
        for r in rows:
            out.append(f"| {r['target']} | {r['case']} | {r['value']:.3g} | {r['limit']:g} | {_mark(r['met'])} |")
        out.append("")

    pred = results.get("predict") or {}
    if pred:
        out += ["### 1. Streaming prediction (items per second; higher is better)", ""]
        any_data = next(iter(pred.values()))
        out.append(
            f"{any_data['n']} items of 256x256 RGB PNG (~120 KB, ~1.2 ms to decode), batch size {any_data['batch_size']}; "
            "the NumPy model's work per item is set per store from a calibration: ~3x the slowest I/O stage (model-bound), "
            "~1x (balanced), ~0.3x (I/O-bound); `device_balanced` is the balanced cost spent waiting on a device "
            "(GIL and CPU free, as with a GPU) instead of NumPy work. `vs slowest` = predict_items time / max(io_only, model_only, write_only) time; "
            "`speedup` = batch_at_a_time time / predict_items time; `machine bound` = max(slowest stage, CPU seconds of the "
            "three stages alone (this process + the S3 server) / the CPUs left by other processes during the predict_items "
            "runs), and `vs bound` = predict_items time / that; `others` = CPUs that other processes on this shared machine "
            "kept busy meanwhile."
        )
        out.append("")
        out.append("| store | setting | model cost | " + " | ".join(MEASURES) + " | vs slowest | speedup | vs bound | others |")
        out.append("|---|---|---:|" + "---:|" * len(MEASURES) + "---:|---:|---:|---:|")
        for backend, data in pred.items():
            for setting, s in data["settings"].items():
                ips = s["items_per_s"]
                cost = f"device {s['device_ms_per_item']:.2f} ms/item" if s.get("model") == "device" else f"NumPy, {s['work']} layers"
                out.append(
                    f"| {backend} | {setting} | {cost} | "
                    + " | ".join(f"{ips[k]:,.0f}" for k in MEASURES)
                    + f" | {s['ratio_vs_slowest_stage']:.2f} | {s['speedup_vs_batch_at_a_time']:.2f} | {s['ratio_vs_machine_bound']:.2f} | {s.get('other_load_cores', 0):.1f} |"
                )
        out.append("")
        out.append("CPU seconds per run (this process + store server), medians:")
        out.append("")
        out.append("| store | setting | " + " | ".join(MEASURES) + " |")
        out.append("|---|---|" + "---:|" * len(MEASURES))
        for backend, data in pred.items():
            for setting, s in data["settings"].items():
                out.append(f"| {backend} | {setting} | " + " | ".join(f"{s['median_cpu_s'][k]:.2f}" for k in MEASURES) + " |")
        out.append("")

    mem = results.get("memory") or {}
    if mem:
        out += ["### 2. Peak memory of predict_dataset", ""]
        out.append("| store | N | peak RSS (MiB) | RSS before the run (MiB) | growth during the run (MiB) | items/s |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for backend, data in mem.items():
            for n, row in data["sizes"].items():
                out.append(
                    f"| {backend} | {int(n):,} | {row['peak_rss_mib']:.1f} | {row['baseline_rss_mib']:.1f} | {row['growth_mib']:.1f} | {row['items_per_s']:,.0f} |"
                )
            out.append(f"| {backend} | ratio | {data['ratio_peak']:.3f} | | | |")
        out.append("")

    art = results.get("artifacts") or {}
    if art:
        out += ["### 3. Artifact transfer against the plain minio client (MiB/s; higher is better)", ""]
        out.append("| shape | files | MiB | save_to_model | plain upload | ratio | load_from_model | plain download | ratio | plain client settings |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for shape, a in art.items():
            mb = a["mib_per_s"]
            setting = ", ".join(f"{k}={v}" for k, v in a["plain_upload_setting"].items())
            out.append(
                f"| {shape} | {a['files']:,} | {a['bytes'] / 2**20:,.0f} | {mb['ours_save']:.1f} | {mb['plain_upload']:.1f} | {a['save_vs_plain']:.2f} | "
                f"{mb['ours_load']:.1f} | {mb['plain_download']:.1f} | {a['load_vs_plain']:.2f} | upload {setting}; download threads={a['plain_download_setting']['threads']} |"
            )
        out.append("")
        out.append("Ours computes (save) and verifies (load) a SHA-256 digest of every file; the plain client does neither.")
        out.append("")

    p = results.get("pipeline")
    if p:
        out += ["### 4. Pipeline overhead: train DAG under kfp.local vs the same steps in-process (seconds)", ""]
        out.append("| step | kfp.local | in-process | overhead |")
        out.append("|---|---:|---:|---:|")
        for step, v in p["per_step"].items():
            out.append(f"| {step} | {v['kfp_local_s']:.2f} | {v['in_process_s']:.2f} | {v['overhead_s']:.2f} |")
        out.append(f"| **DAG** | {p['kfp_local_total_s']:.2f} | {p['in_process_total_s']:.2f} | {p['overhead_per_step_s']:.2f} per step |")
        out.append("")

    gpu = results.get("torch_gpu")
    if gpu:
        out += ["### 5. PyTorch example: predict_items vs a plain PyTorch loop", ""]
        out.append("| device | N | batch | plain loop items/s | predict_items items/s | ratio |")
        out.append("|---|---:|---:|---:|---:|---:|")
        out.append(
            f"| {gpu['device']} | {gpu['n']} | {gpu['batch_size']} | {gpu['items_per_s']['plain_loop']:,.0f} | "
            f"{gpu['items_per_s']['predict_items']:,.0f} | {gpu['ratio']:.2f} |"
        )
        out.append("")
    return "\n".join(out)


def write_markdown(path: Path, results: dict[str, Any], template: str | None = None) -> None:
    """Replace the generated part of ``path`` (or create it from ``template``)."""
    body = f"{BEGIN}\n{render(results)}\n{END}"
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            path.write_text(head + body + tail)
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((template or "# Benchmarks\n\n{body}\n").replace("{body}", body))


def rebuild(results: dict[str, Any]) -> dict[str, Any]:
    """Recompute the prediction summaries and targets from the stored samples (after a change to
    how they are summarised; no measurement is redone)."""
    from .common import Sample
    from .predict_bench import summarize

    for data in (results.get("predict") or {}).values():
        for name, s in data["settings"].items():
            samples = {m: [Sample(**x) for x in v] for m, v in s["samples"].items()}
            new = summarize(samples, data["n"], work=s["work"], model_factor=s["model_factor"], ncpu=results.get("machine", {}).get("cpus"))
            new.update(model=s.get("model", "numpy"), device_ms_per_item=s.get("device_ms_per_item", 0.0))
            data["settings"][name] = new
    results["targets"] = evaluate_targets(results)
    return results


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.report [JSON] [MARKDOWN]``: re-render the Markdown from a results file."""
    import argparse
    import json

    from .common import REPO

    ap = argparse.ArgumentParser(prog="python -m bench.report")
    ap.add_argument("json", nargs="?", default=str(REPO / "bench/results/latest.json"))
    ap.add_argument("markdown", nargs="?", default=str(REPO / "docs/benchmarks.md"))
    ap.add_argument("--rebuild", action="store_true", help="recompute the prediction summaries from the stored samples")
    a = ap.parse_args(argv)
    results = json.loads(Path(a.json).read_text())
    if a.rebuild:
        results = rebuild(results)
        Path(a.json).write_text(json.dumps(results, indent=1) + "\n")
    write_markdown(Path(a.markdown), results)
    print(f"wrote {a.markdown}")


if __name__ == "__main__":
    main()
