"""Render the bench JSON as Markdown tables, with each target marked met or missed.

``docs/benchmarks.md`` keeps hand-written text around the generated part: only what lies
between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` is replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import figure, fmt_spread, rate_spread, spread

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

TARGETS = {
    "artifact_vs_plain": 0.9,  # ours >= 0.9 x the plain client's throughput
    "dag_overhead_per_step_s": 0.6,
    "gpu_vs_torch_loop": 0.9,  # predict_items >= 0.9 x the raw torch loop on a GPU
}


def _mark(ok: bool | None) -> str:
    return "not run" if ok is None else "met" if ok else "**missed**"


def _ips(s: dict[str, Any], m: str) -> str:
    """``m``'s items/s as a target's detail: ``557/s (540-570)``."""
    v = s.get("items_per_s", {}).get(m)
    if v is None:
        return "-"
    spread_shown = isinstance(v, dict) and v["min"] != v["max"]
    return f"{figure(v):,.0f}/s" + (f" ({v['min']:,.0f}-{v['max']:,.0f})" if spread_shown else "")


def _cell(s: dict[str, Any], key: str, m: str, fmt: str = ",.0f") -> str:
    """A table cell: ``s[key][m]`` as median (min-max), ``-`` where not measured."""
    v = s.get(key, {}).get(m)
    return "-" if v is None else fmt_spread(v, fmt)


def memory_spreads(n: int, row: dict[str, Any]) -> tuple[Any, Any]:
    """Peak RSS and items/s of one memory size: median (min-max) over its runs where they were kept."""
    runs = row.get("runs") or []
    if not runs:
        return row["peak_rss_mib"], row["items_per_s"]
    return spread([r["peak_rss_mib"] for r in runs]), rate_spread(n, [r["wall_s"] for r in runs])


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target and case: the figure (with the absolute items/s behind a ratio), the limit and whether it is met."""
    from .latency_bench import MAX_REQUESTS_PER_ITEM, MIN_FRACTION_OF_BOUND
    from .memory_bench import RSS_RATIO_TARGET
    from .predict_bench import TARGETS as PREDICT_TARGETS

    rows: list[dict[str, Any]] = []
    for backend, data in (results.get("predict") or {}).items():
        for baseline, (limit, only) in PREDICT_TARGETS.items():
            for setting, s in data["settings"].items():
                if only and setting != only:
                    continue
                ratio = s.get("ratio", {}).get(baseline)
                if ratio is None:
                    why = data.get("ray_data", "not run") if baseline == "ray_data" else "not run"
                    rows.append({"target": f"predict_dataset >= {limit:g} x {baseline}", "case": f"{backend} / {setting}", "value": None, "limit": limit, "met": None, "detail": why})
                    continue
                rows.append(
                    {
                        "target": f"predict_dataset >= {limit:g} x {baseline}",
                        "case": f"{backend} / {setting}",
                        "value": ratio,
                        "limit": limit,
                        "met": ratio >= limit,
                        "detail": f"{_ips(s, 'predict_dataset')} vs {_ips(s, baseline)}",
                    }
                )
    if results.get("user_compare"):
        from .user_compare import targets as user_targets

        rows += user_targets(results["user_compare"])
    gpu = results.get("gpu")
    if gpu is not None:
        t = results.get("torch_gpu") or {}
        on_gpu = bool(gpu.get("cuda")) and "cuda" in str(t.get("device", ""))
        rows.append(
            {
                "target": "GPU: predict_items >= 0.9 x the raw torch loop",
                "case": str(t.get("device")) if on_gpu else "no GPU",
                "value": t.get("ratio") if on_gpu else None,
                "limit": TARGETS["gpu_vs_torch_loop"],
                "met": (t["ratio"] >= TARGETS["gpu_vs_torch_loop"]) if on_gpu else None,
                "detail": gpu["status"],
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
                "target": f"peak RSS at large N <= {RSS_RATIO_TARGET:g} x at small N",
                "case": backend,
                "value": m["ratio_peak"],
                "limit": RSS_RATIO_TARGET,
                "met": m["ratio_peak"] <= RSS_RATIO_TARGET,
            }
        )
    lat = results.get("latency")
    if lat:
        case = f"{lat['items']} items, {lat['latency_ms']:g} ms a request"
        rows.append(
            {
                "target": f"store requests per item <= {MAX_REQUESTS_PER_ITEM:g} + the listing",
                "case": case,
                "value": lat["requests_per_item"],
                "limit": MAX_REQUESTS_PER_ITEM,
                "met": lat["met_requests"],
            }
        )
        rows.append(
            {
                "target": f"items/s >= {MIN_FRACTION_OF_BOUND:g} x in_flight / (requests_per_item x latency)",
                "case": case,
                "value": figure(lat["fraction_of_bound"]),
                "limit": MIN_FRACTION_OF_BOUND,
                "met": lat["met_throughput"],
                "detail": f"{fmt_spread(lat['items_per_s'], ',.1f')} items/s of {figure(lat['bound_items_per_s']):,.1f}",
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
        f"Command: `{cfg.get('command', 'python -m bench')}`. Figures: the median of {cfg.get('repeats', '?')} interleaved repeats, "
        "with their min-max in brackets (where the run recorded it)."
    )
    out.append("")
    rows = evaluate_targets(results)
    if rows:
        out += ["### Targets", "", "| target | case | figure | limit | | items/s (ours vs theirs), or why not run |", "|---|---|---:|---:|---|---|"]
        for r in rows:
            value = "-" if r["value"] is None else f"{r['value']:.3g}"
            out.append(f"| {r['target']} | {r['case']} | {value} | {r['limit']:g} | {_mark(r['met'])} | {r.get('detail', '')} |")
        out.append("")

    pred = results.get("predict") or {}
    if pred:
        from .predict_bench import MEASURES

        out += ["### 1. predict_dataset against what users would write instead (items per second; higher is better)", ""]
        any_data = next(iter(pred.values()))
        out.append(
            f"{any_data['n']} distinct 256x256 RGB PNGs (~120 KB each), batch size {any_data['batch_size']}, listing included, "
            "every run writing new prediction sets (a new model each run). The model's cost per item is set per store from the "
            "CPU time to read and decode one item (`prep`): `model_bound` = NumPy work of ~2x `prep` on one BLAS thread; "
            "`device_bound` = a wait of ~1x `prep` holding neither GIL nor CPU (a GPU model's cost to its host). "
            "`ratio` columns = predict_dataset throughput / the loop's (of the median times). Stages, each run the way the engine runs them: "
            "`input_stage` (listing + reading + preparing, nothing predicted or written), `model_only`, `write_only`. "
            "`bound` = max(slowest stage, CPU seconds of the three stages alone (this process + the S3 server) / the CPUs "
            "other processes left free during the predict_dataset runs), as items/s; `others` = CPUs other processes on "
            "this shared machine kept busy meanwhile."
        )
        out.append("")
        baselines = [m for m in MEASURES[1:4]]
        out.append(
            "| store | setting | model cost | " + " | ".join(MEASURES) + " | " + " | ".join(f"ratio vs {b}" for b in baselines) + " | bound | others |"
        )
        out.append("|---|---|---:|" + "---:|" * (len(MEASURES) + len(baselines) + 2))
        for backend, data in pred.items():
            for setting, s in data["settings"].items():
                cost = f"device {s['device_ms_per_item']:.2f} ms/item" if s.get("model") == "device" else f"NumPy, {s['work']} layers"
                ratios = [f"{s['ratio'][b]:.2f}" if b in s.get("ratio", {}) else "-" for b in baselines]
                out.append(
                    f"| {backend} | {setting} | {cost} | "
                    + " | ".join(_cell(s, "items_per_s", k) for k in MEASURES)
                    + " | " + " | ".join(ratios)
                    + f" | {s.get('bound_items_per_s', 0):,.0f} | {s.get('other_load_cores', 0):.1f} |"
                )
            if data.get("ray_data"):
                out.append(f"| {backend} | | Ray Data: {data['ray_data']} | |")
        out.append("")
        out.append("CPU seconds per run (this process + store server; the loops' worker processes are not counted), medians:")
        out.append("")
        out.append("| store | setting | " + " | ".join(MEASURES) + " |")
        out.append("|---|---|" + "---:|" * len(MEASURES))
        for backend, data in pred.items():
            for setting, s in data["settings"].items():
                out.append(f"| {backend} | {setting} | " + " | ".join(f"{s['median_cpu_s'][k]:.2f}" if k in s["median_cpu_s"] else "-" for k in MEASURES) + " |")
        out.append("")

    mem = results.get("memory") or {}
    if mem:
        out += ["### 2. Peak memory of predict_dataset", ""]
        out.append("| store | N | peak RSS (MiB) | RSS before the run (MiB) | growth during the run (MiB) | items/s |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for backend, data in mem.items():
            for n, row in data["sizes"].items():
                peak, rate = memory_spreads(int(n), row)
                out.append(
                    f"| {backend} | {int(n):,} | {fmt_spread(peak, '.1f')} | {fmt_spread(row['baseline_rss_mib'], '.1f')} | "
                    f"{fmt_spread(row['growth_mib'], '.1f')} | {fmt_spread(rate)} |"
                )
            out.append(f"| {backend} | ratio | {data['ratio_peak']:.3f} | | | |")
        out.append("")

    uc = results.get("user_compare")
    if uc:
        from .user_compare import render as render_user

        out += render_user(uc)

    lat = results.get("latency")
    if lat:
        out += ["### 6. Cloud latency: predict_dataset through a proxy adding latency to every request", ""]
        split = "server; proxy" if "server_cpu_ms_per_item" in lat else "server + proxy"
        out.append(f"| items | latency | requests/item (GET + PUT) | listing requests | in flight | items/s | bound | fraction | CPU ms/item (run; {split}) | CPU allows |")
        out.append("|---:|---:|---|---:|---:|---:|---:|---:|---|---:|")
        theirs = (f"{fmt_spread(lat['server_cpu_ms_per_item'], '.2f')}; {fmt_spread(lat['proxy_cpu_ms_per_item'], '.2f')}" if "server_cpu_ms_per_item" in lat
                  else fmt_spread(lat['server_and_proxy_cpu_ms_per_item'], '.2f'))  # fmt: skip
        out.append(
            f"| {lat['items']:,} | {lat['latency_ms']:g} ms | {lat['requests_per_item']:.3f} ({lat['gets_per_item']:.3f} + {lat['puts_per_item']:.3f}) | "
            f"{lat['requests'].get('list', 0)} | {lat['in_flight']} | {fmt_spread(lat['items_per_s'], ',.1f')} | {fmt_spread(lat['bound_items_per_s'], ',.1f')} | "
            f"{fmt_spread(lat['fraction_of_bound'], '.2f')} | {fmt_spread(lat['cpu_ms_per_item'], '.2f')}; {theirs} | {fmt_spread(lat.get('cpu_bound_items_per_s', float('nan')), ',.0f')} |"
        )
        out.append("")
        out.append("bound = in flight / (requests per item x latency); CPU allows = CPUs / (CPU seconds per item of the run, the server and "
                   "the proxy together), the rate with the machine to itself; load average at the end of the run: " + str(lat.get("loadavg")))
        out.append("")

    if results.get("s3_bulk"):
        from .s3_bulk_bench import render as render_bulk

        out += render_bulk(results["s3_bulk"])

    art = results.get("artifacts") or {}
    if art:
        out += ["### 3. Artifact transfer against the plain minio client (MiB/s; higher is better)", ""]
        out.append("| shape | files | MiB | save_to_model | plain upload | ratio | load_from_model | plain download | ratio | plain client settings |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for shape, a in art.items():
            mb = a["mib_per_s"]
            setting = ", ".join(f"{k}={v}" for k, v in a["plain_upload_setting"].items())
            out.append(
                f"| {shape} | {a['files']:,} | {a['bytes'] / 2**20:,.0f} | {fmt_spread(mb['ours_save'], '.1f')} | {fmt_spread(mb['plain_upload'], '.1f')} | "
                f"{a['save_vs_plain']:.2f} | {fmt_spread(mb['ours_load'], '.1f')} | {fmt_spread(mb['plain_download'], '.1f')} | {a['load_vs_plain']:.2f} | "
                f"upload {setting}; download threads={a['plain_download_setting']['threads']} |"
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
            out.append(f"| {step} | {fmt_spread(v['kfp_local_s'], '.2f')} | {fmt_spread(v['in_process_s'], '.2f')} | {v['overhead_s']:.2f} |")
        out.append(
            f"| **DAG** | {fmt_spread(p['kfp_local_total_s'], '.2f')} | {fmt_spread(p['in_process_total_s'], '.2f')} | {p['overhead_per_step_s']:.2f} per step |"
        )
        out.append("")

    gpu = results.get("torch_gpu")
    if gpu:
        out += ["### 5. PyTorch example: predict_items vs a plain PyTorch loop", ""]
        out.append("| device | N | batch | plain loop items/s | predict_items items/s | ratio |")
        out.append("|---|---:|---:|---:|---:|---:|")
        out.append(
            f"| {gpu['device']} | {gpu['n']} | {gpu['batch_size']} | {fmt_spread(gpu['items_per_s']['plain_loop'])} | "
            f"{fmt_spread(gpu['items_per_s']['predict_items'])} | {gpu['ratio']:.2f} |"
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
