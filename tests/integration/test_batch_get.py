"""batch_get on encrypted models: plaintext keys, pages of 100, backoff on unprocessed keys."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from pynamodb.attributes import NumberAttribute
from pynamodb.exceptions import GetError

from pynamodb_stash import EncryptedAttribute, EncryptedModel, Keyring, _reads


class Unprocessing:
    """Leaves the last `hold` keys of each of the first `times` pages unprocessed, as DynamoDB does when
    throttled; the keys it does request are read from DynamoDB Local for real."""

    def __init__(self, model: type[EncryptedModel], *, times: int, hold: int) -> None:
        self.read_page = model._batch_get_page
        self.times, self.hold = times, hold
        self.pages: List[int] = []

    def __call__(self, keys: List[Any], consistent_read: Optional[bool], attributes: Any) -> Tuple[Any, Any]:
        self.pages.append(len(keys))
        if self.times > 0 and len(keys) >= self.hold:
            self.times -= 1
            asked, held = keys[: -self.hold], keys[-self.hold :]
            page = self.read_page(asked, consistent_read, attributes)[0] if asked else []
            return page, held
        return self.read_page(keys, consistent_read, attributes)  # type: ignore[no-any-return]


@pytest.fixture
def cards(ddb_url: str, table_name: str) -> Iterator[type[EncryptedModel]]:
    class Card(EncryptedModel):
        class Meta:
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"
            keyring = Keyring.generate()
            max_retry_attempts = 4

        holder = EncryptedAttribute(str, equality=True, hash_key=True)
        seq = NumberAttribute(range_key=True)
        number = EncryptedAttribute(str)

    Card.Meta.table_name = table_name
    Card.create_table(wait=True)
    with Card.batch_write() as batch:
        for i in range(130):
            batch.save(Card(f"holder {i % 65}", i // 65, number=f"4111-{i:04d}"))
    yield Card
    Card.delete_table()


def test_plaintext_keys_in_pages_of_100_with_backoff(
    cards: type[EncryptedModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    unprocessing = Unprocessing(cards, times=2, hold=10)
    monkeypatch.setattr(cards, "_batch_get_page", unprocessing)
    delays: List[float] = []
    monkeypatch.setattr(_reads.time, "sleep", delays.append)
    monkeypatch.setattr(_reads.random, "uniform", lambda low, high: high)

    keys = [(f"holder {i % 65}", i // 65) for i in range(130)]
    found = list(cards.batch_get(keys + keys[:5]))  # duplicates are fetched once

    assert unprocessing.pages == [100, 10, 10, 30]
    assert delays == [0.1, 0.2]
    numbers: Dict[Tuple[str, int], str] = {(c.holder, int(c.seq)): c.number for c in found}
    assert len(found) == 130
    assert numbers == {(f"holder {i % 65}", i // 65): f"4111-{i:04d}" for i in range(130)}


def test_unprocessed_keys_past_max_retry_attempts_raise(
    cards: type[EncryptedModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cards, "_batch_get_page", Unprocessing(cards, times=10, hold=1))
    monkeypatch.setattr(_reads.time, "sleep", lambda seconds: None)
    with pytest.raises(GetError):
        list(cards.batch_get([("holder 1", 0)]))


def test_a_malformed_key_is_refused_without_quoting_it(cards: type[EncryptedModel]) -> None:
    with pytest.raises(ValueError) as raised:
        list(cards.batch_get(["holder 1 alone"]))
    assert "holder 1 alone" not in str(raised.value)
