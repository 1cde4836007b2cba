"""Tampering on DynamoDB Local: items edited past the library (boto3) must never decrypt.

Each test writes items through an ``EncryptedModel``, edits the stored item with boto3 the way an
attacker with write access to the table (or a confused migration script) would, and reads it back
through the model. Every edit must end in ``DecryptionError`` (or ``KeyNotFoundError`` for a key the
keyring does not hold), never in a wrong or unverified value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from stashtest import created, table_meta, unique

from pynamodb_stash import (
    DecryptionError,
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    HmacAttribute,
    KeyNotFoundError,
    Keyring,
    StashError,
)
from pynamodb_stash._crypto import read_key_id

K1 = bytes(range(1, 33))
K2 = bytes(range(33, 65))
INDEX_KEY = bytes(range(100, 132))
KEYRING = Keyring.local(K1, index_key=INDEX_KEY, key_id="k1")


def define_user(url: str, table: str, keyring: Keyring, *, logical: str | None = None, name: str = "User") -> Any:
    extra: dict[str, Any] = {} if logical is None else {"logical_table_name": logical}
    index_meta = type(
        "Meta",
        (),
        {"index_name": "EmailIndex", "projection": AllProjection(), "read_capacity_units": 5,
         "write_capacity_units": 5},
    )
    email_index = type(
        "EmailIndex", (GlobalSecondaryIndex,), {"Meta": index_meta, "email": HmacAttribute(hash_key=True)}
    )
    return type(
        name,
        (EncryptedModel,),
        {
            "Meta": table_meta(url, table, keyring, capacity=5, **extra),
            "pk": UnicodeAttribute(hash_key=True),
            "email": EncryptedAttribute(str, equality=True),
            "name": EncryptedAttribute(str),
            "age": EncryptedAttribute(int, null=True),
            "email_index": email_index(),
        },
    )


@pytest.fixture(scope="module")
def User(ddb_url: str) -> Iterator[Any]:
    yield from created(define_user(ddb_url, unique("tamper_users"), KEYRING))


@pytest.fixture(scope="module")
def OtherUser(ddb_url: str) -> Iterator[Any]:
    """A second table with the same schema and the same keyring."""
    yield from created(define_user(ddb_url, unique("tamper_users_copy"), KEYRING, name="OtherUser"))


@pytest.fixture(scope="module")
def Counter(ddb_url: str) -> Iterator[Any]:
    """A table keyed by a number."""
    meta = table_meta(ddb_url, unique("tamper_numbers"), KEYRING, capacity=5)
    model = type(
        "Counter",
        (EncryptedModel,),
        {"Meta": meta, "pk": NumberAttribute(hash_key=True), "secret": EncryptedAttribute(str)},
    )
    yield from created(model)


@pytest.fixture(scope="module")
def Event(ddb_url: str) -> Iterator[Any]:
    """A table with a range key."""
    meta = table_meta(ddb_url, unique("tamper_events"), KEYRING, capacity=5)
    model = type(
        "Event",
        (EncryptedModel,),
        {
            "Meta": meta,
            "pk": UnicodeAttribute(hash_key=True),
            "sk": UnicodeAttribute(range_key=True),
            "detail": EncryptedAttribute(str),
        },
    )
    yield from created(model)


@pytest.fixture(scope="module")
def Account(ddb_url: str) -> Iterator[Any]:
    """A table whose hash key is an encrypted attribute's HMAC."""
    meta = table_meta(ddb_url, unique("tamper_accounts"), KEYRING, capacity=5)
    model = type(
        "Account",
        (EncryptedModel,),
        {
            "Meta": meta,
            "email": EncryptedAttribute(str, equality=True, hash_key=True),
            "name": EncryptedAttribute(str),
        },
    )
    yield from created(model)


def save_user(model: Any, **overrides: Any) -> Any:
    pk = unique("user")
    values: dict[str, Any] = {"pk": pk, "email": f"{pk}@mail.example", "name": f"Name of {pk}", "age": 42}
    values.update(overrides)
    user = model(**values)
    user.save()
    return user


def raw_get(client: Any, table: str, key: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    return item


def raw_set(client: Any, table: str, key: dict[str, Any], **values: dict[str, Any]) -> None:
    names = {f"#a{i}": name for i, name in enumerate(values)}
    placeholders = {f":v{i}": value for i, value in enumerate(values.values())}
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=placeholders,
    )


def user_key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def consistent_get(model: Any, *key: Any) -> Any:
    return model.get(*key, consistent_read=True)


# -- sanity ------------------------------------------------------------------------------------------


