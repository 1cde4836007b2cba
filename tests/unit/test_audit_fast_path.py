"""The audit trail's cheap paths keep its contract: events reach every sink that listens, and nothing is
built for a sink that would drop them (docs/audit.md)."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Iterator, List

import pytest

from pynamodb_stash import AuditEvent, DecryptionError, _audit, audit, configure


class Counting(logging.Handler):
    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    configure(audit_sink=None, audit_enabled=True, error_handler=None)


def fresh_logger(parent: str = "") -> logging.Logger:
    """A new logger at INFO, its own sink's, that does not propagate. Made in the test's body: pytest's log
    capture gives its handler to every non-propagating logger that exists when a test starts."""
    logger = logging.getLogger(f"{parent}{'.' if parent else ''}stash-audit-{uuid.uuid4().hex}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    configure(audit_sink=_audit.LoggingSink(logger))
    return logger


def test_nothing_listens_by_default() -> None:
    configure(audit_sink=None)
    logger = logging.getLogger(_audit.AUDIT_LOGGER)
    assert logger.getEffectiveLevel() > logging.INFO and not _audit._delivers(logger)
    assert not _audit.wanted()
    with _audit.operation("M", "T"):
        assert not _audit.wanted()  # inside an operation too: no fields gathered for a silent sink


def test_a_null_handler_or_a_handler_above_info_receives_nothing() -> None:
    logger = fresh_logger()
    logger.addHandler(logging.NullHandler())
    logger.addHandler(Counting(logging.WARNING))
    assert not _audit._delivers(logger) and not _audit.wanted()
    built: List[Any] = []
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *args, **kwargs: built.append(args) or factory(*args, **kwargs))
    try:
        _audit.record("encrypt", "M", "T", ("a",), ("k1",))
    finally:
        logging.setLogRecordFactory(factory)
    assert built == []  # no LogRecord made for an event nobody would receive


@pytest.mark.parametrize("where", ["itself", "parent", "root"])
def test_a_real_handler_anywhere_up_the_chain_receives_each_event(where: str) -> None:
    parent = logging.getLogger(f"stash-audit-parent-{uuid.uuid4().hex}")
    logger = fresh_logger(parent.name)
    logger.propagate = where != "itself"
    handler = Counting()
    target = {"itself": logger, "parent": parent, "root": logging.getLogger()}[where]
    target.addHandler(handler)
    try:
        assert _audit._delivers(logger) and _audit.wanted()
        with audit(sub="u1"):
            _audit.record("encrypt", "M", "T", ("b", "a"), ("k1",))
        (record,) = handler.records
        assert record.levelno == logging.INFO and record.name == logger.name
        assert '"attributes":["a","b"]' in record.getMessage() and '"metadata":{"sub":"u1"}' in record.getMessage()
    finally:
        target.removeHandler(handler)


def test_no_propagation_stops_the_search() -> None:
    parent = logging.getLogger(f"stash-audit-parent-{uuid.uuid4().hex}")
    parent.addHandler(Counting())
    logger = fresh_logger(parent.name)
    assert not _audit._delivers(logger)
    logger.propagate = True
    assert _audit._delivers(logger)


def test_a_filter_on_the_logger_counts_as_a_listener() -> None:
    seen: List[logging.LogRecord] = []
    logger = fresh_logger()
    logger.addHandler(logging.NullHandler())
    logger.addFilter(lambda record: bool(seen.append(record)))
    _audit.record("decrypt", "M", "T", ("a",), ("k1",))
    assert len(seen) == 1


def test_with_no_handler_at_all_last_resort_decides() -> None:
    logger = fresh_logger()
    saved = logging.lastResort
    try:
        assert not _audit._delivers(logger)  # lastResort is at WARNING: an INFO record goes nowhere
        logging.lastResort = Counting(logging.INFO)
        assert _audit._delivers(logger)
        logging.lastResort = None  # logging then warns once that there is no handler: let it
        assert _audit._delivers(logger)
    finally:
        logging.lastResort = saved


def test_sinks_are_resolved_when_configured() -> None:
    received: List[AuditEvent] = []

    class Emitting:
        def emit(self, event: AuditEvent) -> None:
            received.append(event)

    configure(audit_sink=Emitting())
    assert _audit.wanted()
    _audit.record("hmac", "M", "T", ("a",), ("idx1",))
    configure(audit_sink=received.append)
    _audit.record("hmac", "M", "T", ("a",), ("idx1",))
    assert [e.operation for e in received] == ["hmac", "hmac"]

    class Custom(_audit.LoggingSink):  # its own emit: never judged silent by its logger
        def emit(self, event: AuditEvent) -> None:
            received.append(event)

    configure(audit_sink=Custom())
    assert _audit.wanted()
    _audit.record("encrypt", "M", "T", ("a",), ("k1",))
    assert len(received) == 3
    configure(audit_sink=None)
    assert type(_audit.settings.sink) is _audit.LoggingSink
    assert _audit.settings.sink.logger is logging.getLogger(_audit.AUDIT_LOGGER)


def test_an_operation_is_one_event_per_kind_and_keeps_its_error() -> None:
    events: List[AuditEvent] = []
    reported: List[BaseException] = []
    configure(audit_sink=events.append, error_handler=reported.append)
    with _audit.operation("M", "T") as scope:
        assert _audit.current_scope.get() is scope
        for _ in range(40):
            _audit.record("decrypt", "M", "T", ("a", "b"), ("k1",))
    assert _audit.current_scope.get() is None
    assert [(e.operation, e.items, e.attributes, e.outcome) for e in events] == [("decrypt", 40, ("a", "b"), "ok")]

    events.clear()
    error = DecryptionError("M.a: not authentic")
    with pytest.raises(DecryptionError) as raised, _audit.operation("M", "T"):
        _audit.record("decrypt", "M", "T", ("a",), ("k1",))
        raise error
    assert raised.value is error and reported == [error]
    assert [(e.operation, e.outcome) for e in events] == [("decrypt", "decryption_failed")]
    assert _audit.current_scope.get() is None

    events.clear()
    with pytest.raises(KeyError), _audit.operation("M", "T"):
        _audit.record("encrypt", "M", "T", ("a",), ("k1",))
        raise KeyError("x")
    assert [e.outcome for e in events] == ["KeyError"] and reported == [error]

    events.clear()
    with _audit.operation("M", "T"):
        pass
    assert events == []  # no work, no event


def test_turned_off_nothing_is_wanted_or_emitted() -> None:
    events: List[AuditEvent] = []
    configure(audit_sink=events.append, audit_enabled=False)
    assert not _audit.wanted()
    with _audit.operation("M", "T"):
        _audit.record("encrypt", "M", "T", ("a",), ("k1",))
    assert events == []


def test_an_odd_handler_never_breaks_the_check() -> None:
    class Odd(logging.Handler):
        level = None  # type: ignore[assignment]

    logger = fresh_logger()
    logger.addHandler(Odd())
    assert _audit.wanted()  # a listener, as far as the check can tell
    _audit.record("encrypt", "M", "T", ("a",), ("k1",))  # logging's own failure is caught as a sink failure
