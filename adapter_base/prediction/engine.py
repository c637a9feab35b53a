"""The streaming prediction pipeline: prepare -> predict -> write, with a per-item report.

Three stages overlap: a producer thread lists items and prepares them on an I/O pool
(``prepare_item_func``) into batches; the calling thread runs ``predict``; the result
writer stores each item's ``PredictionSet`` on a pool of its own. Queues and windows are
bounded (``Backpressure``), so memory does not grow with the number of items. A failing
item or batch is recorded (item id, stage, error) and the rest go on; so is a call that
runs past its timeout. A model deleted under the run stops it at the next batch
(``DeletionWatch``). ``run_predictions`` is the entry point of the wrapper functions.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..concurrency import Reservation, WorkerPool, ordered_map
from ..entities import Item, Model
from ..errors import StoreError, ValidationError
from ..hooks import AdapterHooks
from ..media import nbytes
from ..registry import layout
from ..registry.identity import mismatch
from .backpressure import Backpressure
from .contract import call_predict, check_results, prepare_input
from .decoders import ProcessDecoder
from .deletion import DeletionWatch
from .failfast import FailFast
from .oom import BatchHalving
from .options import PredictionOptions
from .batch_feed import BatchFeed
from .batch_reader import BatchReader
from .batch_release import BatchRelease
from .pools import plan_pools, uses_default_prepare, uses_default_read
from .report import PredictionReport, Tally, error_text
from .tasks import PREDICT, Task
from .writer import Collector, PredictShare, ResultWriter, registry_store, started_write_process

log = logging.getLogger(__name__)

#: What a run predicts: ``(item id, Item or the error listing it)`` pairs.
ItemSource = Iterable[tuple[str, "Item | BaseException"]]
#: A prepared item on its way to ``predict``: the engine's own Item record, the model input, its bytes.
Prepared = tuple[Item, Any, int]

_DONE = object()
_SKIP = object()


class PredictionRun:
    """One streaming prediction run of ``adapter``'s bound ``model``."""

    def __init__(
        self,
        adapter: AdapterHooks,
        model: Model,
        options: PredictionOptions,
        *,
        resume: bool = False,
        resume_run: bool = False,
        write: bool = True,
        on_result: Collector | None = None,
        progress: bool = False,
        run_id: str | None = None,
        task: Task = PREDICT,
        dataset_id: str | None = None,
        expected_total: int | None = None,
        about: Mapping[str, Any] | None = None,
    ) -> None:
        """``expected_total``: how many items the source holds, when known (the progress bar's total);
        ``about``: report fields saying what the run was (kind, dataset_id, dataset_name, filters)."""
        self.adapter = adapter
        self.task = task
        self.model = model
        self.dataset_id = dataset_id
        self.options = options
        self.resume = resume
        self.resume_run = resume_run
        self.write = write
        self.on_result = on_result
        self.report = PredictionReport(
            run_id=run_id or uuid.uuid4().hex[:12],
            model_id=model.id,
            model_name=model.name,
            model_version=model.version,
            batch_size=options.batch_size,
            **dict(about or {}),
        )
        self.progress = progress
        self.expected_total = expected_total
        self.fail_fast = FailFast(options.fail_fast_batches)
        self._stopped_early = False
        self._listed_all = False  # the source was listed to its end
        self.backpressure = Backpressure(options)
        self.halving = BatchHalving(options.batch_size, adaptive=options.adaptive_batch_size)
        self._stop = threading.Event()
        self._decoder: ProcessDecoder | None = None
        self._batch_reader: BatchReader | None = None
        self.deletion = DeletionWatch(adapter.registry.store, model, self.report.run_id, dataset_id)
        self._reserving = False  # the default loader reserves what decoding holds in the byte budget
        self._reservations: dict[int, Reservation] = {}  # by the item's number in the listing
        self._dealt_with = 0  # the producer has dealt with every item numbered below this
        self._batch: list[Prepared] = []  # the batch being filled (the producer's; flushed by a waiting decode too)
        self._batch_lock = threading.Lock()
        self._batches: queue.Queue[Any] = queue.Queue(maxsize=options.prefetch_batches)
        self.predict_share = PredictShare()  # where the writes go on S3 (``Pools.writes_follow_predict``)

    def run(self, source: ItemSource) -> PredictionReport:
        """Predict every item of ``source``; the report, or the error that ended the run (recorded in it too)."""
        start = time.monotonic()
        opts = self.options
        tally = Tally(self.report, progress=self.progress, total=self.expected_total)
        batches = self._batches
        default_prepare = uses_default_prepare(self.adapter)
        self._reserving = default_prepare and self.backpressure.budget is not None
        store = self.adapter.registry.store
        pools = plan_pools(
            opts, store, default_prepare=default_prepare, resume=self.resume or self.resume_run, default_read=uses_default_read(self.adapter)
        )
        log.debug("pools of this run: %s", pools)
        # forked before this run's threads start
        self._decoder = ProcessDecoder(pools.decode_processes).start() if pools.decode_processes else None
        if pools.batch_processes:
            self._batch_reader = BatchReader(store, pools.batch_processes, max_bytes=opts.prepared_bytes_budget, fetch_threads=pools.fetch_threads).start()
            self._reserving = False  # each read reserves what it may hold (``BatchFeed``)
        remote = (  # forked now, before the run's threads start
            started_write_process(self.adapter.registry, self.task, self.dataset_id, processes=pools.write_processes, threads=pools.write_threads)
            if self.write
            else None
        )
        prepare_pool = WorkerPool(pools.prepare_threads, thread_name_prefix="prepare")
        writer = ResultWriter(
            registry_store(self.adapter.registry, self.task, self.dataset_id) if self.write else None,
            collect=self.on_result,
            workers=pools.write_threads,
            chunk=opts.io_chunk,
            on_written=self._on_written(tally),
            backlog=max(4 * pools.write_threads, opts.prefetch_batches * opts.batch_size),
            remote=remote,
            remote_chunk=opts.batch_size,
            route=self.predict_share.busy if pools.writes_follow_predict else None,
        )
        producer = threading.Thread(
            target=self._produce_batches if self._batch_reader else self._produce,
            args=(self._own_items(source), batches, prepare_pool, tally),
            name="producer",
            daemon=True,
        )
        release = BatchRelease(self.backpressure.release)
        producer.start()
        try:
            while True:
                if batches.empty():
                    self.backpressure.starved()
                if (batch := batches.get()) is _DONE:
                    break
                self.deletion.check()
                held = sum(size for _, _, size in batch)
                self._predict(batch, writer, tally)
                release.release(batch, held)  # its inputs are no longer needed: they go, then their bytes
                del batch
                writer.flush()
                if self._stopped_early:
                    break
            writer.close()
            self.deletion.check(now=True)  # the last sets are stored: was the model deleted meanwhile?
        except Exception as exc:  # noqa: BLE001 - recorded in the report (which is still written), then raised
            self.report.fatal_error = error_text(exc)
            raise
        finally:
            self._stop.set()
            release.close()
            writer.close()
            self.deletion.take_back()
            prepare_pool.shutdown(wait=True, cancel_futures=True)
            producer.join()
            tally.close()
        r = self.report
        if self._stopped_early and not (self._listed_all and r.total == r.succeeded + r.skipped + r.failed):
            r.fatal_error = self.fail_fast.reason()  # items were left: the run did not finish
            log.error("%s", r.fatal_error)
        self.report.batch_size_used = self.halving.size
        self.report.duration_s = time.monotonic() - start
        self.report.check_accounted()
        return self.report

    # --- the dataset being predicted; what the writer reports back ---------------------------

    def _own_items(self, source: ItemSource) -> ItemSource:
        """``source``, where an item of another dataset than the one predicted becomes that item's error."""
        prefix = layout.item_records_prefix(self.dataset_id) if self.dataset_id is not None else ""
        for item_id, item in source:
            if self.dataset_id is not None and isinstance(item, Item):
                error = mismatch(item, f"{prefix}{item_id}.json", id=item_id, dataset_id=self.dataset_id)
                if error is not None:
                    yield item_id, error
                    continue
            yield item_id, item

    def _on_written(self, tally: Tally) -> Callable[[Sequence[Item], Sequence[BaseException | None]], None]:
        """What the writer reports back to: the tally, and the deletion watch when sets are stored."""

        def written(items: Sequence[Item], errors: Sequence[BaseException | None]) -> None:
            if self.write:
                self.deletion.stored(items, errors)
            tally.written(items, errors)

        return written

    # --- stage 1: list + prepare (producer thread) ------------------------------------

    def _already_predicted(self, item: Item) -> bool:
        """True when ``resume`` (any run) or ``resume_run`` (this run id) finds the item's set of this model version."""
        if not (self.resume or self.resume_run):
            return False
        try:
            done = self.task.get(self.adapter.registry, item, self.model)
        except (StoreError, ValidationError) as exc:  # an unreadable set is no completion record
            log.warning("item %s: running %s again, its stored result is unreadable: %s", item.id, self.task.hook, error_text(exc))
            return False
        return done is not None and done.model_version == self.model.version and (self.resume or done.run_id == self.report.run_id)

    def _prepare(self, entry: tuple[int, tuple[str, Item | BaseException]]) -> Any:
        turn, (_, item) = entry
        try:
            if isinstance(item, BaseException):
                raise item
            if self._already_predicted(item):
                return _SKIP
            return prepare_input(
                self.adapter,
                item,
                image_decoder=self._decoder.decode_image if self._decoder else None,
                reserve=self._reserver(turn) if self._reserving else None,
            )
        finally:
            self.backpressure.pass_turn(turn)  # reserved by now, or never will

    def _reserver(self, turn: int) -> Callable[[int], Callable[[int], None]]:
        """The ``reserve`` of item number ``turn``: what its decoding holds, in the byte budget, before it decodes."""

        def reserve(size: int) -> Callable[[int], None]:
            reservation = self.backpressure.reserve(turn, size, cancelled=self._stop.is_set, waiting=self._flush_partial)
            if reservation is None:
                raise RuntimeError("the run stopped or gave up on the item before it was decoded")
            self._reservations[turn] = reservation
            if turn < self._dealt_with:  # timed out while it waited: the producer has moved on
                reservation.drop()
            return reservation.shrink

        return reserve

    def _admit(self, turn: int, item: Item, prepared: Any, size: int, tally: Tally) -> int | None:
        """The bytes the byte budget holds for the item once it does; None when it fails or the run stops.

        An item whose decoding reserved its bytes keeps what it reserved. Otherwise a partial
        batch is handed to ``predict`` before waiting, so the bytes it holds come back.
        """
        if (reservation := self._reservations.pop(turn, None)) is not None:
            self.backpressure.observe(max(size, reservation.peak))
            return reservation.take()
        self.backpressure.observe(size)
        if (why := self.backpressure.oversize(size)) is not None:
            tally.failed(item.id, "prepare", f"the prepared input of item {item.id} ({item.path}) {why}", item.path)
            return None
        if not self.backpressure.fits(size):
            self._flush_partial()
        return size if self.backpressure.hold(size, cancelled=self._stop.is_set) else None

    def _flush_partial(self) -> None:
        """Hand the batch being filled to ``predict`` now, so the bytes it holds come back."""
        with self._batch_lock:
            if self._batch:
                batch, self._batch = self._batch, []
                self._put(self._batches, batch)

    def _add(self, prepared: Prepared) -> None:
        """Put a prepared item in the batch being filled; hand the batch on once full."""
        with self._batch_lock:
            self._batch.append(prepared)
            if len(self._batch) >= self.options.batch_size:
                batch, self._batch = self._batch, []
                self._put(self._batches, batch)

    def _produce(self, source: ItemSource, out: "queue.Queue[Any]", pool: WorkerPool, tally: Tally) -> None:
        timeout_s = self.options.prepare_timeout_s
        try:
            prepared = ordered_map(
                self._prepare,
                enumerate(source),  # an item's number is its turn to reserve bytes
                pool=pool,
                window=self.backpressure.window,  # read before each refill
                # one item a task while decoding reserves bytes: an item decoded waits in its task's results
                # until the whole task is done, holding bytes the next item of the task may be waiting for
                chunk=1 if self._reserving else self.options.io_chunk,
                timeout_s=timeout_s,
                timeout_message=f"prepare_item_func did not return within prepare_timeout_s={timeout_s}",
            )
            for (turn, (item_id, item)), result in prepared:
                if self._stop.is_set():
                    return
                if _listed(tally, item_id, item) is None:
                    pass  # failed by name at the listing
                elif isinstance(result, BaseException):
                    self.backpressure.observe(0)
                    tally.failed(item.id, "prepare", result, item.path)
                elif result is _SKIP:
                    self.backpressure.observe(0)
                    tally.skipped()
                elif (held := self._admit(turn, item, result, nbytes(result), tally)) is not None:
                    self._add((item, result, held))
                self._give_up(turn)
                result = None  # the batch holds it: once predicted, its memory goes, though this thread waits for the next
            self._listed_all = True
            self._flush_partial()
        except BaseException as exc:  # noqa: BLE001 - the listing itself failed: end the run
            if self._stop.is_set():  # the run ended first (its pools shut down): its own end is what it records
                return
            self.report.fatal_error = error_text(exc)
            log.error("listing items failed, stopping: %s", self.report.fatal_error)
        finally:
            self._put(out, _DONE)

    def _produce_batches(self, source: ItemSource, out: "queue.Queue[Any]", pool: WorkerPool, tally: Tally) -> None:
        """``_produce`` with the reading and preparing done in worker processes (``BatchFeed``), up to a batch per read.

        A read's items fail together only when the read does (a worker died, the batch's deadline of
        ``prepare_timeout_s`` per item passed); otherwise each item succeeds or fails alone.
        """
        assert self._batch_reader is not None

        def admit(item: Item, value: Any, size: int) -> None:
            self.backpressure.observe(size)
            self._add((item, value, size))

        def fail(item: Item, error: BaseException | str) -> None:
            self.backpressure.observe(0)
            tally.failed(item.id, "prepare", error, item.path)

        feed = BatchFeed(
            self._batch_reader, batch_size=self.options.batch_size, prefetch_batches=self.options.prefetch_batches, budget=self.backpressure.budget, timeout_s=self.options.prepare_timeout_s,
            admit=admit, fail=fail, flush=self._flush_partial, stopped=self._stop.is_set,
        )  # fmt: skip
        try:
            for item_id, item in source:
                if self._stop.is_set():
                    return
                if _listed(tally, item_id, item) is not None and not feed.add(item):
                    return
            self._listed_all = True
            feed.finish()
            self._flush_partial()
        except BaseException as exc:  # noqa: BLE001 - the listing itself failed: end the run
            self.report.fatal_error = error_text(exc)
            log.error("listing items failed, stopping: %s", self.report.fatal_error)
        finally:
            feed.cancel()
            self._put(out, _DONE)

    def _give_up(self, turn: int) -> None:
        """Item number ``turn`` is dealt with: bytes it still has reserved (it failed, or timed out while decoding) go back."""
        self._dealt_with = turn + 1
        self.backpressure.pass_turn(turn)
        if (reservation := self._reservations.pop(turn, None)) is not None:
            reservation.drop()

    def _put(self, out: "queue.Queue[Any]", value: Any) -> None:
        if out.full():
            self.backpressure.backlogged()
        while not self._stop.is_set():
            try:
                out.put(value, timeout=0.2)
                return
            except queue.Full:
                continue

    # --- stage 2: predict (calling thread), results to the writer ----------------------

    def _predict(self, batch: list[Prepared], writer: ResultWriter, tally: Tally) -> None:
        """Predict ``batch`` (in smaller calls after an out-of-memory error); each result stamped and accepted by ``writer``.

        Results are paired with the engine's own record of the batch, in the order given.
        """

        def call(chunk: list[Prepared]) -> Any:
            return call_predict(
                self.adapter, [x for _, x, _ in chunk], [it for it, _, _ in chunk], self.options.predict_timeout_s, self.task.hook, on_cpu=self.predict_share.add
            )

        errors: set[str | None] = set()  # what each call on a part of the batch ended with
        for chunk, results in self.halving.run(batch, call):
            items = [it for it, _, _ in chunk]
            error = results if isinstance(results, BaseException) else check_results(results, len(chunk))
            errors.add(None if error is None else error_text(error))
            for n, item in enumerate(items):
                if error is not None:
                    tally.failed(item.id, self.task.hook, error, item.path)
                    continue
                try:
                    pset = self.task.record(self.model, self.report.run_id, item, results[n])
                except Exception as exc:  # noqa: BLE001 - recorded per item
                    tally.failed(item.id, self.task.hook, exc, item.path)
                    continue
                writer.accept(item, pset)
        if self.fail_fast.record(next(iter(errors)) if len(errors) == 1 else None):
            self._stopped_early = True