def test_untampered_items_read_back(User: Any, client: Any) -> None:
    user = save_user(User)
    back = consistent_get(User, user.pk)
    assert (back.email, back.name, back.age) == (user.email, user.name, 42)
    stored = raw_get(client, User.Meta.table_name, user_key(user.pk))
    assert set(stored) == {"pk", "email__source", "email__hmac", "name__source", "age__source"}


# -- moving ciphertexts ------------------------------------------------------------------------------


@pytest.mark.parametrize("attribute", ["name__source", "email__source", "age__source"])
def test_source_swapped_between_items(User: Any, client: Any, attribute: str) -> None:
    table = User.Meta.table_name
    a, b = save_user(User), save_user(User)
    stored_a = raw_get(client, table, user_key(a.pk))
    stored_b = raw_get(client, table, user_key(b.pk))
    raw_set(client, table, user_key(a.pk), **{attribute: stored_b[attribute]})
    raw_set(client, table, user_key(b.pk), **{attribute: stored_a[attribute]})
    for pk in (a.pk, b.pk):
        with pytest.raises(DecryptionError):
            consistent_get(User, pk)
    with pytest.raises(DecryptionError):
        list(User.scan(User.pk.is_in(a.pk, b.pk), consistent_read=True))


def test_whole_item_copied_under_another_primary_key(User: Any, client: Any) -> None:
    table = User.Meta.table_name
    a = save_user(User)
    stored = raw_get(client, table, user_key(a.pk))
    forged_pk = unique("forged")
    client.put_item(TableName=table, Item={**stored, "pk": {"S": forged_pk}})
    with pytest.raises(DecryptionError):
        consistent_get(User, forged_pk)


def test_source_copied_into_another_attribute_of_the_same_item(User: Any, client: Any) -> None:
    table = User.Meta.table_name
    user = save_user(User, name="Mallory")
    stored = raw_get(client, table, user_key(user.pk))
    raw_set(client, table, user_key(user.pk), email__source=stored["name__source"])
    with pytest.raises(DecryptionError):
        consistent_get(User, user.pk)


def test_source_copied_into_another_attribute_with_matching_hmac(User: Any, client: Any) -> None:
    """Even with the HMAC an attacker computed for the copied value, the ciphertext is path-bound."""
    table = User.Meta.table_name
    user = save_user(User, name="mallory@mail.example")
    stored = raw_get(client, table, user_key(user.pk))
    raw_set(
        client, table, user_key(user.pk),
        email__source=stored["name__source"],
        email__hmac={"S": User.email.hmac("mallory@mail.example")},
    )
    with pytest.raises(DecryptionError):
        consistent_get(User, user.pk)


def test_item_copied_to_another_table(User: Any, OtherUser: Any, client: Any) -> None:
    user = save_user(User)
    stored = raw_get(client, User.Meta.table_name, user_key(user.pk))
    client.put_item(TableName=OtherUser.Meta.table_name, Item=stored)
    with pytest.raises(DecryptionError):
        consistent_get(OtherUser, user.pk)
    # With the original logical table name (a restored or renamed table), it reads back.
    restored = define_user(
        OtherUser.Meta.host, OtherUser.Meta.table_name, KEYRING, logical=User.Meta.table_name, name="Restored"
    )
    back = consistent_get(restored, user.pk)
    assert (back.email, back.name) == (user.email, user.name)


# -- HMACs -------------------------------------------------------------------------------------------


def test_hmac_swapped_between_items(User: Any, client: Any) -> None:
    table = User.Meta.table_name
    a, b = save_user(User), save_user(User)
    hmac_a = raw_get(client, table, user_key(a.pk))["email__hmac"]
    hmac_b = raw_get(client, table, user_key(b.pk))["email__hmac"]
    raw_set(client, table, user_key(a.pk), email__hmac=hmac_b)
    raw_set(client, table, user_key(b.pk), email__hmac=hmac_a)
    for pk in (a.pk, b.pk):
        with pytest.raises(DecryptionError) as excinfo:
            consistent_get(User, pk)
        # The HMAC is checked against the item: either by recomputing it from the decrypted value
        # ("hmac_mismatch") or by binding it into the ciphertext's associated data ("decryption_failed").
        assert excinfo.value.code in ("hmac_mismatch", "decryption_failed")
    # A query for a's email now finds b's item, which must not come back as a match.
    with pytest.raises(DecryptionError):
        list(User.email_index.query(a.email))


