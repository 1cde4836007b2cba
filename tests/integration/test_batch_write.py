"""EncryptedBatchWrite: encrypts on save(), chunks to 25, retries unprocessed items with backoff."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List

import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PutError

from pynamodb_stash import EncryptedAttribute, EncryptedModel, EncryptionError, Keyring, _reads


class Throttling:
    """A connection that leaves the last `keep` requests of each of the first `times` batches unprocessed,
    as DynamoDB does under throttling; everything it does send goes to DynamoDB Local for real."""

    def __init__(self, real: Any, table: str, *, times: int, keep: int) -> None:
        self.real, self.table, self.times, self.keep = real, table, times, keep
        self.batches: List[int] = []

    def batch_write_item(self, put_items: List[Any], delete_items: List[Any]) -> Dict[str, Any]:
        self.batches.append(len(put_items) + len(delete_items))
        if self.times > 0 and len(put_items) >= self.keep:
            self.times -= 1
            sent, held = put_items[: -self.keep], put_items[-self.keep :]
            if sent or delete_items:
                self.real.batch_write_item(put_items=sent, delete_items=delete_items)
            return {"UnprocessedItems": {self.table: [{"PutRequest": {"Item": item}} for item in held]}}
        return self.real.batch_write_item(put_items=put_items, delete_items=delete_items)  # type: ignore[no-any-return]


@pytest.fixture
def notes(ddb_url: str, table_name: str) -> Iterator[type[EncryptedModel]]:
    class Note(EncryptedModel):
        class Meta:
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"
            keyring = Keyring.generate()
            max_retry_attempts = 4

        pk = UnicodeAttribute(hash_key=True)
        body = EncryptedAttribute(str, equality=True)

    Note.Meta.table_name = table_name
    Note.create_table(wait=True)
    yield Note
    Note.delete_table()


def test_unprocessed_items_are_retried_with_growing_backoff(
    notes: type[EncryptedModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = notes._get_connection()
    throttling = Throttling(real, notes.Meta.table_name, times=2, keep=5)
    monkeypatch.setattr(notes, "_get_connection", classmethod(lambda cls: throttling))
    delays: List[float] = []
    monkeypatch.setattr(_reads.time, "sleep", delays.append)
    monkeypatch.setattr(_reads.random, "uniform", lambda low, high: high)  # the cap of each full-jitter draw

    with notes.batch_write() as batch:
        for i in range(30):
            batch.save(notes(pk=f"n{i}", body=f"secret {i}"))

    assert throttling.batches == [25, 5, 5, 5]  # 25, its 5 held back twice, then the last 5
    assert delays == [0.1, 0.2]
    monkeypatch.undo()
    assert sorted(n.body for n in notes.scan()) == sorted(f"secret {i}" for i in range(30))


def test_retries_stop_at_max_retry_attempts(notes: type[EncryptedModel], monkeypatch: pytest.MonkeyPatch) -> None:
    throttling = Throttling(notes._get_connection(), notes.Meta.table_name, times=10, keep=2)
    monkeypatch.setattr(notes, "_get_connection", classmethod(lambda cls: throttling))
    monkeypatch.setattr(_reads.time, "sleep", lambda seconds: None)
    batch = notes.batch_write()
    for i in range(10):
        batch.save(notes(pk=f"n{i}", body="x"))
    with pytest.raises(PutError):
        batch.commit()
    assert len(batch.failed_operations) == 2
    assert all("body__source" in request["PutRequest"]["Item"] for request in batch.failed_operations)


def test_an_item_that_cannot_be_encrypted_fails_the_commit_and_nothing_of_the_batch_is_written(
    notes: type[EncryptedModel],
) -> None:
    """As PynamoDB's BatchWrite, items are serialized at the commit; every item is encrypted before
    anything is sent, so one that cannot be fails the commit and none of the batch is written."""
    with pytest.raises(EncryptionError), notes.batch_write() as batch:
        batch.save(notes(pk="good", body="fine"))
        batch.save(notes(pk="bad", body=b"not a str"))  # type: ignore[arg-type]
    assert list(notes.scan()) == []


def test_an_item_changed_after_it_is_added_is_written_as_it_is_at_the_commit(notes: type[EncryptedModel]) -> None:
    with notes.batch_write() as batch:
        item = notes(pk="n1", body="draft")
        batch.save(item)
        item.body = "final"
    assert notes.get("n1", consistent_read=True).body == "final"
