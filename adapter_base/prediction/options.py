"""The prediction engine's tuning knobs: one typed object, built once from the configuration.

Every knob is a configuration key of the same name; its default is the framework's
(``adapter_base.config.FRAMEWORK_DEFAULTS``), which the registry's I/O pool shares.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from ..config import FRAMEWORK_DEFAULTS, positive_or_none
from ..errors import ValidationError


@dataclass(frozen=True)
class PredictionOptions:
    """How a prediction run batches, overlaps its stages and bounds its memory and waits."""

    batch_size: int = FRAMEWORK_DEFAULTS["batch_size"]
    """Items per ``predict`` call (before any halving after an out-of-memory error)."""

    prefetch_batches: int = FRAMEWORK_DEFAULTS["prefetch_batches"]
    """Prepared batches that may wait for ``predict``; the prepare window never exceeds this many batches."""

    io_workers: int = FRAMEWORK_DEFAULTS["io_workers"]
    """Requests in flight to a remote store (reads while preparing, and as many writes); the registry's I/O pool defaults to the same.

    On a local store it only caps the thread counts below."""

    prepare_workers: int | None = FRAMEWORK_DEFAULTS["prepare_workers"]
    """Threads reading and preparing items (None: sized from the CPUs and the store, see ``prediction.pools``)."""

    write_workers: int | None = FRAMEWORK_DEFAULTS["write_workers"]
    """Threads writing prediction sets (None: 2 on a local store, ``io_workers`` on a remote one)."""

    decode_processes: int | None = FRAMEWORK_DEFAULTS["decode_processes"]
    """Worker processes decoding images for the default ``prepare_item_func``, arrays back through shared memory.

    None: the CPUs less two (up to 8) on 4 CPUs or more, else none; 0: decode on the prepare threads.
    An adapter with its own ``prepare_item_func`` always prepares on the threads."""

    prepare_in_processes: bool | None = FRAMEWORK_DEFAULTS["prepare_in_processes"]
    """Read and prepare each batch in worker processes, handed back in one shared-memory block per batch
    (the default ``prepare_item_func`` only; ``decode_processes`` of them, else one per CPU up to 8).

    None: automatic (``prediction.pools``: on where the store can be reopened by a worker, i.e. a local
    or S3 store opened from its URI and the environment's credentials, on 2 CPUs or more, and the run does
    not resume; each read reserves what it may hold in ``prepared_bytes_budget``); False: never (threads, or ``decode_processes``
    decoding item by item); True: whenever the adapter keeps the default preparation and the store can be
    reopened. Without them, a batch's items that run past ``prepare_timeout_s`` each fail the whole batch's
    deadline (``prepare_timeout_s`` x its items) instead of their own."""

    write_in_processes: bool | None = FRAMEWORK_DEFAULTS["write_in_processes"]
    """Store the run's records (prediction sets, embeddings) from a worker process with the store opened anew,
    so that the predicting process spends no CPU or GIL turns on encoding and writing them (``write_process``).

    None: automatic, on 2 CPUs or more where a worker can reopen the store and the registry stores records
    the framework's way: on a local store, always; on S3, two processes sharing ``write_workers`` take a
    batch's records only while ``predict`` keeps its thread on the CPU for a quarter of the run's time or more
    (a model computing here, whose GIL turns the write threads would take), else the write threads here
    do (a model waiting on a device leaves them the GIL). False: never (``write_workers`` threads of this
    process); True: every record, whenever the store can be reopened (S3: two processes sharing
    ``write_workers``). A chunk its process fails to take is written by the threads here."""

    io_chunk: int = FRAMEWORK_DEFAULTS["io_chunk"]
    """Items per I/O-pool task (prepare and write): fewer thread hand-offs, less GIL traffic."""

    adaptive_prefetch: bool = FRAMEWORK_DEFAULTS["adaptive_prefetch"]
    """Widen the prepare window while ``predict`` waits for input, narrow it while batches queue up.

    Off: always prepare ``prefetch_batches`` batches ahead."""

    adaptive_batch_size: bool = FRAMEWORK_DEFAULTS["adaptive_batch_size"]
    """After an out-of-memory error from ``predict``, halve the batch and try again (down to one item)."""

    predict_timeout_s: float | None = FRAMEWORK_DEFAULTS["predict_timeout_s"]
    """A ``predict`` call still running after this long fails its batch (None: wait forever)."""

    prepare_timeout_s: float | None = FRAMEWORK_DEFAULTS["prepare_timeout_s"]
    """A ``prepare_item_func`` call still running after this long fails its item (None: wait forever)."""

    prepared_bytes_budget: int | None = FRAMEWORK_DEFAULTS["prepared_bytes_budget"]
    """Prepared inputs waiting for ``predict`` hold at most about this many bytes; a larger item fails (None: no bound).

    With the default ``prepare_item_func`` it also covers images being decoded: each reserves what its
    decoding holds (``media.ImageHeader.decode_bytes``) before it starts, and one that needs more than the
    whole budget fails from its header."""

    fail_fast_batches: int | None = FRAMEWORK_DEFAULTS["fail_fast_batches"]
    """Stop the run when its first this many ``predict`` calls all fail with the same error (None: run every batch).

    A bug in the adapter then costs a few batches and one line, not a failure per item of the dataset."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "prefetch_batches", "io_workers", "io_chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError("PredictionOptions", name, f"must be a whole number >= 1, got {value!r}")
        for name, lowest in (("prepare_workers", 1), ("write_workers", 1), ("decode_processes", 0), ("fail_fast_batches", 1)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < lowest):
                raise ValidationError("PredictionOptions", name, f"must be a whole number >= {lowest} or None (automatic), got {value!r}")
        for name in ("prepare_in_processes", "write_in_processes"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise ValidationError("PredictionOptions", name, f"must be true, false or None (automatic), got {value!r}")
        for name in ("predict_timeout_s", "prepare_timeout_s", "prepared_bytes_budget"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
                raise ValidationError("PredictionOptions", name, f"must be a positive number or None, got {value!r}")

    @classmethod
    def from_configuration(cls, cfg: Mapping[str, Any], *, batch_size: int | None = None) -> "PredictionOptions":
        """The options an adapter's merged configuration asks for; ``batch_size`` (when given) wins over it.

        An unset, null or 0 count takes its default and a count below 1 is raised to 1; a
        timeout or budget of null or 0 means none. Anything else that is not a number is
        an error naming its key.
        """
        size = _whole("batch_size", batch_size or cfg.get("batch_size") or cls.batch_size)
        if size < 1:
            raise ValidationError("predict", "batch_size", f"must be >= 1, got {size}")
        budget = positive_or_none(cfg, "prepared_bytes_budget")
        return cls(
            batch_size=size,
            prefetch_batches=_count(cfg, "prefetch_batches"),
            io_workers=_count(cfg, "io_workers"),
            io_chunk=_count(cfg, "io_chunk"),
            prepare_workers=_optional_count(cfg, "prepare_workers", lowest=1),
            write_workers=_optional_count(cfg, "write_workers", lowest=1),
            decode_processes=_optional_count(cfg, "decode_processes", lowest=0),
            prepare_in_processes=_optional_bool(cfg, "prepare_in_processes"),
            write_in_processes=_optional_bool(cfg, "write_in_processes"),
            adaptive_prefetch=bool(cfg.get("adaptive_prefetch", cls.adaptive_prefetch)),
            adaptive_batch_size=bool(cfg.get("adaptive_batch_size", cls.adaptive_batch_size)),
            predict_timeout_s=positive_or_none(cfg, "predict_timeout_s"),
            prepare_timeout_s=positive_or_none(cfg, "prepare_timeout_s"),
            prepared_bytes_budget=int(budget) if budget else None,
            fail_fast_batches=_optional_count(cfg, "fail_fast_batches", lowest=0) or None if "fail_fast_batches" in cfg else cls.fail_fast_batches,  # 0 or null: off
        )

    def to_configuration(self) -> dict[str, Any]:
        """The configuration keys (and values) these options stand for."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _whole(key: str, value: Any) -> int:
    """``value`` as an int; an error naming ``key`` when it is not a number."""
    if isinstance(value, bool):
        raise ValidationError("configuration", key, f"must be a whole number, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError("configuration", key, f"must be a whole number, got {value!r}") from None


def _count(cfg: Mapping[str, Any], key: str) -> int:
    """A count of at least 1 from the configuration; unset, null or 0 take the default."""
    return max(1, _whole(key, cfg.get(key) or getattr(PredictionOptions, key)))


def _optional_count(cfg: Mapping[str, Any], key: str, *, lowest: int) -> int | None:
    """A count of at least ``lowest`` from the configuration, or None (automatic) when unset or null."""
    value = cfg.get(key)
    if value is None:
        return None
    count = _whole(key, value)
    if count < lowest:
        raise ValidationError("configuration", key, f"must be a whole number >= {lowest} or null (automatic), got {value!r}")
    return count


def _optional_bool(cfg: Mapping[str, Any], key: str) -> bool | None:
    """true or false from the configuration, or None (automatic) when unset or null."""
    value = cfg.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ValidationError("configuration", key, f"must be true, false or null (automatic), got {value!r}")
