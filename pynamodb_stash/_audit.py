"""Audit events: who encrypted, decrypted or hashed what, and when, without ever recording the data.

Every model operation emits one event per kind of work it did (``encrypt``, ``decrypt``, ``hmac``):
the model, the logical table, the attribute names touched, the key ids used, the number of items, the
outcome and the duration, with the metadata of the enclosing :func:`audit` blocks. An event never holds
a value, a ciphertext, an HMAC or key material.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from contextvars import ContextVar
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Protocol, Tuple, Union

from .exceptions import StashError, report_error

AUDIT_LOGGER = "pynamodb_stash.audit"
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_metadata: ContextVar[Mapping[str, Any]] = ContextVar("pynamodb_stash_audit_metadata", default=_EMPTY)


class AuditSink(Protocol):
    def emit(self, event: AuditEvent) -> None: ...


class AuditEvent:
    """One audit event. ``as_dict()`` gives its JSON form (the schema in docs/audit.md)."""

    __slots__ = ("time", "operation", "model", "table", "_attributes", "_key_ids", "items", "outcome",
                 "duration_ms", "metadata")

    def __init__(
        self, operation: str, model: str, table: str, attributes: Iterable[str], key_ids: Iterable[str],
        items: int, outcome: str, duration_ms: float, metadata: Mapping[str, Any], at: Optional[float] = None,
    ) -> None:
        self.time = time.time() if at is None else at
        self.operation = operation
        self.model = model
        self.table = table
        self._attributes = attributes
        self._key_ids = key_ids
        self.items = items
        self.outcome = outcome
        self.duration_ms = duration_ms
        self.metadata = metadata

    @property
    def attributes(self) -> Tuple[str, ...]:
        """The attribute names touched, sorted (computed when read: events are cheap to make)."""
        return tuple(sorted(set(self._attributes)))

    @property
    def key_ids(self) -> Tuple[str, ...]:
        return tuple(sorted(set(self._key_ids)))

    def as_dict(self) -> Dict[str, Any]:
        return {
            "time": datetime.fromtimestamp(self.time, timezone.utc).isoformat(),
            "operation": self.operation,
            "model": self.model,
            "table": self.table,
            "attributes": list(self.attributes),
            "key_ids": list(self.key_ids),
            "items": self.items,
            "outcome": self.outcome,
            "duration_ms": round(self.duration_ms, 3),
            "metadata": dict(self.metadata),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), default=str, separators=(",", ":"))

    def __repr__(self) -> str:
        return f"AuditEvent({self.operation} {self.model} x{self.items} {self.outcome})"


class LoggingSink:
    """The default sink: one JSON line per event on the ``pynamodb_stash.audit`` logger, at INFO.

    Silent unless the application configures logging; the JSON is built only if a handler will see it.
    """

    def __init__(self, logger: Optional[logging.Logger] = None) -> None:
        self.logger = logger or logging.getLogger(AUDIT_LOGGER)

    def emit(self, event: AuditEvent) -> None:
        logger = self.logger
        if logger.isEnabledFor(logging.INFO):
            # makeRecord + handle, not info(): info() walks the stack to find its caller, on every event.
            record = logger.makeRecord(logger.name, logging.INFO, "pynamodb_stash", 0, "%s", (_Lazy(event),), None)
            logger.handle(record)


class _Lazy:
    __slots__ = ("event",)

    def __init__(self, event: AuditEvent) -> None:
        self.event = event

    def __str__(self) -> str:
        return self.event.to_json()


class _Settings:
    enabled = True
    sink: Union[AuditSink, Callable[[AuditEvent], None]] = LoggingSink()
    logger = logging.getLogger("pynamodb_stash")


settings = _Settings()


@contextlib.contextmanager
def audit(**metadata: Any) -> Iterator[None]:
    """Attach ``metadata`` (``sub="user-123"``, ``action="signup"``, ...) to every audit event raised in
    the block, in this thread or asyncio task. Nested blocks merge, the inner one winning."""
    token = _metadata.set(MappingProxyType({**_metadata.get(), **metadata}))
    try:
        yield
    finally:
        _metadata.reset(token)


class Scope:
    """What one model operation did, gathered and emitted as one event per kind of work when it ends."""

    __slots__ = ("model", "table", "started", "work", "outcome")

    def __init__(self, model: str, table: str) -> None:
        self.model = model
        self.table = table
        self.started = time.perf_counter()
        self.work: Dict[str, List[Any]] = {}
        self.outcome = "ok"

    def add(self, operation: str, attributes: Iterable[str], key_ids: Iterable[str], items: int) -> None:
        entry = self.work.get(operation)
        if entry is None:
            self.work[operation] = [set(attributes), set(key_ids), items]
        else:
            entry[0].update(attributes)
            entry[1].update(key_ids)
            entry[2] += items

    def close(self) -> None:
        work, self.work = self.work, {}
        duration = (time.perf_counter() - self.started) * 1000
        for operation, (attributes, key_ids, items) in work.items():
            _emit(AuditEvent(operation, self.model, self.table, attributes, key_ids, items, self.outcome,
                             duration, _metadata.get()))


current_scope: ContextVar[Optional[Scope]] = ContextVar("pynamodb_stash_audit_scope", default=None)


def wanted() -> bool:
    """Whether an event would go anywhere: callers skip gathering its fields otherwise (the common case of
    the default sink with logging not configured costs one check per item)."""
    if not settings.enabled:
        return False
    if current_scope.get() is not None:
        return True
    sink = settings.sink
    return not isinstance(sink, LoggingSink) or sink.logger.isEnabledFor(logging.INFO)


def record(
    operation: str, model: str, table: str, attributes: Iterable[str], key_ids: Iterable[str],
    items: int = 1, outcome: str = "ok",
) -> None:
    """Count work into the current operation, or emit it as an event of its own when there is none."""
    if not settings.enabled:
        return
    scope = current_scope.get()
    if scope is not None:
        scope.add(operation, attributes, key_ids, items)
        if outcome != "ok":
            scope.outcome = outcome
        return
    _emit(AuditEvent(operation, model, table, attributes, key_ids, items, outcome, 0.0, _metadata.get()))


@contextlib.contextmanager
def operation(model: str, table: str) -> Iterator[Scope]:
    """One model operation: its work becomes one event per kind when the block ends (an error, its code)."""
    scope = Scope(model, table)
    token = current_scope.set(scope)
    try:
        yield scope
    except Exception as error:
        scope.outcome = getattr(error, "code", type(error).__name__)
        if isinstance(error, StashError):
            report_error(error)
        raise
    finally:
        current_scope.reset(token)
        if settings.enabled:
            scope.close()


def _emit(event: AuditEvent) -> None:
    sink = settings.sink
    try:
        if callable(getattr(sink, "emit", None)):
            sink.emit(event)  # type: ignore[union-attr]
        else:
            sink(event)  # type: ignore[operator]
    except Exception as error:  # a sink never breaks the data operation
        settings.logger.warning("pynamodb-stash: the audit sink failed (%s)", type(error).__name__)
        report_error(error)
