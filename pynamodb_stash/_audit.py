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
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Protocol,
    Tuple,
    Union,
)

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

    Silent unless the application configures logging: an event becomes a ``logging.LogRecord`` only when
    a handler would receive it (see :func:`_delivers`), and its JSON is built only when a handler formats it.
    """

    def __init__(self, logger: Optional[logging.Logger] = None) -> None:
        self.logger = logger or logging.getLogger(AUDIT_LOGGER)

    def emit(self, event: AuditEvent) -> None:
        logger = self.logger
        if _delivers(logger):
            # makeRecord + handle, not info(): info() walks the stack to find its caller, on every event.
            record = logger.makeRecord(logger.name, logging.INFO, "pynamodb_stash", 0, "%s", (_Lazy(event),), None)
            logger.handle(record)


def _delivers(logger: logging.Logger) -> bool:
    """Whether an INFO record on ``logger`` would reach a handler, as ``Logger.handle`` would pass it on.

    False when the logger is not enabled for INFO (one cached check), and when every handler on the way up
    to the root (while loggers propagate) is a ``NullHandler`` or set above INFO, with no filter on the
    logger itself (a filter may act on the record, so it counts as a listener). With no handler at all,
    ``logging.lastResort`` decides, as it does for the record. Handlers added at any time count at once:
    nothing is cached but what ``isEnabledFor`` caches. Anything odd in the chain (a handler without a
    numeric level, say) counts as a listener: the record then meets it where a sink failure is caught.
    """
    if not logger.isEnabledFor(logging.INFO):
        return False
    if logger.filters:
        return True
    found = False
    current: Optional[logging.Logger] = logger
    try:
        while current is not None:
            for handler in current.handlers:
                found = True
                if handler.level <= logging.INFO and type(handler).handle is not _NULL_HANDLE:
                    return True
            if not current.propagate:
                break
            current = current.parent
    except Exception:
        return True
    if found:
        return False
    last_resort = logging.lastResort
    return last_resort is None or last_resort.level <= logging.INFO  # None: logging's own one-time warning


_NULL_HANDLE = logging.NullHandler.handle


class _Lazy:
    __slots__ = ("event",)

    def __init__(self, event: AuditEvent) -> None:
        self.event = event

    def __str__(self) -> str:
        return self.event.to_json()


Sink = Union[AuditSink, Callable[[AuditEvent], None]]


class _Settings:
    """Where events go. Setting ``sink`` also resolves, once, the call that delivers an event to it, and
    whether it is the default logging sink (whose silence :func:`wanted` can tell in advance)."""

    enabled = True
    logger = logging.getLogger("pynamodb_stash")
    _sink: Sink
    _deliver: Callable[[AuditEvent], None]
    _quiet_logger: Optional[logging.Logger]

    def __init__(self) -> None:
        self.sink = LoggingSink()

    @property
    def sink(self) -> Sink:
        return self._sink

    @sink.setter
    def sink(self, sink: Sink) -> None:
        emit = getattr(sink, "emit", None)
        self._sink = sink
        self._deliver = emit if callable(emit) else sink  # type: ignore[assignment]
        # The default sink, its emit not overridden: silent whenever its logger would deliver nothing.
        plain = isinstance(sink, LoggingSink) and type(sink).emit is LoggingSink.emit
        self._quiet_logger = sink.logger if plain else None  # type: ignore[union-attr]


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
        if not work:
            return
        duration = (time.perf_counter() - self.started) * 1000
        metadata = _metadata.get()
        for operation, (attributes, key_ids, items) in work.items():
            _emit(AuditEvent(operation, self.model, self.table, attributes, key_ids, items, self.outcome,
                             duration, metadata))


current_scope: ContextVar[Optional[Scope]] = ContextVar("pynamodb_stash_audit_scope", default=None)


def wanted() -> bool:
    """Whether an event would go anywhere: callers skip gathering its fields otherwise. With the default
    sink and no handler that would receive it (logging not configured: the common case), that costs
    one check per item, inside an operation or not."""
    if not settings.enabled:
        return False
    quiet = settings._quiet_logger
    return quiet is None or _delivers(quiet)


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


class _Operation(Scope):
    """The context manager :func:`operation` returns: a :class:`Scope`, current while the block runs.

    A class rather than a generator-based context manager: every model operation enters one, with audit
    events on or off, and this costs a fraction of ``contextlib.contextmanager``'s machinery.
    """

    __slots__ = ("_token",)

    def __enter__(self) -> Scope:
        self._token = current_scope.set(self)
        return self

    def __exit__(self, kind: Optional[type], error: Optional[BaseException], traceback: Any) -> None:
        # Returns None: an error raised in the block goes on, as from the generator this replaced.
        try:
            if isinstance(error, Exception):
                self.outcome = getattr(error, "code", type(error).__name__)
                if isinstance(error, StashError):
                    report_error(error)
        finally:
            current_scope.reset(self._token)
            if settings.enabled:
                self.close()


def operation(model: str, table: str) -> ContextManager[Scope]:
    """One model operation: its work becomes one event per kind when the block ends (an error, its code)."""
    return _Operation(model, table)


def _emit(event: AuditEvent) -> None:
    try:
        settings._deliver(event)
    except Exception as error:  # a sink never breaks the data operation
        settings.logger.warning("pynamodb-stash: the audit sink failed (%s)", type(error).__name__)
        report_error(error)
