"""``model-adapter model create|download|list|show|versions|evaluations|clone|alias|update|delete``."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..loading import load_adapter_class
from ..metrics import headline
from ..metrics.report import filters_text
from ..registry import Registry, layout
from ._common import (
    add_config_option, add_json_option, add_store_option, chosen_version, confirm, metrics_text, open_registry, parse_key_values, print_json,
    print_table,
)  # fmt: skip


def _artifacts_dir(path: str | None) -> Path | None:
    """``--artifacts DIR``: a folder holding at least one file (checked before anything is created)."""
    if path is None:
        return None
    folder = Path(path)
    if not folder.is_dir() or not any(p.is_file() for p in folder.rglob("*")):
        raise ValidationError("model create", "--artifacts", f"{path} is not a folder holding files")
    return folder


def cmd_create(args: argparse.Namespace) -> int:
    load_adapter_class(args.adapter)  # fail now, not at training time
    artifacts = _artifacts_dir(args.artifacts)
    with open_registry(args, create=True) as registry:
        ds = registry.get_dataset(args.dataset) if args.dataset else None
        subsets = {name: {"subset": name} for name in args.subsets}
        model = registry.create_model(
            args.name,
            adapter=args.adapter,
            configuration=parse_key_values(args.config, "--config"),
            labels=args.labels.split(",") if args.labels else (ds.labels if ds else []),
            dataset_id=ds.id if ds else None,
            subsets=subsets,
            input_type=args.input_type,
            output_type=args.output_type,
        )
        print(f"created model {model.name} ({model.id})")
        if artifacts is not None:
            model = registry.upload_artifacts(model, artifacts)
            assert model.artifacts is not None
            print(f"version {model.version}: {len(model.artifacts.files)} file(s), {model.artifacts.total_size} bytes from {artifacts}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        if model.version == 0:
            raise ValidationError("model download", "MODEL", f"model {model.name} has no versions yet: train it, or create it with --artifacts")
        manifest = registry.download_artifacts(model, args.dir, args.version)
        print(f"downloaded {model.name} v{manifest.version}: {len(manifest.files)} file(s), {manifest.total_size} bytes -> {args.dir}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        models = registry.list_models()
        if args.json:
            print_json([m.to_dict() for m in models])
        elif not models:
            print(f"no models in {registry.store.uri} (`model-adapter model create` makes one)")
        else:
            rows = []
            for m in models:
                ev = m.metrics.get("evaluation") or {}
                shown = {k: v for k, v in ev.items() if k not in ("version", "report", "dataset_id")}
                rows.append((m.name, m.id, f"v{m.version}", m.status, f"{metrics_text(shown)} (v{ev.get('version', '?')})" if ev else "not evaluated"))
            print_table(("NAME", "ID", "VERSION", "STATUS", "LATEST EVALUATION"), rows)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        print_json(registry.get_model(args.model).to_dict())
    return 0


def evaluation_record(registry: Registry, prefix: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """What ``model versions`` and ``model evaluations`` say of one stored evaluation (``prefix``: its key prefix)."""
    return {
        "version": metrics.get("model_version"),
        "evaluated_at": _stamp_time(layout.evaluation_stamp(prefix)),
        "dataset": metrics.get("dataset_name") or metrics.get("dataset_id"),
        "filters": {k: v for k, v in (metrics.get("filters") or {}).items() if v not in (None, {}, [])},
        "metrics": {k: v for k, v in headline(metrics).items() if v is not None},
        "items_failed": metrics.get("items_failed", 0),
        "report_uri": registry.store.uri_of(layout.evaluation_file(prefix, layout.EVALUATION_REPORT_HTML)),
    }


def _stamp_time(stamp: str) -> str:
    """``20261206T065416123456Z`` as ``2026-12-06T06:54:16Z`` (the stamp itself when it is not one)."""
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return stamp


def _evaluation_text(record: dict[str, Any] | None) -> str:
    if not record:
        return "not evaluated"
    return f"{metrics_text(record['metrics'])} on {record['dataset']} ({filters_text(record['filters'])})"


def cmd_versions(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        manifests = registry.list_versions(model)
        if not manifests and not args.json:
            print(f"model {model.name} has no versions yet: run `model-adapter train {model.name}`")
            return 0
        by_version: dict[int, list[str]] = {}
        for alias, version in sorted(model.aliases.items()):
            by_version.setdefault(version, []).append(alias)
        latest: dict[int, dict[str, Any]] = {}
        for prefix, metrics in registry.list_evaluations(model):  # oldest first: the last one of each version stays
            latest[int(metrics.get("model_version") or 0)] = evaluation_record(registry, prefix, metrics)
        records = [
            {"version": m.version, "current": m.version == model.version, "created_at": m.created_at,
             "aliases": by_version.get(m.version, []), "latest_evaluation": latest.get(m.version)}
            for m in manifests
        ]  # fmt: skip
        if args.json:
            print_json(records)
            return 0
        print_table(
            ("VERSION", "CREATED", "LATEST EVALUATION", "ALIASES"),
            [
                (f"v{r['version']}{' (current)' if r['current'] else ''}", r["created_at"], _evaluation_text(r["latest_evaluation"]), ", ".join(r["aliases"]) or "-")
                for r in records
            ],
        )
    return 0


def cmd_evaluations(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        records = [evaluation_record(registry, prefix, metrics) for prefix, metrics in registry.list_evaluations(model)]
        if args.json:
            print_json(records)
        elif not records:
            print(f"model {model.name} has no evaluations yet: run `model-adapter evaluate {model.name} --dataset D`")
        else:
            print_table(
                ("VERSION", "EVALUATED", "DATASET", "ITEMS", "METRICS", "REPORT"),
                [(f"v{r['version']}", r["evaluated_at"], r["dataset"], filters_text(r["filters"]), metrics_text(r["metrics"]), r["report_uri"]) for r in records],
            )
    return 0


def cmd_clone(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        version = chosen_version(model, args)
        clone = registry.clone_model(model, args.new_name, version=version)
        source = f"version {version if version is not None else model.version}" if model.version else "no version (untrained)"
        print(f"cloned model {model.name} {source} as {clone.name} ({clone.id}), version {clone.version}")
    return 0


def cmd_alias_set(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        before = model.aliases.get(args.alias)
        updated = registry.set_alias(model, args.alias, args.version)
        was = f" (was version {before})" if before is not None else ""
        print(f"{updated.name}: {args.alias} -> version {updated.aliases[args.alias]}{was}")
    return 0


def cmd_alias_unset(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        before = model.aliases.get(args.alias)
        if args.version is not None and before is not None and before != args.version:
            raise ValidationError("model alias unset", "VERSION", f"{args.alias} points at version {before}, not {args.version}; nothing changed")
        updated = registry.unset_alias(model, args.alias)
        print(f"{updated.name}: removed alias {args.alias} (was version {before})")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        changes: dict = {}
        said: list[str] = []
        config = parse_key_values(args.config, "--config")
        if config:
            changes["configuration"] = {**model.configuration, **config}
            said.append("configuration " + ", ".join(f"{k}={v!r}" for k, v in config.items()))
        if args.dataset:
            ds = registry.get_dataset(args.dataset)
            changes["dataset_id"] = ds.id
            said.append(f"dataset {ds.name} ({ds.id})")
            if not model.labels:
                changes["labels"] = list(ds.labels)
        if args.labels:
            changes["labels"] = args.labels.split(",")
        if "labels" in changes:
            said.append(f"labels {','.join(changes['labels'])}")
        if not changes:
            raise ValidationError("model update", "options", "nothing to change: pass --config KEY=VALUE, --dataset or --labels")
        updated = registry.update_model(model, **changes)
        print(f"updated model {updated.name} ({updated.id}): {'; '.join(said)}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        try:
            model = registry.get_model(args.model)
        except NotFoundError:  # gone already; a name an interrupted delete left: finish that delete (else NotFoundError)
            sets, runs = registry.delete_model(args.model)
            print(f"finished the interrupted delete of model {args.model}: removed {sets} prediction set(s) and {runs} run(s) left behind")
            return 0
        aliases = f", aliases {', '.join(f'{a} -> v{v}' for a, v in sorted(model.aliases.items()))}" if model.aliases else ""
        question = f"delete model {model.name} ({model.id}) with its {model.version} version(s){aliases}, its predictions and its prediction runs?"
        if not confirm(question, args):
            print("nothing deleted")
            return 1
        sets, runs = registry.delete_model(model)
        print(f"deleted model {model.name} ({model.id}) and its {model.version} version(s), {sets} prediction set(s) and {runs} run(s)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="create, list, show, update and delete models; their versions and aliases")
    msub = p.add_subparsers(dest="model_cmd", required=True)
    create = msub.add_parser("create", help="create a model (unique name) bound to an adapter class")
    create.add_argument("--name", required=True)
    create.add_argument("--adapter", required=True, help="import path package.module:Class")
    create.add_argument("--dataset", help="dataset to train on (name or id)")
    create.add_argument("--subsets", nargs="+", default=["train", "validation"], help="subset names used for training (default: train validation)")
    create.add_argument("--labels", help="comma-separated labels (default: the dataset's)")
    add_config_option(create, "configuration values")
    create.add_argument("--input-type", default="image")
    create.add_argument("--output-type", default="classification", help="classification or box")
    create.add_argument("--artifacts", metavar="DIR", help="make version 1 from the files in DIR (existing weights: predict without training)")
    add_store_option(create)
    create.set_defaults(func=cmd_create)
    download = msub.add_parser("download", help="download a version's files (digests checked) into a folder")
    download.add_argument("model", help="name or id")
    download.add_argument("dir", help="folder to write the files to (created if missing)")
    download.add_argument("--version", type=int, help="version number (default: the current one; see `model versions`)")
    add_store_option(download)
    download.set_defaults(func=cmd_download)
    ls = msub.add_parser("list", help="list models: name, id, version, status, latest evaluation")
    add_json_option(ls, "the model records")
    add_store_option(ls)
    ls.set_defaults(func=cmd_list)
    show = msub.add_parser("show", help="show a model record as JSON")
    show.add_argument("model", help="name or id")
    show.add_argument("--json", action="store_true", help="print JSON (what it prints anyway; accepted like every list and show command)")
    add_store_option(show)
    show.set_defaults(func=cmd_show)
    versions = msub.add_parser("versions", help="list a model's versions: created, latest evaluation (with its dataset and subset), aliases")
    versions.add_argument("model", help="name or id")
    add_json_option(versions, "the versions")
    add_store_option(versions)
    versions.set_defaults(func=cmd_versions)
    evaluations = msub.add_parser("evaluations", help="list a model's evaluations: version, time, dataset, filters, headline metrics, report URI")
    evaluations.add_argument("model", help="name or id")
    add_json_option(evaluations, "the evaluations")
    add_store_option(evaluations)
    evaluations.set_defaults(func=cmd_evaluations)
    clone = msub.add_parser("clone", help="a new model whose version 1 is a copy of a version of MODEL (same adapter, configuration, labels)")
    clone.add_argument("model", help="name or id of the model to copy")
    clone.add_argument("new_name", metavar="NEW", help="the new model's name")
    which = clone.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="copy this version (default: the current one)")
    which.add_argument("--alias", help="copy the version this alias points at, e.g. production")
    add_store_option(clone)
    clone.set_defaults(func=cmd_clone)

    alias = msub.add_parser("alias", help="point an alias (e.g. production) at a version, or remove it: promote and roll back")
    asub = alias.add_subparsers(dest="alias_cmd", required=True)
    aset = asub.add_parser("set", help="point ALIAS at VERSION (promote, or roll back to an older version)")
    aset.add_argument("model", help="name or id")
    aset.add_argument("alias", help="alias name, e.g. production")
    aset.add_argument("version", type=int, help="version number (see `model versions`)")
    add_store_option(aset)
    aset.set_defaults(func=cmd_alias_set)
    aunset = asub.add_parser("unset", help="remove ALIAS")
    aunset.add_argument("model", help="name or id")
    aunset.add_argument("alias", help="alias name")
    aunset.add_argument("version", nargs="?", type=int, help="only if ALIAS points at this version (optional)")
    add_store_option(aunset)
    aunset.set_defaults(func=cmd_alias_unset)

    update = msub.add_parser("update", help="change a model's configuration, dataset or labels")
    update.add_argument("model", help="name or id")
    add_config_option(update, "configuration values to set (other keys are kept)")
    update.add_argument("--dataset", help="dataset to train on (name or id); the model takes its labels if it has none")
    update.add_argument("--labels", help="comma-separated labels")
    add_store_option(update)
    update.set_defaults(func=cmd_update)

    delete = msub.add_parser(
        "delete",
        help="delete a model with its versions, checkpoints, evaluations, its prediction sets on every dataset and its prediction "
        "runs; rerun it to finish a delete that was interrupted",
    )
    delete.add_argument("model", help="name or id")
    delete.add_argument("--yes", action="store_true", help="do not ask (required when the shell is not interactive)")
    add_store_option(delete)
    delete.set_defaults(func=cmd_delete)