def test_hmac_replaced_by_one_for_another_value(User: Any, client: Any) -> None:
    """An item made to answer queries for a value it does not hold."""
    table = User.Meta.table_name
    user = save_user(User)
    raw_set(client, table, user_key(user.pk), email__hmac={"S": User.email.hmac("ceo@mail.example")})
    with pytest.raises(DecryptionError):
        consistent_get(User, user.pk)
    with pytest.raises(DecryptionError):
        list(User.email_index.query("ceo@mail.example"))


# -- damaged ciphertexts -----------------------------------------------------------------------------


def _flip(blob: bytes, position: int) -> bytes:
    tampered = bytearray(blob)
    tampered[position] ^= 0x01
    return bytes(tampered)


def test_flipped_bytes_of_a_stored_source(User: Any, client: Any) -> None:
    table = User.Meta.table_name
    user = save_user(User)
    blob = bytes(raw_get(client, table, user_key(user.pk))["name__source"]["B"])
    header = 2 + blob[1]
    # version byte, nonce start/end, first ciphertext byte, tag start, last byte
    positions = [0, header, header + 11, header + 12, len(blob) - 16, len(blob) - 1]
    for position in positions:
        raw_set(client, table, user_key(user.pk), name__source={"B": _flip(blob, position)})
        with pytest.raises(DecryptionError):
            consistent_get(User, user.pk)
    # Bytes of the key id may turn it into another (unknown) key id: still refused.
    for position in range(1, header):
        raw_set(client, table, user_key(user.pk), name__source={"B": _flip(blob, position)})
        with pytest.raises((DecryptionError, KeyNotFoundError)):
            consistent_get(User, user.pk)
    raw_set(client, table, user_key(user.pk), name__source={"B": blob})
    assert consistent_get(User, user.pk).name == user.name


@pytest.mark.parametrize("cut", [1, 16, 17])
def test_truncated_and_extended_sources(User: Any, client: Any, cut: int) -> None:
    table = User.Meta.table_name
    user = save_user(User)
    blob = bytes(raw_get(client, table, user_key(user.pk))["name__source"]["B"])
    raw_set(client, table, user_key(user.pk), name__source={"B": blob[:-cut]})
    with pytest.raises(DecryptionError):
        consistent_get(User, user.pk)
    raw_set(client, table, user_key(user.pk), name__source={"B": blob + b"\x00" * cut})
    with pytest.raises(DecryptionError):
        consistent_get(User, user.pk)


@pytest.mark.parametrize(
    "stored",
    [{"S": "Alice"}, {"N": "42"}, {"BOOL": True}, {"SS": ["Alice"]}, {"M": {"B": {"S": "x"}}}, {"L": [{"S": "x"}]},
     {"B": b"Alice"}],
    ids=["S", "N", "BOOL", "SS", "M", "L", "B-plaintext"],
)
def test_plaintext_where_ciphertext_is_expected(User: Any, client: Any, stored: dict[str, Any]) -> None:
    table = User.Meta.table_name
    user = save_user(User)
    raw_set(client, table, user_key(user.pk), name__source=stored)
    with pytest.raises(DecryptionError):
        consistent_get(User, user.pk)


# -- keys --------------------------------------------------------------------------------------------


def test_value_written_under_a_keyring_with_other_key_ids(User: Any, client: Any) -> None:
    writer = define_user(
        User.Meta.host, User.Meta.table_name, Keyring.local(K2, index_key=INDEX_KEY, key_id="other-7"), name="W"
    )
    user = save_user(writer)
    with pytest.raises(KeyNotFoundError) as excinfo:
        consistent_get(User, user.pk)
    assert "other-7" in str(excinfo.value)


def test_value_written_under_same_key_ids_with_other_bytes(User: Any, client: Any) -> None:
    writer = define_user(
        User.Meta.host, User.Meta.table_name, Keyring.local(K2, index_key=INDEX_KEY, key_id="k1"), name="W"
    )
    user = save_user(writer)
    with pytest.raises(DecryptionError):
        consistent_get(User, user.pk)


