"""Differences from PynamoDB that issue 14 found, each pinned: ``EncryptedModel`` behaves as ``Model``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model
from stashtest import created, table_meta, unique

from pynamodb_stash import DecryptionError, EncryptedAttribute, EncryptedModel, Keyring, _reads

KEYRING = Keyring.generate()


def define(url: str, table: str, base: type, **attributes: Any) -> Any:
    return type(
        f"{base.__name__}Shape",
        (base,),
        {"Meta": table_meta(url, table, KEYRING), "pk": UnicodeAttribute(hash_key=True), **attributes},
    )


@pytest.fixture
def Scores(ddb_url: str) -> Iterator[Any]:
    yield from created(define(
        ddb_url, unique("empty_sets"), EncryptedModel,
        scores=EncryptedAttribute(NumberSetAttribute(), null=True),
        tags=EncryptedAttribute(set, null=True),
        note=UnicodeAttribute(null=True),
    ))


def test_an_empty_set_in_a_wrapped_pynamodb_attribute_is_no_value(Scores: Any, client: Any) -> None:
    """PynamoDB stores nothing for an empty set and turns ``.set(empty)`` into REMOVE: so does the wrapper."""
    Scores(pk="a", scores=set()).save()
    stored = client.get_item(TableName=Scores.Meta.table_name, Key={"pk": {"S": "a"}})["Item"]
    assert set(stored) == {"pk"}
    assert Scores.get("a").scores is None
    assert [item.pk for item in Scores.scan(Scores.scores.does_not_exist())] == ["a"]

    item = Scores(pk="b", scores={1, 2})
    item.save()
    item.update(actions=[Scores.scores.set(set())])
    assert Scores.get("b", consistent_read=True).scores is None
    assert "scores__source" not in client.get_item(TableName=Scores.Meta.table_name, Key={"pk": {"S": "b"}})["Item"]


def test_the_builtin_set_type_keeps_an_empty_set(Scores: Any) -> None:
    """``EncryptedAttribute(set)`` is not a PynamoDB attribute: an empty set is a value, stored encrypted
    and read back as ``set()`` (documented in docs/storage-format.md)."""
    Scores(pk="c", tags=set()).save()
    assert Scores.get("c").tags == set()
    assert [item.pk for item in Scores.scan(Scores.tags.exists())] == ["c"]


def test_a_required_wrapped_set_refuses_an_empty_set_as_pynamodb_does(ddb_url: str) -> None:
    """An empty set is no value: a ``null=False`` attribute refuses it, as PynamoDB's own does."""
    from pynamodb.exceptions import AttributeNullError

    plain = define(ddb_url, "unused", Model, scores=NumberSetAttribute(null=False))
    encrypted = define(ddb_url, "unused", EncryptedModel, scores=EncryptedAttribute(NumberSetAttribute()))
    for model in (plain, encrypted):
        with pytest.raises(AttributeNullError):
            model(pk="x", scores=set()).serialize()
        assert model(pk="x", scores=set()).serialize(null_check=False) == {"pk": {"S": "x"}}


@pytest.fixture
def pair(ddb_url: str) -> Iterator[tuple[Any, Any]]:
    table = unique("no_encryption")
    attributes = {"email": UnicodeAttribute(null=True), "tags": UnicodeSetAttribute(null=True)}
    plain = define(ddb_url, table, Model, **attributes)
    unencrypted = define(ddb_url, table, EncryptedModel, **attributes)
    for _ in created(plain):
        yield plain, unencrypted


def test_projections_of_a_model_that_encrypts_nothing_are_sent_as_given(pair: tuple[Any, Any]) -> None:
    plain, unencrypted = pair
    plain(pk="p1", email="a@example.com", tags={"x"}).save()
    assert _reads.projection(unencrypted, ["email"]) == ["email"]
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(params)

    for model in (plain, unencrypted):
        client = model._get_connection().connection.client
        client.meta.events.register("provide-client-params.dynamodb.Scan", record)
        try:
            (item,) = model.scan(attributes_to_get=["email"])
        finally:
            client.meta.events.unregister("provide-client-params.dynamodb.Scan", record)
        assert item.attribute_values == {"email": "a@example.com"}
    assert len(sent) == 2 and sent[0]["ProjectionExpression"] == sent[1]["ProjectionExpression"] == "#0"


