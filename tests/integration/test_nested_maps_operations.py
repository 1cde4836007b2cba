"""Nested maps through the other operations (on DynamoDB Local): transactions, batches, queries and
projections, a subclass model on its own table, and custom stored names. Shared declarations:
``tests/nestedtest.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from nestedtest import (
    NOTE,
    SSN,
    STREET,
    Address,
    Profile,
    define_event,
    define_user,
    full_user,
    model_fixture,
    raw_user,
)
from pynamodb.attributes import ListAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactGet, TransactWrite
from stashtest import assert_no_plaintext, assert_sealed, table_meta, unique

from pynamodb_stash import (
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    Keyring,
    UnsupportedQueryError,
)

# -- fixtures: a table per model for the module (``keyring``, ``client``, ``connection`` from conftest.py)

User = model_fixture(define_user, "nested_users")
Event = model_fixture(define_event, "nested_events")


# -- transactions, batches, queries, projections ----------------------------------------------------------


def test_transact_write_and_get_with_nested_maps(User: Any, client: Any, connection: Connection) -> None:
    a, b, c = unique("tx"), unique("tx"), unique("tx")
    first = full_user(User, a)
    second = User(pk=b, profile={"ssn": "222-22-2222"}, history=[{"street": "tx street", "city": "t"}])
    with TransactWrite(connection=connection) as tw:
        tw.save(first)
        tw.save(second)
        tw.save(User(pk=c, profile=Profile(ssn="guard", address=Address(street="guard street", city="g"))))
    raw_a, raw_b = raw_user(client, User, a), raw_user(client, User, b)
    assert_sealed(raw_a["profile"]["M"], "ssn", hmac=User.profile.ssn.hmac(SSN))
    assert_no_plaintext(raw_a, SSN, STREET, NOTE)
    assert_no_plaintext(raw_b, "222-22-2222", "tx street")

    with TransactWrite(connection=connection) as tw:
        tw.update(
            first, actions=[User.profile.address.street.set("tx new street"), User.profile.ssn.remove()]
        )
        tw.update(second, actions=[User.profile.set(Profile(ssn="333-33-3333", note="tx note"))])
        tw.condition_check(
            User, c, condition=(User.profile.ssn == "guard") & (User.profile.address.street != "x")
        )
    raw_a, raw_b = raw_user(client, User, a), raw_user(client, User, b)
    assert not {"ssn__source", "ssn__hmac"} & set(raw_a["profile"]["M"])
    assert raw_a["profile"]["M"]["address"]["M"]["street__hmac"] == {
        "S": User.profile.address.street.hmac("tx new street")
    }
    assert raw_b["profile"]["M"]["ssn__hmac"] == {"S": User.profile.ssn.hmac("333-33-3333")}
    assert_no_plaintext(raw_a, "tx new street")
    assert_no_plaintext(raw_b, "333-33-3333", "tx note")

    with TransactGet(connection=connection) as tg:
        fa, fb = tg.get(User, a), tg.get(User, b)
    got_a, got_b = fa.get(), fb.get()
    assert (got_a.profile.ssn, got_a.profile.address.street, got_a.profile.note) == (
        None,
        "tx new street",
        NOTE,
    )
    assert [h.street for h in got_a.history] == [f"{STREET} (old)", f"{STREET} (older)"]
    assert (got_b.profile.ssn, got_b.profile.note, got_b.history[0].street) == (
        "333-33-3333",
        "tx note",
        "tx street",
    )


def test_transact_condition_check_on_nested_field_fails_the_transaction(
    User: Any, client: Any, connection: Connection
) -> None:
    pk = unique("txc")
    user = full_user(User, pk)
    user.save()
    before = raw_user(client, User, pk)
    with pytest.raises(TransactWriteError), TransactWrite(connection=connection) as tw:
        tw.update(user, actions=[User.profile.ssn.set("should not land")])
        tw.condition_check(User, pk, condition=User.profile.address.street == "some other street")
    assert raw_user(client, User, pk) == before


def test_transact_write_refuses_list_updates_when_built(User: Any, connection: Connection) -> None:
    user = full_user(User, unique("txl"))
    with pytest.raises(UnsupportedQueryError), TransactWrite(connection=connection) as tw:
        tw.update(user, actions=[User.history.set([Address(street="x", city="y")])])


def test_batch_write_and_batch_get_with_nested_maps(User: Any, client: Any) -> None:
    pks = [unique("batch") for _ in range(30)]
    with User.batch_write() as batch:
        for i, pk in enumerate(pks):
            batch.save(full_user(User, pk, ssn=f"ssn-{i:03d}", street=f"{i} Batch Street"))
    for i in (0, 29):
        raw = raw_user(client, User, pks[i])
        assert_sealed(raw["profile"]["M"], "ssn", hmac=User.profile.ssn.hmac(f"ssn-{i:03d}"))
        assert_no_plaintext(raw, f"ssn-{i:03d}", f"{i} Batch Street")
    got = {u.pk: u for u in User.batch_get(pks, consistent_read=True)}
    assert set(got) == set(pks)
    for i, pk in enumerate(pks):
        assert got[pk].profile.ssn == f"ssn-{i:03d}"
        assert got[pk].profile.address.street == f"{i} Batch Street"
        assert got[pk].history[1].street == f"{i} Batch Street (older)"
    projected = list(User.batch_get(pks[:3], attributes_to_get=["profile"]))
    assert sorted(u.profile.ssn for u in projected) == ["ssn-000", "ssn-001", "ssn-002"]
    assert all(u.history is None and u.work is None for u in projected)

    with User.batch_write() as batch:
        for pk in pks:
            batch.delete(User(pk=pk))
    assert list(User.batch_get(pks)) == []


def test_query_with_nested_maps_and_range_keys(Event: Any) -> None:
    group = unique("q")
    for seq in range(5):
        Event(
            group=group,
            seq=seq,
            profile=Profile(ssn=f"q-{seq % 2}", address=Address(street=f"q st {seq}", city="c")),
            history=[Address(street=f"q h {seq}", city="c")],
        ).save()
    results = list(
        Event.query(group, Event.seq >= 1, filter_condition=Event.profile.ssn == "q-1", consistent_read=True)
    )
    assert [(int(e.seq), e.profile.address.street, e.history[0].street) for e in results] == [
        (1, "q st 1", "q h 1"),
        (3, "q st 3", "q h 3"),
    ]
    paged = list(Event.query(group, consistent_read=True, page_size=2, scan_index_forward=False))
    assert [e.profile.ssn for e in paged] == ["q-0", "q-1", "q-0", "q-1", "q-0"]
    projected = list(Event.query(group, Event.seq == 4, attributes_to_get=["history"], consistent_read=True))
    assert [(e.profile, e.history[0].street) for e in projected] == [(None, "q h 4")]


def test_attributes_to_get_of_the_whole_map(User: Any) -> None:
    pk = unique("proj")
    full_user(User, pk).save()
    for projection in (["profile"], [User.profile], "profile"):
        got = User.get(pk, consistent_read=True, attributes_to_get=projection)
        assert (got.profile.ssn, got.profile.address.street, got.profile.note) == (SSN, STREET, NOTE)
        assert got.history is None and got.work is None
    got = User.get(pk, consistent_read=True, attributes_to_get=["history", "work"])
    assert got.profile is None and got.work.street == f"{STREET} (work)"
    assert [h.street for h in got.history] == [f"{STREET} (old)", f"{STREET} (older)"]
    scanned = [u for u in User.scan(User.pk == pk, attributes_to_get=["work"], consistent_read=True)]
    assert [(u.work.street, u.profile) for u in scanned] == [(f"{STREET} (work)", None)]


# -- inheritance ------------------------------------------------------------------------------------------


def test_subclass_model_on_its_own_table_hashes_nested_fields_for_its_table(
    ddb_url: str, keyring: Keyring, client: Any
) -> None:
    """Top-level fields are copied per model class so HMACs use the subclass's table; nested ones must be too."""
    base_table, sub_table = unique("nested_base"), unique("nested_sub")
    kr = keyring

    class Base(EncryptedModel):
        Meta = table_meta(ddb_url, base_table, kr)

        pk = UnicodeAttribute(hash_key=True)
        profile = Profile(null=True)

    class Sub(Base):
        Meta = table_meta(ddb_url, sub_table, kr)

    Sub.create_table(wait=True)
    try:
        Sub(pk="s1", profile=Profile(ssn=SSN, address=Address(street=STREET, city="c"))).save()
        raw = client.get_item(TableName=sub_table, Key={"pk": {"S": "s1"}}, ConsistentRead=True)["Item"]
        assert raw["profile"]["M"]["ssn__hmac"] == {"S": Sub.profile.ssn.hmac(SSN)}
        assert [u.pk for u in Sub.scan(Sub.profile.ssn == SSN, consistent_read=True)] == ["s1"]
        assert [u.pk for u in Sub.scan(Sub.profile.address.street == STREET, consistent_read=True)] == ["s1"]
    finally:
        Sub.delete_table()