def test_rotation_with_a_decrypt_only_key(User: Any, client: Any) -> None:
    table = User.Meta.table_name
    old_items = [save_user(User) for _ in range(3)]
    rotated_keyring = Keyring.local(K2, index_key=INDEX_KEY, key_id="k2", decrypt_only={"k1": K1})
    Rotated = define_user(User.Meta.host, table, rotated_keyring, name="Rotated")

    for old in old_items:
        back = consistent_get(Rotated, old.pk)
        assert (back.email, back.name, back.age) == (old.email, old.name, 42)
    # The index key did not change: old items are still found by their plaintext.
    found = list(Rotated.email_index.query(old_items[0].email))
    assert [item.pk for item in found] == [old_items[0].pk]

    fresh = save_user(Rotated)
    stored = raw_get(client, table, user_key(fresh.pk))
    assert read_key_id(bytes(stored["name__source"]["B"])) == "k2"
    assert read_key_id(bytes(stored["email__source"]["B"])) == "k2"

    # Re-encrypting one field of an old item moves it to the new key.
    old = consistent_get(Rotated, old_items[1].pk)
    old.update(actions=[Rotated.name.set("Renamed")])
    stored = raw_get(client, table, user_key(old.pk))
    assert read_key_id(bytes(stored["name__source"]["B"])) == "k2"
    assert read_key_id(bytes(stored["email__source"]["B"])) == "k1"
    assert consistent_get(Rotated, old.pk).name == "Renamed"

    # Readers still on the old keyring cannot read what the new key wrote.
    with pytest.raises(KeyNotFoundError) as excinfo:
        consistent_get(User, fresh.pk)
    assert "k2" in str(excinfo.value)


# -- other key shapes --------------------------------------------------------------------------------


def test_source_swapped_between_items_with_range_keys(Event: Any, client: Any) -> None:
    table = Event.Meta.table_name
    pk = unique("stream")
    Event(pk=pk, sk="001", detail="first").save()
    Event(pk=pk, sk="002", detail="second").save()
    key1 = {"pk": {"S": pk}, "sk": {"S": "001"}}
    key2 = {"pk": {"S": pk}, "sk": {"S": "002"}}
    first = raw_get(client, table, key1)
    second = raw_get(client, table, key2)
    raw_set(client, table, key1, detail__source=second["detail__source"])
    raw_set(client, table, key2, detail__source=first["detail__source"])
    with pytest.raises(DecryptionError):
        consistent_get(Event, pk, "001")
    with pytest.raises(DecryptionError):
        list(Event.query(pk, consistent_read=True))


def test_item_moved_to_another_range_key(Event: Any, client: Any) -> None:
    table = Event.Meta.table_name
    pk = unique("stream")
    Event(pk=pk, sk="001", detail="first").save()
    stored = raw_get(client, table, {"pk": {"S": pk}, "sk": {"S": "001"}})
    client.put_item(TableName=table, Item={**stored, "sk": {"S": "001 "}})
    with pytest.raises(DecryptionError):
        consistent_get(Event, pk, "001 ")


def test_item_rekeyed_under_another_hmac_hash_key(Account: Any, client: Any) -> None:
    table = Account.Meta.table_name
    alice, mallory = unique("alice") + "@mail.example", unique("mallory") + "@mail.example"
    Account(email=alice, name="Alice").save()
    Account(email=mallory, name="Mallory").save()
    stored = raw_get(client, table, {"email__hmac": {"S": Account.email.hmac(alice)}})
    client.put_item(TableName=table, Item={**stored, "email__hmac": {"S": Account.email.hmac(mallory)}})
    with pytest.raises(DecryptionError):
        consistent_get(Account, mallory)
    assert consistent_get(Account, alice).name == "Alice"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (10**37 + 1, 10**37 + 2),  # 38 significant digits, as DynamoDB allows
        (12345678901234567890123456789012345678, 12345678901234567890123456789012345679),
        (1234567890123456789012345678901, 1234567890123456789012345678902),
    ],
    ids=["1e37+1/2", "38-digits", "31-digits"],
)
def test_source_swapped_between_items_with_close_number_keys(
    Counter: Any, client: Any, first: int, second: int
) -> None:
    """Numeric keys that differ only after the 28th digit are different items and must not share bindings."""
    table = Counter.Meta.table_name
    Counter(pk=first, secret="first secret").save()
    Counter(pk=second, secret="second secret").save()
    key1, key2 = {"pk": {"N": str(first)}}, {"pk": {"N": str(second)}}
    stored1, stored2 = raw_get(client, table, key1), raw_get(client, table, key2)
    assert consistent_get(Counter, first).secret == "first secret"
    raw_set(client, table, key1, secret__source=stored2["secret__source"])
    raw_set(client, table, key2, secret__source=stored1["secret__source"])
    with pytest.raises(DecryptionError):
        consistent_get(Counter, first)
    with pytest.raises(DecryptionError):
        consistent_get(Counter, second)


def test_number_keys_written_in_another_form_still_decrypt(Counter: Any, client: Any) -> None:
    """DynamoDB normalizes numbers ("1.50" is stored as "1.5"); the binding must survive that."""
    Counter(pk=1.50, secret="one and a half").save()
    assert consistent_get(Counter, 1.5).secret == "one and a half"
    Counter(pk=100, secret="hundred").save()
    assert consistent_get(Counter, 100).secret == "hundred"


