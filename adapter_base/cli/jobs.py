"""``model-adapter train|predict|embed|evaluate``: the wrapper functions from the shell."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..errors import StoreError
from ..flows.preflight import require_items, require_trained, warn_label_mismatch
from ..loading import make_adapter
from ..progress import ProgressBar, progress_bar
from ..metrics.report import filters_text
from ._common import add_store_option, chosen_version, item_filters, metrics_text, open_registry, print_json

if TYPE_CHECKING:
    from ..prediction import PredictionReport


def cmd_train(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        dataset = registry.get_dataset(args.dataset) if args.dataset else None
        if dataset is not None and (model.dataset_id is None or not model.labels):
            # a model made without a dataset takes this one (and its labels) as its own
            model = registry.update_model(model, dataset_id=model.dataset_id or dataset.id, labels=model.labels or list(dataset.labels))
        adapter = make_adapter(registry, args.adapter, model=model)
        bars: list[ProgressBar] = []  # the bar starts with the first epoch: a run refused by its checks draws none

        def progress(i_epoch: int, n_epochs: int, metrics: dict | None) -> None:
            if not bars:
                bars.append(progress_bar(f"train {model.name}", n_epochs, "epoch"))
            bars[0].set_total(n_epochs)
            bars[0].set_postfix(metrics or {})
            bars[0].update(1)

        try:
            trained = adapter.train_model(model, progress=progress, dataset=dataset.id if dataset else None)
        finally:
            for bar in bars:
                bar.close()
        print(f"trained {trained.name} ({trained.id}): version {trained.version}; {metrics_text(trained.metrics.get('training'))}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        adapter = make_adapter(registry, args.adapter, model=model)
        require_trained(type(adapter), model, allow_untrained=args.allow_untrained)
        dataset = registry.get_dataset(args.dataset)
        count = require_items(registry, dataset, item_filters(args), "predict")  # before loading the model; the bar's total
        warn_label_mismatch(model, dataset)
        adapter.load_from_model(model, version=chosen_version(model, args))
        shown: list[PredictionReport] = []

        def show(report: PredictionReport) -> None:
            """Print the run's summary (and report) before it is stored: a failed store loses neither."""
            print(report.summary())
            if args.report:
                print_json(report.to_dict())
            sys.stdout.flush()
            shown.append(report)

        try:
            report = adapter.predict_dataset(
                dataset, filters=item_filters(args), batch_size=args.batch_size, resume=args.resume, progress=True, on_finish=show, expected_total=count,
                keep_going=args.keep_going,
            )  # fmt: skip
        except Exception as exc:
            if not shown:
                raise
            raise StoreError(
                f"the run report of {shown[0].run_id} could not be stored ({type(exc).__name__}: {exc}); "
                "the predictions counted above were written"
            ) from exc
    return 0 if report.ok else 1


def cmd_embed(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        adapter = make_adapter(registry, args.adapter, model=model)
        require_trained(type(adapter), model, allow_untrained=args.allow_untrained)
        dataset = registry.get_dataset(args.dataset)
        count = require_items(registry, dataset, item_filters(args), "embed")  # before loading the model; the bar's total
        adapter.load_from_model(model, version=chosen_version(model, args))

        def show(report: PredictionReport) -> None:
            print(report.summary().replace(" predicted, ", " embedded, ", 1))
            if args.report:
                print_json(report.to_dict())
            sys.stdout.flush()

        report = adapter.embed_dataset(
            dataset, filters=item_filters(args), batch_size=args.batch_size, resume=args.resume, progress=True, on_finish=show,
            expected_total=count, keep_going=args.keep_going,
        )  # fmt: skip
    return 0 if report.ok else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        model = registry.get_model(args.model)
        adapter = make_adapter(registry, args.adapter, model=model)
        require_trained(type(adapter), model, allow_untrained=args.allow_untrained)
        result = adapter.evaluate_model(model, args.dataset, filters=item_filters(args), progress=True, keep_going=args.keep_going)
        shown = filters_text(result.metrics.get("filters"))
        print(f"evaluated {model.name} v{result.model.version} on {result.metrics.get('dataset_name')} ({shown}): {metrics_text(result.summary)}")
        print(f"report: {result.report_uri}")
        for line in result.prediction.summary().splitlines()[1:]:  # one line per failed item
            print(line)
    return 0 if result.prediction.ok else 1


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model name or id")
    p.add_argument("--adapter", help="adapter import path (default: the model's)")
    add_store_option(p)


def _allow_untrained(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-untrained",
        action="store_true",
        help="predict with a model that has no trained version (its untrained weights); adapters that predict untrained say so with PREDICTS_UNTRAINED",
    )


def _keep_going(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="run every batch even when the first ones all fail with the same error "
        "(default: stop after fail_fast_batches of them, 3 unless the model's configuration says otherwise)",
    )


def _streaming(p: argparse.ArgumentParser, verb: str, done: str) -> None:
    """The options of a streaming run over a dataset (``predict``, ``embed``)."""
    _common(p)
    p.add_argument("--dataset", required=True, help="dataset name or id")
    p.add_argument("--subset", help="only items of this subset")
    p.add_argument("--path-prefix", help="only items under this path")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--resume", action="store_true", help=f"skip items this model version already {done}")
    p.add_argument("--report", action="store_true", help="print the full per-item report as JSON")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help=f"{verb} with this version (default: the current one; see `model versions`)")
    which.add_argument("--alias", help=f"{verb} with the version this alias points at, e.g. production")
    _allow_untrained(p)
    _keep_going(p)


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model on its subsets and save a new version")
    _common(train)
    train.add_argument("--dataset", help="dataset to train on (name or id; default: the model's); a model without one takes it as its own")
    train.set_defaults(func=cmd_train, resume_flag="")  # Ctrl-C: run it again, training resumes from its checkpoints

    predict = sub.add_parser("predict", help="predict a dataset in streaming batches; exits 1 if any item failed")
    _streaming(predict, "predict", "predicted")
    predict.set_defaults(func=cmd_predict, resume_flag="--resume")

    embed = sub.add_parser("embed", help="store the adapter's embed() vector of each item, in streaming batches; exits 1 if any item failed")
    _streaming(embed, "embed", "embedded")
    embed.set_defaults(func=cmd_embed, resume_flag="--resume")

    evaluate = sub.add_parser("evaluate", help="predict a subset and store metrics and an HTML report")
    _common(evaluate)
    evaluate.add_argument("--dataset", required=True, help="dataset name or id")
    evaluate.add_argument("--subset", default="test", help="subset to evaluate on (default: test)")
    evaluate.add_argument("--path-prefix", help="only items under this path")
    _allow_untrained(evaluate)
    _keep_going(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)
