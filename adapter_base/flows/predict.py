"""``predict_items`` / ``predict_dataset``: streaming batched prediction with a per-item report.

Three stages overlap: a producer thread lists items and prepares them on an I/O
pool (``prepare_item_func``) into batches; the calling thread runs ``predict``;
a write pool stamps and stores each item's ``PredictionSet``. Queues and windows
are bounded, so memory does not grow with the number of items: prepared inputs
waiting for ``predict`` hold at most about ``prepared_bytes_budget`` bytes. A failing
item or batch is recorded (item id, stage, error) and the rest go on; so is a
``prepare_item_func`` or ``predict`` call that runs past its timeout.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from ..concurrency import ByteBudget, in_thread, ordered_map
from ..entities import Annotation, AnnotationCollection, Dataset, Filters, Item, Model, ModelInfo, PredictionSet
from ..entities._base import utc_now
from ..errors import AdapterContractError, StoreError, ValidationError
from ..media import MIB, nbytes
from ..registry import layout
from ..secrets import redact
from ._common import resolve_dataset

if TYPE_CHECKING:
    from ..adapter import BaseModelAdapter

log = logging.getLogger(__name__)

ItemSource = Iterable[tuple[str, "Item | BaseException"]]
ResultCallback = Callable[[Item, PredictionSet], None]
#: A prepared item on its way to ``predict``: the engine's own Item record, the model input, its bytes.
Prepared = tuple[Item, Any, int]

_DONE = object()
_SKIP = object()
#: Default items per I/O-pool task (``io_chunk``).
IO_CHUNK = 4


@dataclass
class ItemFailure:
    """Why one item has no predictions from this run."""

    item_id: str
    stage: str  # list | input | prepare | predict | write
    error: str
    path: str | None = None


@dataclass
class PredictionReport:
    """What a prediction run did, item by item for the failures."""

    run_id: str
    model_id: str
    model_name: str
    model_version: int
    batch_size: int
    batch_size_used: int = 0
    total: int = 0
    succeeded: int = 0
    skipped: int = 0
    failures: list[ItemFailure] = field(default_factory=list)
    started_at: str = field(default_factory=utc_now)
    duration_s: float = 0.0
    fatal_error: str | None = None

    @property
    def failed(self) -> int:
        """Items that failed at any stage."""
        return len(self.failures)

    @property
    def ok(self) -> bool:
        """True when every item succeeded (or was already done)."""
        return not self.failures and self.fatal_error is None

    @property
    def items_per_second(self) -> float:
        """Items predicted and written per second of wall time."""
        return self.succeeded / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``failed`` and ``items_per_second``)."""
        d = asdict(self)
        d["failed"] = self.failed
        d["items_per_second"] = round(self.items_per_second, 3)
        return d

    def summary(self) -> str:
        """A few lines for people: counts, throughput, and each failure."""
        lines = [
            f"prediction run {self.run_id}: model {self.model_name} v{self.model_version}: "
            f"{self.succeeded} predicted, {self.skipped} already done, {self.failed} failed "
            f"of {self.total} in {self.duration_s:.1f}s ({self.items_per_second:.1f} items/s, batch size {self.batch_size_used})"
        ]
        lines += [f"  FAILED {f.item_id}{f' ({f.path})' if f.path else ''} at {f.stage}: {f.error}" for f in self.failures]
        if self.fatal_error:
            lines.append(f"  ABORTED: {self.fatal_error}")
        return "\n".join(lines)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for ``MemoryError`` and accelerator OOM errors (e.g. ``torch.cuda.OutOfMemoryError``)."""
    return isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__ or "out of memory" in str(exc).lower()


def _error_text(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")


class _Run:
    """One streaming prediction run."""

    def __init__(
        self,
        adapter: "BaseModelAdapter",
        model: Model,
        *,
        batch_size: int,
        resume: bool,
        write: bool,
        on_result: ResultCallback | None,
        progress: bool,
        run_id: str | None,
        resume_run: bool = False,
    ) -> None:
        cfg = adapter.configuration
        self.adapter = adapter
        self.registry = adapter.registry
        self.model = model
        self.batch_size = batch_size
        self.effective_batch = batch_size
        self.prefetch_batches = max(1, int(cfg.get("prefetch_batches") or 4))
        self.io_workers = max(1, int(cfg.get("io_workers") or 16))
        # Items per I/O-pool task (prepare and write): fewer thread hand-offs, less GIL traffic.
        self.io_chunk = max(1, int(cfg.get("io_chunk") or IO_CHUNK))
        # Items being prepared at once: from two tasks up to ``prefetch_batches`` batches. It
        # widens while ``predict`` waits for input and narrows while prepared batches queue
        # up, so no more threads decode at once than keep ``predict`` fed: on a few cores
        # every extra one takes CPU and GIL turns from the thread that calls ``predict``.
        self._max_window = max(self.io_chunk, self.prefetch_batches * batch_size)
        self._min_window = min(self._max_window, 2 * self.io_chunk)
        self._window = self._max_window if not cfg.get("adaptive_prefetch", True) else self._min_window
        self._adaptive_window = bool(cfg.get("adaptive_prefetch", True))
        self.timeout_s = _positive_or_none(cfg, "predict_timeout_s")
        self.prepare_timeout_s = _positive_or_none(cfg, "prepare_timeout_s")
        budget = _positive_or_none(cfg, "prepared_bytes_budget")
        self.budget = ByteBudget(int(budget)) if budget else None
        self._sizes: deque[int] = deque(maxlen=64)  # bytes of the latest prepared items
        self.adaptive = bool(cfg.get("adaptive_batch_size", True))
        self.resume = resume
        self.resume_run = resume_run
        self.write = write
        self.on_result = on_result
        self.report = PredictionReport(
            run_id=run_id or uuid.uuid4().hex[:12],
            model_id=model.id,
            model_name=model.name,
            model_version=model.version,
            batch_size=batch_size,
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bar: Any = None
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(unit="item", desc=f"predict {model.name}", dynamic_ncols=True)

    # --- bookkeeping ------------------------------------------------------------------

    def _fail(self, item_id: str, stage: str, exc: BaseException | str, path: str | None = None) -> None:
        text = exc if isinstance(exc, str) else _error_text(exc)
        log.error("item %s failed at %s: %s", item_id, stage, text)
        with self._lock:
            self.report.failures.append(ItemFailure(item_id=item_id, stage=stage, error=text, path=path))
        self._tick()

    def _tick(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    # --- stage 1: list + prepare (producer thread) ------------------------------------

    def _prepare_window(self) -> int:
        """Items to have in preparation: the adaptive count, narrowed to what the byte budget has room for."""
        if self.budget is None:
            return self._window
        if not self._sizes:
            return 1  # learn an item's size from one before preparing many at once
        largest = max(self._sizes)
        room = (self.budget.limit - self.budget.held) // largest if largest else self._window
        return max(1, min(self._window, room))

    def _admit(self, item: Item, prepared: Any, out: "queue.Queue[Any]", batch: list[Prepared]) -> Prepared | None:
        """``(item, prepared, bytes)`` once the byte budget holds it; None when it fails or the run stops.

        A partial batch is handed to ``predict`` before waiting, so the bytes it holds come back.
        """
        size = nbytes(prepared)
        if self.budget is None:
            return item, prepared, size
        self._sizes.append(size)
        if size > self.budget.limit:
            self._fail(
                item.id,
                "prepare",
                f"the prepared input of item {item.id} ({item.path}) holds {size / MIB:.1f} MiB, "
                f"more than prepared_bytes_budget ({self.budget.limit / MIB:.1f} MiB)",
                item.path,
            )
            return None
        if batch and not self.budget.fits(size):
            self._put(out, list(batch))
            batch.clear()
        if not self.budget.acquire(size, cancelled=self._stop.is_set):
            return None
        return item, prepared, size

    def _prepare(self, entry: tuple[str, Item | BaseException]) -> Any:
        _, item = entry
        if isinstance(item, BaseException):
            raise item
        if self.resume or self.resume_run:
            try:
                done = self.registry.get_predictions(item, self.model.id)
            except (StoreError, ValidationError) as exc:  # an unreadable set is no completion record
                log.warning("item %s: predicting again, its prediction set is unreadable: %s", item.id, _error_text(exc))
                done = None
            if done is not None and done.model_version == self.model.version and (self.resume or done.run_id == self.report.run_id):
                return _SKIP
        prepared = self.adapter.prepare_item_func(item)
        if prepared is None:
            raise AdapterContractError(f"prepare_item_func returned None for item {item.id}")
        return prepared

    def _produce(self, source: ItemSource, out: "queue.Queue[Any]", pool: ThreadPoolExecutor) -> None:
        batch: list[Prepared] = []
        try:
            prepared = ordered_map(
                self._prepare,
                source,
                pool=pool,
                window=self._prepare_window,  # read before each refill
                chunk=self.io_chunk,
                timeout_s=self.prepare_timeout_s,
                timeout_message=f"prepare_item_func did not return within prepare_timeout_s={self.prepare_timeout_s}",
            )
            for (item_id, item), result in prepared:
                if self._stop.is_set():
                    return
                with self._lock:
                    self.report.total += 1
                if isinstance(item, BaseException):
                    self._fail(item_id, "list", item)
                elif not isinstance(item, Item):
                    self._fail(str(item_id), "input", f"expected an Item, got {type(item).__name__}")
                elif isinstance(result, BaseException):
                    self._sizes.append(0)
                    self._fail(item.id, "prepare", result, item.path)
                elif result is _SKIP:
                    self._sizes.append(0)
                    with self._lock:
                        self.report.skipped += 1
                    self._tick()
                elif (entry := self._admit(item, result, out, batch)) is not None:
                    batch.append(entry)
                    if len(batch) >= self.batch_size:
                        self._put(out, batch)
                        batch = []
            if batch:
                self._put(out, batch)
        except BaseException as exc:  # noqa: BLE001 - the listing itself failed: end the run
            self.report.fatal_error = _error_text(exc)
            log.error("listing items failed, stopping: %s", self.report.fatal_error)
        finally:
            self._put(out, _DONE)

    def _resize_window(self, step: int) -> None:
        if self._adaptive_window:
            self._window = max(self._min_window, min(self._max_window, self._window + step))

    def _put(self, out: "queue.Queue[Any]", value: Any) -> None:
        if out.full():  # predict is behind: fewer items in preparation will do
            self._resize_window(-self.io_chunk)
        while not self._stop.is_set():
            try:
                out.put(value, timeout=0.2)
                return
            except queue.Full:
                continue

    # --- stage 2: predict (calling thread) --------------------------------------------

    def _call_predict(self, inputs: list[Any], items: list[Item]) -> Any:
        # The adapter gets its own list of its own Item copies: sorting, popping or editing
        # them cannot change which item a result is stored on.
        given = [copy.copy(it) for it in items]
        if not self.timeout_s:
            return self.adapter.predict(inputs, items=given)
        # A daemon thread, not an executor: a hung predict cannot be killed, and an
        # executor's worker would keep the process from exiting after the run.
        fut = in_thread(lambda: self.adapter.predict(inputs, items=given), "predict")
        try:
            return fut.result(timeout=float(self.timeout_s))
        except FutureTimeout:
            raise TimeoutError(f"predict did not return within predict_timeout_s={self.timeout_s}") from None

    def _predict_batch(self, batch: list[Prepared]) -> Iterator[tuple[Item, Any]]:
        """Yield (item, result or exception) for each item of ``batch``, shrinking the batch on OOM.

        Results are paired with the engine's own record of the batch, in the order given.
        """
        i = 0
        while i < len(batch):
            size = self.effective_batch
            chunk = batch[i : i + size]
            items = [it for it, _, _ in chunk]
            try:
                results = self._call_predict([x for _, x, _ in chunk], items)
            except Exception as exc:  # noqa: BLE001 - recorded per item
                if self.adaptive and len(chunk) > 1 and is_out_of_memory(exc):
                    self.effective_batch = max(1, len(chunk) // 2)
                    log.warning("predict ran out of memory on %d items; retrying with batch size %d", len(chunk), self.effective_batch)
                    continue
                for it in items:
                    yield it, exc
                i += len(chunk)
                continue
            if not isinstance(results, Sequence) or isinstance(results, (str, bytes)):
                err = AdapterContractError(f"predict returned a {type(results).__name__}, expected a list with one result per item")
                for it in items:
                    yield it, err
            elif len(results) != len(chunk):
                err = AdapterContractError(
                    f"predict returned {len(results)} results for a batch of {len(chunk)}: it must return one per item, in the order given"
                )
                for it in items:
                    yield it, err
            else:
                yield from zip(items, results)
            i += len(chunk)

    # --- stage 3: stamp + write (write pool) ------------------------------------------

    def _stamp(self, item: Item, result: Any) -> PredictionSet:
        if isinstance(result, AnnotationCollection):
            anns = list(result.annotations)
        elif isinstance(result, list) and all(isinstance(a, Annotation) for a in result):
            anns = result
        else:
            raise AdapterContractError(f"predict result is a {type(result).__name__}, expected an AnnotationCollection or a list of Annotation")
        stamped = []
        for n, ann in enumerate(anns):
            if not isinstance(ann, Annotation):
                raise AdapterContractError(f"result annotation {n} is a {type(ann).__name__}, not an Annotation")
            info = ModelInfo(
                confidence=1.0 if ann.model is None else ann.model.confidence,
                model_id=self.model.id,
                model_name=self.model.name,
                model_version=self.model.version,
            )
            new = replace(ann, model=info)
            try:
                new.validate()
            except ValidationError as exc:
                raise ValidationError(f"prediction {n}", exc.field, str(exc).split(": ", 1)[-1]) from None
            stamped.append(new)
        return PredictionSet(
            item_id=item.id,
            model_id=self.model.id,
            model_name=self.model.name,
            model_version=self.model.version,
            annotations=stamped,
            run_id=self.report.run_id,
        )

    def _write(self, item: Item, pset: PredictionSet) -> None:
        if self.write:
            self.registry.put_predictions(pset, item.dataset_id)

    def _write_chunk(self, chunk: list[tuple[Item, PredictionSet]]) -> list[BaseException | None]:
        """Write a few items' prediction sets one after the other: one pool task, one hand-off."""
        out: list[BaseException | None] = []
        for item, pset in chunk:
            try:
                self._write(item, pset)
                out.append(None)
            except Exception as exc:  # noqa: BLE001 - recorded per item
                out.append(exc)
        return out

    # --- the run ----------------------------------------------------------------------

    def run(self, source: ItemSource) -> PredictionReport:
        start = time.monotonic()
        batches: queue.Queue[Any] = queue.Queue(maxsize=self.prefetch_batches)
        prepare_pool = ThreadPoolExecutor(max_workers=self.io_workers, thread_name_prefix="prepare")
        write_pool = ThreadPoolExecutor(max_workers=self.io_workers, thread_name_prefix="write")
        in_flight = threading.BoundedSemaphore(max(1, (4 * self.io_workers) // self.io_chunk))  # chunks being written
        producer = threading.Thread(target=self._produce, args=(source, batches, prepare_pool), name="producer", daemon=True)
        producer.start()

        def finish(fut: Future[list[BaseException | None]], chunk: list[tuple[Item, PredictionSet]]) -> None:
            in_flight.release()
            try:
                errors = fut.result()
            except BaseException as exc:  # noqa: BLE001 - the task itself failed: every item in it
                errors = [exc] * len(chunk)
            ok = 0
            for (item, _), exc in zip(chunk, errors):
                if exc is None:
                    ok += 1
                else:
                    self._fail(item.id, "write", exc, item.path)
            with self._lock:
                self.report.succeeded += ok
            self._tick(ok)

        def submit(done: list[tuple[Item, PredictionSet]]) -> None:
            for start in range(0, len(done), self.io_chunk):
                chunk = done[start : start + self.io_chunk]
                in_flight.acquire()
                fut = write_pool.submit(self._write_chunk, chunk)
                fut.add_done_callback(lambda f, c=chunk: finish(f, c))

        try:
            while True:
                if batches.empty():  # predict waits for input: prepare more at once
                    self._resize_window(self.io_chunk)
                if (batch := batches.get()) is _DONE:
                    break
                held = sum(size for _, _, size in batch)
                done: list[tuple[Item, PredictionSet]] = []
                for item, result in self._predict_batch(batch):
                    if isinstance(result, BaseException):
                        self._fail(item.id, "predict", result, item.path)
                        continue
                    try:
                        pset = self._stamp(item, result)
                    except Exception as exc:  # noqa: BLE001 - recorded per item
                        self._fail(item.id, "predict", exc, item.path)
                        continue
                    if self.on_result is not None:
                        self.on_result(item, pset)
                    done.append((item, pset))
                del batch  # its inputs are no longer needed: give their bytes back
                if self.budget is not None:
                    self.budget.release(held)
                submit(done)
        except Exception as exc:  # noqa: BLE001 - recorded in the report (which is still written), then raised
            self.report.fatal_error = _error_text(exc)
            raise
        finally:
            self._stop.set()
            write_pool.shutdown(wait=True)
            prepare_pool.shutdown(wait=True, cancel_futures=True)
            producer.join()
            if self._bar is not None:
                self._bar.close()
        self.report.batch_size_used = self.effective_batch
        self.report.duration_s = time.monotonic() - start
        r = self.report
        unaccounted = r.total - r.succeeded - r.skipped - r.failed
        if unaccounted and r.fatal_error is None:  # every listed item must end written, skipped or failed
            r.fatal_error = f"{unaccounted} of {r.total} items have no outcome"
        return self.report


def _positive_or_none(cfg: Mapping[str, Any], key: str) -> float | None:
    """A positive number from the configuration, or None when it is unset, 0 or None (off)."""
    value = cfg.get(key)
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValidationError("configuration", key, f"must be a positive number or null, got {value!r}")
    return value


def _bound_model(adapter: "BaseModelAdapter") -> Model:
    if adapter.model_entity is None:
        raise ValueError("the adapter has no model: call load_from_model(model) before predicting")
    return adapter.model_entity


def run_predictions(
    adapter: "BaseModelAdapter",
    source: ItemSource,
    *,
    batch_size: int | None = None,
    resume: bool = False,
    write: bool = True,
    on_result: ResultCallback | None = None,
    progress: bool = False,
    run_id: str | None = None,
    save_report: bool = True,
    resume_run: bool = False,
    on_finish: Callable[[PredictionReport], None] | None = None,
) -> PredictionReport:
    """Run the streaming prediction over ``(item_id, Item or error)`` pairs; returns the report.

    ``on_finish``: called with the finished report before it is stored (the CLI prints it
    there, so a failure to store it loses nothing).

    ``resume``: skip items that have a prediction set from this model version (any run).
    ``resume_run``: skip items that have one from this ``run_id`` (a retried attempt of the run).
    """
    model = _bound_model(adapter)
    size = int(batch_size or adapter.configuration.get("batch_size") or 16)
    if size < 1:
        raise ValidationError("predict", "batch_size", f"must be >= 1, got {size}")
    run = _Run(adapter, model, batch_size=size, resume=resume, write=write, on_result=on_result, progress=progress, run_id=run_id, resume_run=resume_run)
    try:
        report = run.run(source)
    except Exception:
        if save_report and write:  # what the run did so far is still worth keeping
            try:
                adapter.registry.store.put_json(layout.run_prefix(run.report.run_id) + "prediction-report.json", run.report.to_dict())
            except Exception as exc:  # noqa: BLE001 - the run's own error is the one to raise
                log.error("could not store the report of the failed run: %s", _error_text(exc))
        raise
    log.info(report.summary().splitlines()[0])
    if on_finish is not None:
        on_finish(report)
    if save_report and write:
        adapter.registry.store.put_json(layout.run_prefix(report.run_id) + "prediction-report.json", report.to_dict())
    return report


def predict_items(adapter: "BaseModelAdapter", items: Iterable[Item], *, batch_size: int | None = None, **kwargs: Any) -> PredictionReport:
    """Predict the given items (any iterable, consumed lazily)."""
    source = ((getattr(it, "id", repr(it)), it) for it in items)
    return run_predictions(adapter, source, batch_size=batch_size, **kwargs)


def predict_dataset(
    adapter: "BaseModelAdapter",
    dataset: Dataset | str,
    *,
    filters: Filters | Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    **kwargs: Any,
) -> PredictionReport:
    """Predict every item of ``dataset`` matching ``filters``, streaming the listing."""
    ds = resolve_dataset(adapter, dataset)
    return run_predictions(adapter, adapter.registry.iter_item_results(ds, filters), batch_size=batch_size, **kwargs)
