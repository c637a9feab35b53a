"""Exceptions raised by the framework, each naming the thing that is wrong."""

from __future__ import annotations


class AdapterError(Exception):
    """Base class of every error the framework raises on purpose."""


class ValidationError(AdapterError, ValueError):
    """An entity field (or an input) has a bad value; ``field`` names it."""

    def __init__(self, entity: str, field: str, message: str) -> None:
        self.entity = entity
        self.field = field
        self.message = message
        super().__init__(f"{entity}.{field}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:  # pickled whole, e.g. back from a worker process
        return type(self), (self.entity, self.field, self.message)


class RecordMismatchError(ValidationError):
    """A record says it is another record than the one its key stands for (another item's, dataset's, model's or version's)."""


class NotFoundError(AdapterError, KeyError):
    """A dataset, item, model or stored object does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "not found"


class ConflictError(AdapterError):
    """A unique name is already taken, or a write lost a race."""


class VersionConflictError(ConflictError):
    """A write based on one version of a model found another one current: the other writer's version stands.

    Nothing of the refused write becomes visible, and the model's status is left alone
    (it belongs to the version that won).
    """


class StoreError(AdapterError):
    """The object store failed or refused an operation."""


class InvalidKeyError(StoreError, ValueError):
    """A store key is empty, absolute, or escapes its prefix."""


class AdapterContractError(AdapterError):
    """The user's adapter broke its contract (wrong result count or type, ...)."""


class AdapterHookError(AdapterContractError):
    """A hook of the user's adapter raised a ``BaseException`` that is not an ``Exception``.

    ``SystemExit`` (``sys.exit`` in adapter code), a ``KeyboardInterrupt`` that no Ctrl-C
    caused, or a custom ``BaseException``: it fails the hook like any error would. ``hook``
    names it (``MyAdapter.predict``), ``raised`` says what it raised (``SystemExit: 3``).
    """

    def __init__(self, hook: str, raised: str) -> None:
        self.hook = hook
        self.raised = raised
        super().__init__(f"adapter hook {hook} raised {raised}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # pickled whole, e.g. back from a worker process
        return type(self), (self.hook, self.raised)
