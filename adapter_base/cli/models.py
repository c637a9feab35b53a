"""``model-adapter model create|download|list|show|versions|alias|update|delete``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import NotFoundError, ValidationError
from ..loading import load_adapter_class
from ..metrics import headline
from ._common import add_config_option, add_store_option, confirm, open_registry, parse_key_values, print_json


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
        for m in registry.list_models():
            print(f"{m.name}\t{m.id}\tv{m.version}\t{m.status}\t{json.dumps(m.metrics.get('evaluation', {}), default=str)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        print_json(registry.get_model(args.model).to_dict())
    return 0


def _headline_text(metrics: dict | None) -> str:
    if not metrics:
        return "not evaluated"
    return ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in headline(metrics).items() if v is not None)


def cmd_versions(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        manifests = registry.list_versions(model)
        if not manifests:
            print(f"model {model.name} has no versions yet: run `model-adapter train {model.name}`")
            return 0
        by_version: dict[int, list[str]] = {}
        for alias, version in sorted(model.aliases.items()):
            by_version.setdefault(version, []).append(alias)
        print("version\tcreated\tmetrics\taliases")
        for m in manifests:
            aliases = ", ".join(by_version.get(m.version, [])) or "-"
            current = " (current)" if m.version == model.version else ""
            print(f"v{m.version}{current}\t{m.created_at}\t{_headline_text(registry.latest_evaluation(model, m.version))}\t{aliases}")
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
    ls = msub.add_parser("list", help="list models")
    add_store_option(ls)
    ls.set_defaults(func=cmd_list)
    show = msub.add_parser("show", help="show a model record as JSON")
    show.add_argument("model", help="name or id")
    add_store_option(show)
    show.set_defaults(func=cmd_show)
    versions = msub.add_parser("versions", help="list a model's versions: created, evaluation headline, aliases")
    versions.add_argument("model", help="name or id")
    add_store_option(versions)
    versions.set_defaults(func=cmd_versions)

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