def test_batch_get_keeps_going_while_each_round_makes_progress(
    Scores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB under load may answer each BatchGetItem with one item and leave the rest unprocessed; PynamoDB
    keeps going while it makes progress. Only rounds that return nothing count against max_retry_attempts."""
    keys = [f"k{i:02d}" for i in range(8)]
    with Scores.batch_write() as batch:
        for key in keys:
            batch.save(Scores(pk=key, note=key))
    real_page = Scores._batch_get_page.__func__
    rounds: list[int] = []

    def one_item_per_round(cls: Any, keys_to_get: list[Any], consistent_read: Any, attributes_to_get: Any) -> Any:
        rounds.append(len(keys_to_get))
        page, unprocessed = real_page(cls, keys_to_get[:1], consistent_read, attributes_to_get)
        return page, keys_to_get[1:] + list(unprocessed or [])

    monkeypatch.setattr(Scores, "_batch_get_page", classmethod(one_item_per_round))
    monkeypatch.setattr("pynamodb_stash._reads.backoff", lambda attempt: None)
    assert Scores.Meta.max_retry_attempts < len(keys)
    assert sorted(item.pk for item in Scores.batch_get(keys)) == keys
    assert rounds == list(range(8, 0, -1))


def test_a_model_that_encrypts_nothing_updates_without_a_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    """PynamoDB's own test suite, with ``Model`` replaced by ``EncryptedModel``, updates such models."""
    from pynamodb.attributes import NumberAttribute

    from pynamodb_stash import _keyring, configure

    monkeypatch.delenv("PYNAMODB_STASH_KEYRING", raising=False)
    monkeypatch.setattr(_keyring, "_env_cache", None)
    configure(keyring=None)
    counter = type(
        "Counter", (EncryptedModel,),
        {"Meta": type("Meta", (), {"table_name": "counters"}), "pk": UnicodeAttribute(hash_key=True),
         "n": NumberAttribute(default=0)},
    )
    plain = type(
        "PlainCounter", (Model,),
        {"Meta": type("Meta", (), {"table_name": "counters"}), "pk": UnicodeAttribute(hash_key=True),
         "n": NumberAttribute(default=0)},
    )
    sent = [model(pk="c").get_update_kwargs_from_instance([model.n.add(1)]) for model in (plain, counter)]
    assert sent[0] == sent[1]


# -- found by the conformance suite (tests/conformance), each pinned here too ------------------------------


@pytest.fixture
def Wrapped(ddb_url: str) -> Iterator[Any]:
    yield from created(define(
        ddb_url, unique("wrapped"), EncryptedModel,
        profile=EncryptedAttribute(MapAttribute(), null=True),
        balance=EncryptedAttribute(NumberAttribute(), equality=True, null=True),
        tags=EncryptedAttribute(UnicodeSetAttribute(), equality=True, null=True),
        photo=EncryptedAttribute(bytes, null=True),
    ))


def test_a_wrapped_map_attribute_holds_and_returns_a_map_attribute(Wrapped: Any) -> None:
    item = Wrapped(pk="m", profile={"city": "Paris"})
    assert isinstance(item.profile, MapAttribute) and item.profile.city == "Paris"
    item.save()
    read = Wrapped.get("m")
    assert isinstance(read.profile, MapAttribute) and read.profile.as_dict() == {"city": "Paris"}


def test_a_wrapped_number_reads_back_and_matches_as_dynamodb_stores_it(Wrapped: Any) -> None:
    """DynamoDB stores 7131000002.0 as 7131000002, which PynamoDB reads back as an int; equal numbers match."""
    Wrapped(pk="n", balance=7131000002.0).save()
    read = Wrapped.get("n").balance
    assert read == 7131000002 and type(read) is int
    assert [i.pk for i in Wrapped.scan(Wrapped.balance == 7131000002)] == ["n"]
    assert [i.pk for i in Wrapped.scan(Wrapped.balance.is_in(7131000002.0, 1))] == ["n"]


def test_equal_wrapped_sets_have_one_hmac_whatever_their_order(Wrapped: Any) -> None:
    members = [f"member-{n}" for n in range(40)]
    Wrapped(pk="s", tags=set(members)).save()
    assert Wrapped.tags.hmac(set(members)) == Wrapped.tags.hmac(set(reversed(members)))
    assert [i.pk for i in Wrapped.scan(Wrapped.tags == set(reversed(members)))] == ["s"]


def test_to_simple_dict_round_trips_the_stored_form(Wrapped: Any) -> None:
    item = Wrapped(pk="d", photo=b"\x00raw", balance=5, tags={"a"})
    simple = item.to_simple_dict()
    assert simple["pk"] == "d" and "photo" not in simple and isinstance(simple["photo__source"], str)
    assert b"\x00raw" not in repr(simple).encode() and "'a'" not in repr(simple)
    back = Wrapped()
    back.from_simple_dict(simple)
    assert (back.photo, back.balance, back.tags) == (b"\x00raw", 5, {"a"})


def test_from_simple_dict_refuses_a_tampered_ciphertext(Wrapped: Any) -> None:
    simple = Wrapped(pk="d", photo=b"secret").to_simple_dict()
    other = Wrapped(pk="e", photo=b"other").to_simple_dict()
    simple["photo__source"] = other["photo__source"]  # moved from another item
    with pytest.raises(DecryptionError):
        Wrapped().from_simple_dict(simple)


def test_batch_get_fetches_equal_numbers_once(ddb_url: str) -> None:
    numbered = type("Numbered", (EncryptedModel,), {
        "Meta": table_meta(ddb_url, unique("numbered"), KEYRING), "pk": NumberAttribute(hash_key=True),
        "note": EncryptedAttribute(str, null=True),
    })
    for _ in created(numbered):
        numbered(pk=2, note="two").save()
        assert [item.note for item in numbered.batch_get([2, 2.0, 2])] == ["two"]


def test_an_include_projection_names_encrypted_attributes_as_declared(ddb_url: str) -> None:
    class ByCity(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "by_city"
            projection = IncludeProjection(["email"])

        city = UnicodeAttribute(hash_key=True)

    people = type("People", (EncryptedModel,), {
        "Meta": table_meta(ddb_url, unique("include"), KEYRING), "pk": UnicodeAttribute(hash_key=True),
        "city": UnicodeAttribute(null=True), "email": EncryptedAttribute(str, equality=True, null=True),
        "by_city": ByCity(),
    })
    assert people.by_city.Meta.projection.non_key_attributes == ["email__source", "email__hmac"]
    assert ByCity.Meta.projection.non_key_attributes == ["email"]  # the declared class is left as it is
    for _ in created(people):
        people(pk="p", city="Oslo", email="a@example.com").save()
        (found,) = people.by_city.query("Oslo")
        assert found.email == "a@example.com"
