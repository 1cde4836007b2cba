"""Truncated HMACs: colliding values are dropped after decryption on every read path."""

from __future__ import annotations

import itertools
import uuid
from typing import Any, Iterator, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from pynamodb_stash import (
    ConfigurationError,
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    Equality,
    HmacAttribute,
    Keyring,
    UnsupportedQueryError,
)


class ByCode(GlobalSecondaryIndex["Any"]):
    class Meta:
        index_name = "ByCode"
        projection = AllProjection()

    code = HmacAttribute(hash_key=True)


@pytest.fixture(scope="module")
def tickets(ddb_url: str) -> Iterator[Any]:
    class Ticket(EncryptedModel):
        class Meta:
            table_name = f"truncated-{uuid.uuid4().hex[:8]}"
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        code = EncryptedAttribute(str, equality=Equality(hmac_bits=8))
        batch = UnicodeAttribute()
        by_code = ByCode()

    Ticket.create_table(wait=True)
    yield Ticket
    Ticket.delete_table()


def colliding_pair(model: Any, prefix: str) -> List[str]:
    """Two different values whose 8-bit HMACs are equal: a false positive, guaranteed."""
    seen = {}
    for i in itertools.count():
        value = f"{prefix}-{i}"
        digest = model.code.hmac(value)
        if digest in seen:
            return [seen[digest], value]
        seen[digest] = value
    raise AssertionError("unreachable")


def test_every_read_path_returns_exact_matches_only(tickets: Any) -> None:
    first, second = colliding_pair(tickets, "paths")
    assert tickets.code.hmac(first) == tickets.code.hmac(second) and len(tickets.code.hmac(first)) == 2
    for i in range(3):
        tickets(pk=f"a{i}", code=first, batch="paths").save()
    tickets(pk="b0", code=second, batch="paths").save()

    assert sorted(t.pk for t in tickets.by_code.query(first)) == ["a0", "a1", "a2"]
    assert [t.pk for t in tickets.by_code.query(second)] == ["b0"]
    assert tickets.by_code.count(first) == 3 and tickets.by_code.count(second) == 1
    assert sorted(t.pk for t in tickets.scan(tickets.code == second)) == ["b0"]
    both = (tickets.code == first) & (tickets.batch == "paths")
    assert sorted(t.pk for t in tickets.scan(both)) == ["a0", "a1", "a2"]
    assert sorted(t.pk for t in tickets.scan(tickets.code.is_in(second, "absent"))) == ["b0"]


def test_limit_and_pagination_count_exact_matches(tickets: Any) -> None:
    first, second = colliding_pair(tickets, "pages")
    for i in range(5):
        tickets(pk=f"p{i}", code=first, batch="pages").save()
        tickets(pk=f"q{i}", code=second, batch="pages").save()
    seen: List[str] = []
    last = None
    while True:
        page = tickets.by_code.query(second, limit=2, last_evaluated_key=last)
        seen += [t.pk for t in page]
        last = page.last_evaluated_key
        if last is None:
            break
    assert sorted(seen) == [f"q{i}" for i in range(5)]


def test_a_truncated_hmac_cannot_guard_a_write_or_sit_under_or(tickets: Any) -> None:
    ticket = tickets(pk="w0", code="write", batch="writes")
    ticket.save()
    with pytest.raises(UnsupportedQueryError):
        ticket.save(condition=tickets.code == "write")
    with pytest.raises(UnsupportedQueryError):
        list(tickets.scan((tickets.code == "write") | (tickets.batch == "x")))
    with pytest.raises(UnsupportedQueryError):
        list(tickets.scan(~(tickets.code == "write")))
    with pytest.raises(UnsupportedQueryError):
        tickets.code != "write"  # noqa: B015 - built to raise


def test_bad_declarations() -> None:
    with pytest.raises(ConfigurationError):
        Equality(hmac_bits=12)
    with pytest.raises(ConfigurationError):
        class Keyed(EncryptedModel):
            class Meta:
                table_name = "keyed"

            code = EncryptedAttribute(str, equality=Equality(hmac_bits=16), hash_key=True)
    with pytest.raises(ConfigurationError):
        class Nested(EncryptedMapAttribute):
            code = EncryptedAttribute(str, equality=Equality(hmac_bits=16))


@settings(max_examples=12)
@given(values=st.lists(st.sampled_from(["red", "green", "blue", "cyan", "plum", "teal"]), min_size=1, max_size=8))
def test_any_values_any_truncation_a_lookup_returns_exactly_the_matches(tickets: Any, values: List[str]) -> None:
    batch = uuid.uuid4().hex[:8]
    for i, value in enumerate(values):
        tickets(pk=f"{batch}-{i}", code=f"{batch}-{value}", batch=batch).save()
    for value in set(values):
        expected = sorted(f"{batch}-{i}" for i, v in enumerate(values) if v == value)
        assert sorted(t.pk for t in tickets.by_code.query(f"{batch}-{value}")) == expected
        assert tickets.by_code.count(f"{batch}-{value}") == len(expected)
