"""Audit events on DynamoDB Local: one per operation and kind, the right fields, never the data."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, Iterator, List

import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from pynamodb_stash import (
    AuditEvent,
    DecryptionError,
    EncryptedAttribute,
    EncryptedModel,
    HmacAttribute,
    Keyring,
    StashError,
    audit,
    configure,
)

MARKERS = ("marker-email@example.com", "Marker Name")


class ByEmail(GlobalSecondaryIndex["Any"]):
    class Meta:
        index_name = "ByEmail"
        projection = AllProjection()

    email = HmacAttribute(hash_key=True)


@pytest.fixture
def events() -> Iterator[List[AuditEvent]]:
    captured: List[AuditEvent] = []
    configure(audit_sink=captured.append)
    yield captured
    configure(audit_sink=None, error_handler=None, audit_enabled=True)


@pytest.fixture
def users(ddb_url: str, table_name: str) -> Iterator[Any]:
    class User(EncryptedModel):
        class Meta:
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"
            keyring = Keyring.generate(key_id="k-audit")

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True)
        name = EncryptedAttribute(str)
        by_email = ByEmail()

    User.Meta.table_name = table_name
    User.create_table(wait=True)
    yield User
    User.delete_table()


def test_one_event_per_operation_with_its_fields(users: Any, events: List[AuditEvent]) -> None:
    with audit(sub="user-123", action="signup"):
        users(pk="u1", email=MARKERS[0], name=MARKERS[1]).save()
    (saved,) = events
    assert (saved.operation, saved.model, saved.table, saved.items, saved.outcome) == (
        "encrypt", "User", users.Meta.table_name, 1, "ok"
    )
    assert saved.attributes == ("email", "name") and saved.key_ids == ("k-audit",)
    assert dict(saved.metadata) == {"sub": "user-123", "action": "signup"} and saved.duration_ms >= 0

    events.clear()
    users.get("u1")
    assert [(e.operation, e.items, e.attributes) for e in events] == [("decrypt", 1, ("email", "name"))]


def test_reads_of_many_items_are_one_event(users: Any, events: List[AuditEvent]) -> None:
    for i in range(5):
        users(pk=f"u{i}", email=f"same{i % 2}@example.com", name="n").save()
    events.clear()
    found = list(users.by_email.query("same0@example.com"))
    assert len(found) == 3
    assert sorted((e.operation, e.items) for e in events) == [("decrypt", 3), ("hmac", 1)]
    events.clear()
    assert len(list(users.batch_get(["u0", "u1", "u2", "u3"]))) == 4
    assert [(e.operation, e.items) for e in events] == [("decrypt", 4)]
    events.clear()
    assert len(list(users.scan())) == 5
    assert [(e.operation, e.items) for e in events] == [("decrypt", 5)]


def test_metadata_nests_and_stays_in_its_thread_or_task(users: Any, events: List[AuditEvent]) -> None:
    with audit(sub="outer", tenant="acme"), audit(sub="inner"):
        users(pk="n1", email="a@example.com", name="n").save()
    assert dict(events[-1].metadata) == {"sub": "inner", "tenant": "acme"}

    def work(name: str) -> None:
        with audit(worker=name):
            users(pk=name, email=f"{name}@example.com", name="n").save()

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    by_worker = {e.metadata.get("worker") for e in events[-4:]}
    assert by_worker == {"t0", "t1", "t2", "t3"}

    async def task(name: str) -> None:
        with audit(task=name):
            await asyncio.sleep(0)
            users(pk=name, email=f"{name}@example.com", name="n").save()

    async def both() -> None:
        await asyncio.gather(task("a1"), task("a2"))

    events.clear()
    asyncio.run(both())
    assert sorted(e.metadata["task"] for e in events) == ["a1", "a2"]


def test_failures_are_events_and_reach_the_error_handler(users: Any, events: List[AuditEvent]) -> None:
    seen: List[BaseException] = []
    configure(error_handler=seen.append)
    users(pk="t1", email="a@example.com", name="n").save()
    users(pk="t2", email="b@example.com", name="m").save()
    raw = users._get_connection().get_item("t1")["Item"]
    raw["name__source"] = users._get_connection().get_item("t2")["Item"]["name__source"]
    events.clear()
    with pytest.raises(DecryptionError):
        users.from_raw_data(raw)
    assert [(e.operation, e.outcome) for e in events] == [("decrypt", "decryption_failed")]
    assert any(isinstance(error, DecryptionError) for error in seen)


def test_a_failing_sink_never_breaks_the_operation(users: Any) -> None:
    reported: List[BaseException] = []

    def broken(event: AuditEvent) -> None:
        raise RuntimeError("sink down")

    configure(audit_sink=broken, error_handler=reported.append)
    try:
        users(pk="s1", email="a@example.com", name="n").save()
        assert users.get("s1").name == "n"
    finally:
        configure(audit_sink=None, error_handler=None)
    assert reported and all(isinstance(error, RuntimeError) for error in reported)


def test_the_default_sink_writes_json_lines(users: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pynamodb_stash.audit"), audit(sub="json"):
        users(pk="j1", email=MARKERS[0], name=MARKERS[1]).save()
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "pynamodb_stash.audit"]
    assert lines[-1]["operation"] == "encrypt" and lines[-1]["metadata"] == {"sub": "json"}
    assert set(lines[-1]) == {"time", "operation", "model", "table", "attributes", "key_ids", "items",
                              "outcome", "duration_ms", "metadata"}


def test_audit_can_be_turned_off(users: Any, events: List[AuditEvent]) -> None:
    configure(audit_enabled=False)
    users(pk="o1", email="a@example.com", name="n").save()
    users.get("o1")
    assert events == []


def test_nothing_secret_reaches_events_logs_or_errors(
    users: Any, events: List[AuditEvent], caplog: pytest.LogCaptureFixture
) -> None:
    messages: List[str] = []
    configure(error_handler=lambda error: messages.append(str(error)))
    with caplog.at_level(logging.DEBUG):
        user = users(pk="x1", email=MARKERS[0], name=MARKERS[1])
        user.save()
        list(users.by_email.query(MARKERS[0]))
        user.update(actions=[users.name.set(MARKERS[1] + " 2")])
        raw = users._get_connection().get_item("x1")["Item"]
        raw["name__source"] = {"B": raw["name__source"]["B"][:-1]}
        with pytest.raises(StashError):
            users.from_raw_data(raw)
    ours = [e.to_json() for e in events] + messages  # audit events and error messages: no data at all
    assert ours and not [t for t in ours for s in (*MARKERS, users.email.hmac(MARKERS[0])) if s in t]
    # Every log line, PynamoDB's and botocore's DEBUG request dumps included: no plaintext (they do show
    # the ciphertexts and HMACs that go on the wire, which is what DynamoDB sees).
    logs = [r.getMessage() for r in caplog.records]
    assert logs and not [line for line in logs for s in MARKERS if s in line]