# -- custom stored names ------------------------------------------------------------------------------------


class ShortStreet(EncryptedMapAttribute):
    street = EncryptedAttribute(str, equality=True, attr_name="st")
    city = UnicodeAttribute(null=True, attr_name="c")


class ShortProfile(EncryptedMapAttribute):
    ssn = EncryptedAttribute(str, equality=True, attr_name="tin")
    address = ShortStreet(null=True, attr_name="addr")


def test_custom_stored_names_through_save_filter_and_update(
    ddb_url: str, keyring: Keyring, client: Any
) -> None:
    table = unique("nested_names")
    kr = keyring

    class Short(EncryptedModel):
        Meta = table_meta(ddb_url, table, kr)

        pk = UnicodeAttribute(hash_key=True)
        profile = ShortProfile(null=True, attr_name="p")
        olds = ListAttribute(of=ShortStreet, null=True, attr_name="o")

    Short.create_table(wait=True)
    try:
        item = Short(pk="n1", profile=ShortProfile(ssn=SSN, address=ShortStreet(street=STREET, city="c1")))
        item.olds = [ShortStreet(street="old street")]
        item.save()
        raw = client.get_item(TableName=table, Key={"pk": {"S": "n1"}}, ConsistentRead=True)["Item"]
        assert set(raw) == {"pk", "p", "o"}
        assert set(raw["p"]["M"]) == {"tin__source", "tin__hmac", "addr"}
        assert raw["p"]["M"]["addr"]["M"]["st__hmac"] == {"S": Short.profile.address.street.hmac(STREET)}
        assert raw["p"]["M"]["addr"]["M"]["c"] == {"S": "c1"}
        assert set(raw["o"]["L"][0]["M"]) == {"st__source", "st__hmac"}
        assert_no_plaintext(raw, SSN, STREET, "old street")

        assert [u.pk for u in Short.scan(Short.profile.address.street == STREET, consistent_read=True)] == [
            "n1"
        ]
        assert [u.pk for u in Short.scan(Short.profile.ssn.exists(), consistent_read=True)] == ["n1"]
        item.update(actions=[Short.profile.address.street.set("new street"), Short.profile.ssn.remove()])
        raw = client.get_item(TableName=table, Key={"pk": {"S": "n1"}}, ConsistentRead=True)["Item"]
        assert set(raw["p"]["M"]) == {"addr"}
        assert raw["p"]["M"]["addr"]["M"]["st__hmac"] == {
            "S": Short.profile.address.street.hmac("new street")
        }
        got = Short.get("n1", consistent_read=True)
        assert (got.profile.ssn, got.profile.address.street, got.olds[0].street) == (
            None,
            "new street",
            "old street",
        )
        assert [
            u.pk for u in Short.scan(Short.profile.address.street == "new street", consistent_read=True)
        ] == ["n1"]
    finally:
        Short.delete_table()