# -- nested values (EncryptedMapAttribute) -----------------------------------------------------------


class Address(EncryptedMapAttribute):
    street = EncryptedAttribute(str)
    zip = EncryptedAttribute(str, equality=True, null=True)
    city = UnicodeAttribute(null=True)


class Profile(EncryptedMapAttribute):
    home = Address(null=True)


@pytest.fixture(scope="module")
def Person(ddb_url: str) -> Iterator[Any]:
    meta = table_meta(ddb_url, unique("tamper_people"), KEYRING, capacity=5)
    model = type(
        "Person",
        (EncryptedModel,),
        {
            "Meta": meta,
            "pk": UnicodeAttribute(hash_key=True),
            "home": Address(null=True),
            "work": Address(null=True),
            "past": ListAttribute(of=Address, null=True),
            "profile": Profile(null=True),
        },
    )
    yield from created(model)


def save_person(model: Any) -> Any:
    pk = unique("person")
    person = model(
        pk=pk,
        home=Address(street=f"Home street of {pk}", zip="1011", city="Amsterdam"),
        work=Address(street=f"Work street of {pk}", zip="2022", city="Utrecht"),
        past=[Address(street="First street"), Address(street="Second street")],
        profile=Profile(home=Address(street="Profile street")),
    )
    person.save()
    return person


def test_nested_values_read_back(Person: Any, client: Any) -> None:
    person = save_person(Person)
    back = consistent_get(Person, person.pk)
    assert (back.home.street, back.home.zip, back.work.street) == (person.home.street, "1011", person.work.street)
    assert [a.street for a in back.past] == ["First street", "Second street"]
    assert back.profile.home.street == "Profile street"
    stored = raw_get(client, Person.Meta.table_name, user_key(person.pk))
    assert set(stored["home"]["M"]) == {"street__source", "zip__source", "zip__hmac", "city"}


def test_nested_source_swapped_between_two_maps_of_an_item(Person: Any, client: Any) -> None:
    table = Person.Meta.table_name
    person = save_person(Person)
    stored = raw_get(client, table, user_key(person.pk))
    home, work = stored["home"]["M"], stored["work"]["M"]
    home["street__source"], work["street__source"] = work["street__source"], home["street__source"]
    raw_set(client, table, user_key(person.pk), home=stored["home"], work=stored["work"])
    with pytest.raises(DecryptionError):
        consistent_get(Person, person.pk)


def test_whole_maps_swapped_within_an_item(Person: Any, client: Any) -> None:
    table = Person.Meta.table_name
    person = save_person(Person)
    stored = raw_get(client, table, user_key(person.pk))
    raw_set(client, table, user_key(person.pk), home=stored["work"], work=stored["home"])
    with pytest.raises(DecryptionError):
        consistent_get(Person, person.pk)


def test_list_elements_reordered(Person: Any, client: Any) -> None:
    table = Person.Meta.table_name
    person = save_person(Person)
    stored = raw_get(client, table, user_key(person.pk))
    raw_set(client, table, user_key(person.pk), past={"L": list(reversed(stored["past"]["L"]))})
    with pytest.raises(DecryptionError):
        consistent_get(Person, person.pk)


def test_nested_map_moved_to_another_depth(Person: Any, client: Any) -> None:
    table = Person.Meta.table_name
    person = save_person(Person)
    stored = raw_get(client, table, user_key(person.pk))
    raw_set(client, table, user_key(person.pk), home=stored["profile"]["M"]["home"])
    with pytest.raises(DecryptionError):
        consistent_get(Person, person.pk)


def test_nested_source_swapped_between_items(Person: Any, client: Any) -> None:
    table = Person.Meta.table_name
    a, b = save_person(Person), save_person(Person)
    home_b = raw_get(client, table, user_key(b.pk))["home"]
    raw_set(client, table, user_key(a.pk), home=home_b)
    with pytest.raises(DecryptionError):
        consistent_get(Person, a.pk)


def test_nested_hmac_replaced(Person: Any, client: Any) -> None:
    table = Person.Meta.table_name
    person = save_person(Person)
    stored = raw_get(client, table, user_key(person.pk))
    stored["home"]["M"]["zip__hmac"] = stored["work"]["M"]["zip__hmac"]
    raw_set(client, table, user_key(person.pk), home=stored["home"])
    with pytest.raises(DecryptionError):
        consistent_get(Person, person.pk)


def test_every_tamper_error_is_a_stash_error() -> None:
    assert issubclass(DecryptionError, StashError)
    assert issubclass(KeyNotFoundError, StashError)