def _listed(tally: Tally, item_id: Any, item: Any) -> Item | None:
    """Count one entry of the listing; the ``Item``, or None once it is failed by name (an unreadable
    record at ``list``, anything else at ``input``)."""
    tally.listed()
    if isinstance(item, BaseException):
        tally.failed(item_id, "list", item)
        return None
    if not isinstance(item, Item):
        tally.failed(str(item_id), "input", f"expected an Item, got {type(item).__name__}")
        return None
    return item


def run_predictions(
    adapter: AdapterHooks,
    source: ItemSource,
    *,
    batch_size: int | None = None,
    resume: bool = False,
    write: bool = True,
    on_result: Collector | None = None,
    progress: bool = False,
    run_id: str | None = None,
    save_report: bool = True,
    resume_run: bool = False,
    on_finish: Callable[[PredictionReport], None] | None = None,
    task: Task = PREDICT,
    dataset_id: str | None = None,
    keep_going: bool = False,
    expected_total: int | None = None,
    about: Mapping[str, Any] | None = None,
) -> PredictionReport:
    """Run the streaming prediction over ``(item_id, Item or error)`` pairs; returns the report.

    ``task``: ``PREDICT`` (prediction sets) or ``EMBED`` (``embed``'s feature vectors, one per item).

    ``on_finish``: called with the finished report before it is stored (the CLI prints it
    there, so a failure to store it loses nothing).

    ``resume``: skip items that have a prediction set (an embedding) from this model version (any run).
    ``resume_run``: skip items that have one from this ``run_id`` (a retried attempt of the run).
    ``dataset_id``: the dataset being predicted: sets are stored under it, and an item of
    another dataset fails (stage ``list``) instead of being predicted.
    ``keep_going``: predict every batch even when the first ones all fail the same way (``fail_fast_batches``).
    ``expected_total``: the number of items, when known (the progress bar's total).
    """
    if adapter.bound_model is None:
        raise ValueError("the adapter has no model: call load_from_model(model) before predicting")
    options = PredictionOptions.from_configuration(adapter.configuration, batch_size=batch_size)
    if keep_going:
        options = replace(options, fail_fast_batches=None)
    run = PredictionRun(
        adapter, adapter.bound_model, options, resume=resume, resume_run=resume_run, write=write, on_result=on_result, progress=progress, run_id=run_id,
        task=task, dataset_id=dataset_id, expected_total=expected_total, about=about,
    )  # fmt: skip
    store = adapter.registry.store
    try:
        report = run.run(source)
    except Exception:
        if save_report and write and not run.deletion.deleted:  # what the run did so far is still worth keeping
            try:
                store.put_json(layout.prediction_report(run.report.run_id), run.report.to_dict())
            except Exception as exc:  # noqa: BLE001 - the run's own error is the one to raise
                log.error("could not store the report of the failed run: %s", error_text(exc))
        raise
    log.info(report.summary())  # counts, then one line per failed item
    if on_finish is not None:
        on_finish(report)
    if save_report and write:
        store.put_json(layout.prediction_report(report.run_id), report.to_dict())
    return report
