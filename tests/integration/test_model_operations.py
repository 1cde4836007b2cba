"""Model operations on DynamoDB Local: schema, every supported type, CRUD, batches, pagination, projections.

Every test that writes also reads the raw item back (boto3, past the library) to prove that DynamoDB
only ever holds ciphertext (``x__source``, binary) and HMACs (``x__hmac``, the value ``Model.x.hmac``
computes), never a plaintext.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import AttributeNullError, DeleteError, PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from stashtest import assert_no_plaintext, assert_sealed, created, raw_item, table_meta, unique

from pynamodb_stash import EncryptedAttribute, EncryptedModel, EncryptionError, HmacAttribute, Keyring

# -- models -------------------------------------------------------------------------------------------


def define_user(url: str, table: str, kr: Keyring) -> type[EncryptedModel]:
    class EmailIndex(GlobalSecondaryIndex):
        class Meta:
            index_name = "EmailIndex"
            projection = AllProjection()

        email = HmacAttribute(hash_key=True)

    class User(EncryptedModel):
        Meta = table_meta(url, table, kr)

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True)
        name = EncryptedAttribute(str)
        age = EncryptedAttribute(int, null=True)
        role = UnicodeAttribute()
        email_index = EmailIndex()

    return User


def define_typed(url: str, table: str, kr: Keyring) -> type[EncryptedModel]:
    class Typed(EncryptedModel):
        Meta = table_meta(url, table, kr)

        pk = UnicodeAttribute(hash_key=True)
        s = EncryptedAttribute(str, null=True)
        b = EncryptedAttribute(bytes, null=True)
        i = EncryptedAttribute(int, null=True)
        f = EncryptedAttribute(float, null=True)
        d = EncryptedAttribute(Decimal, null=True)
        flag = EncryptedAttribute(bool, null=True)
        dt = EncryptedAttribute(datetime, null=True)
        day = EncryptedAttribute(date, null=True)
        obj = EncryptedAttribute(dict, null=True)
        arr = EncryptedAttribute(list, null=True)
        tags = EncryptedAttribute(set, null=True)
        utc = EncryptedAttribute(UTCDateTimeAttribute(), null=True)
        num = EncryptedAttribute(NumberAttribute(), null=True)
        tag = EncryptedAttribute(str, equality=True, null=True)

    return Typed


def define_event(url: str, table: str, kr: Keyring) -> type[EncryptedModel]:
    class Event(EncryptedModel):
        Meta = table_meta(url, table, kr)

        group = UnicodeAttribute(hash_key=True)
        seq = NumberAttribute(range_key=True)
        payload = EncryptedAttribute(str)
        kind = EncryptedAttribute(str, equality=True)
        amount = EncryptedAttribute(Decimal, null=True)

    return Event


# -- fixtures (and ``keyring``, ``client`` from conftest.py) ------------------------------------------


@pytest.fixture(scope="module")
def User(ddb_url: str, keyring: Keyring) -> Iterator[type[EncryptedModel]]:
    yield from created(define_user(ddb_url, unique("ops_users"), keyring))


@pytest.fixture(scope="module")
def Typed(ddb_url: str, keyring: Keyring) -> Iterator[type[EncryptedModel]]:
    yield from created(define_typed(ddb_url, unique("ops_typed"), keyring))


@pytest.fixture(scope="module")
def Event(ddb_url: str, keyring: Keyring) -> Iterator[type[EncryptedModel]]:
    yield from created(define_event(ddb_url, unique("ops_events"), keyring))


def save_user(User: Any, **overrides: Any) -> Any:
    pk = unique("user")
    values: dict[str, Any] = {
        "pk": pk,
        "email": f"{pk}@secret-mail.example",
        "name": f"Secret Name {pk}",
        "age": 4242,
        "role": "admin",
    }
    values.update(overrides)
    user = User(**values)
    user.save()
    return user


# -- schema -------------------------------------------------------------------------------------------


def test_create_table_declares_the_hmac_as_index_key(User: Any, client: Any) -> None:
    table = client.describe_table(TableName=User.Meta.table_name)["Table"]
    definitions = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert definitions == {"pk": "S", "email__hmac": "S"}
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "EmailIndex"
    assert gsi["KeySchema"] == [{"AttributeName": "email__hmac", "KeyType": "HASH"}]
    assert gsi["Projection"]["ProjectionType"] == "ALL"


def test_model_declares_hmac_companion_only_for_equality_fields(User: Any, Typed: Any) -> None:
    attributes = User.get_attributes()
    assert set(attributes) == {"pk", "email", "email__hmac", "name", "age", "role"}
    assert User.email.attr_name == "email__source"
    assert User.email__hmac.attr_name == "email__hmac"
    assert "tag__hmac" in Typed.get_attributes()
    assert "s__hmac" not in Typed.get_attributes()


# -- save / get ---------------------------------------------------------------------------------------


def test_save_get_round_trip_stores_only_ciphertext(User: Any, client: Any) -> None:
    user = save_user(User)
    raw = raw_item(client, User.Meta.table_name, {"pk": {"S": user.pk}})
    assert raw is not None
    assert set(raw) == {"pk", "email__source", "email__hmac", "name__source", "age__source", "role"}
    assert_sealed(raw, "email", hmac=User.email.hmac(user.email))
    assert_sealed(raw, "name")
    assert_sealed(raw, "age")
    assert raw["role"] == {"S": "admin"}
    assert_no_plaintext(raw, user.email, user.name, "Secret Name", "secret-mail", "4242")

    got = User.get(user.pk)
    assert (got.email, got.name, got.age, got.role) == (user.email, user.name, 4242, "admin")
    assert type(got.age) is int


def test_two_saves_of_the_same_value_give_different_ciphertexts(User: Any, client: Any) -> None:
    user = save_user(User)
    first = raw_item(client, User.Meta.table_name, {"pk": {"S": user.pk}})
    user.save()
    second = raw_item(client, User.Meta.table_name, {"pk": {"S": user.pk}})
    assert first is not None and second is not None
    assert first["name__source"] != second["name__source"]
    assert first["email__hmac"] == second["email__hmac"]


PARIS = ZoneInfo("Europe/Paris")

ROUND_TRIP_CASES: list[tuple[str, Any]] = [
    ("s", "h\u00e9llo w\u00f6rld \u2713 secret-string"),
    ("s", ""),
    ("b", b"\x00\xffsecret-bytes\x01\x02"),
    ("b", b""),
    ("i", 0),
    ("i", -987654321),
    ("i", 2**130 + 17),
    ("i", -(2**90)),
    ("i", 255),
    ("i", -128),
    ("i", -(10**5000) + 7),  # beyond Python's default int <-> str digit limit
    ("f", 3.141592653589793),
    ("f", -1.5e-300),
    ("f", 0.0),
    ("d", Decimal("12345.678901234567890123456789")),
    ("d", Decimal("-0.0010")),
    ("flag", True),
    ("flag", False),
    ("dt", datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)),
    ("dt", datetime(2023, 7, 14, 22, 30, tzinfo=PARIS)),
    ("dt", datetime(2023, 1, 14, 22, 30, tzinfo=PARIS)),
    ("dt", datetime(2023, 10, 29, 2, 30, fold=1, tzinfo=PARIS)),  # the repeated hour, second pass
    ("dt", datetime(2021, 3, 4, 5, 6, 7, tzinfo=ZoneInfo("UTC"))),
    ("dt", datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))),
    ("day", date(2000, 2, 29)),
    ("obj", {"secret-key": "secret-value", "n": 1, "nested": {"list": [1, 2.5, "x", None, True]}}),
    ("obj", {}),
    ("arr", [1, "secret-item", 3.5, None, False, {"k": ["v"]}]),
    ("arr", []),
    ("tags", {"secret-red", "secret-green", "blue"}),
    ("tags", set()),
    ("utc", datetime(2020, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)),
    ("num", 42),
    ("num", 2.75),
    ("tag", "secret-tag-value"),
]


def case_id(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 1000:
        return f"int_{value.bit_length()}_bits"
    return repr(value)[:40]


def _recognizable_parts(value: Any) -> list[str | bytes]:
    """Fragments of a plaintext long enough not to occur in random ciphertext by chance."""
    if isinstance(value, (str, bytes)):
        return [value] if len(value) >= 6 else []
    if isinstance(value, (dict, list, set)):
        return ["secret-"] if "secret-" in repr(value) else []
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool) and 10**6 < abs(value) < 10**60:
        return [str(abs(value))[:9]]
    return []


@pytest.mark.parametrize(("field", "value"), ROUND_TRIP_CASES, ids=case_id)
def test_round_trip_of_every_supported_type(Typed: Any, client: Any, field: str, value: Any) -> None:
    pk = unique("typed")
    Typed(pk=pk, **{field: value}).save()

    raw = raw_item(client, Typed.Meta.table_name, {"pk": {"S": pk}})
    assert raw is not None
    hmac = Typed.tag.hmac(value) if field == "tag" else None
    assert_sealed(raw, field, hmac=hmac)
    expected_keys = {"pk", f"{field}__source"} | ({f"{field}__hmac"} if hmac else set())
    assert set(raw) == expected_keys
    for secret in _recognizable_parts(value):
        assert_no_plaintext(raw, secret)

    got = getattr(Typed.get(pk), field)
    assert got == value
    assert type(got) is type(value)
    if isinstance(value, datetime):
        assert got.utcoffset() == value.utcoffset()
        if isinstance(value.tzinfo, ZoneInfo):
            assert got.tzinfo == value.tzinfo
    if isinstance(value, Decimal):
        assert str(got) == str(value)  # exponent kept, not just numerically equal


def test_all_types_in_one_item_round_trip_through_get_query_scan_and_refresh(Typed: Any) -> None:
    pk = unique("typed-all")
    values: dict[str, Any] = {}
    for field, value in ROUND_TRIP_CASES:
        values.setdefault(field, value)
    item = Typed(pk=pk, **values)
    item.save()

    fetched = [
        Typed.get(pk),
        next(iter(Typed.query(pk))),
        next(iter(Typed.scan(Typed.pk == pk))),
        next(iter(Typed.batch_get([pk]))),
    ]
    item.refresh()
    fetched.append(item)
    for instance in fetched:
        for field, value in values.items():
            assert getattr(instance, field) == value, field
            assert type(getattr(instance, field)) is type(value), field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("i", "5"),
        ("i", True),
        ("s", b"bytes"),
        ("dt", datetime(2024, 1, 1, 12, 0)),  # naive
        ("day", datetime(2024, 1, 1, tzinfo=timezone.utc)),
        ("tags", {1, 2}),
        ("obj", {"k": object()}),
        ("arr", ("a", "tuple")),
        ("d", 1.5),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_value_of_the_wrong_type_raises_encryption_error_and_stores_nothing(
    Typed: Any, client: Any, field: str, value: Any
) -> None:
    pk = unique("typed-bad")
    with pytest.raises(EncryptionError) as info:
        Typed(pk=pk, **{field: value}).save()
    assert repr(value) not in str(info.value)
    assert raw_item(client, Typed.Meta.table_name, {"pk": {"S": pk}}) is None


def test_none_with_null_true_stores_neither_attribute(Typed: Any, User: Any, client: Any) -> None:
    pk = unique("typed-none")
    Typed(pk=pk, tag=None, s=None).save()
    raw = raw_item(client, Typed.Meta.table_name, {"pk": {"S": pk}})
    assert raw == {"pk": {"S": pk}}
    got = Typed.get(pk)
    assert all(getattr(got, field) is None for field, _ in ROUND_TRIP_CASES)

    user = save_user(User, age=None)
    raw_user = raw_item(client, User.Meta.table_name, {"pk": {"S": user.pk}})
    assert raw_user is not None
    assert "age__source" not in raw_user and "age" not in raw_user
    assert User.get(user.pk).age is None


@pytest.mark.parametrize("missing", ["name", "email"])
def test_missing_non_null_encrypted_attribute_raises_attribute_null_error(
    User: Any, client: Any, missing: str
) -> None:
    pk = unique("user-null")
    values = {"pk": pk, "email": "null-check@example.com", "name": "Null Check", "role": "r"}
    del values[missing]
    with pytest.raises(AttributeNullError):
        User(**values).save()
    assert raw_item(client, User.Meta.table_name, {"pk": {"S": pk}}) is None


# -- conditional save, refresh, delete ----------------------------------------------------------------


def test_save_with_condition_succeeds_then_fails(User: Any, client: Any) -> None:
    pk = unique("user-cond")
    user = User(pk=pk, email="cond@example.com", name="First Name", role="r")
    user.save(condition=User.pk.does_not_exist())

    clash = User(pk=pk, email="other@example.com", name="Second Name", role="r")
    with pytest.raises(PutError):
        clash.save(condition=User.pk.does_not_exist())
    assert User.get(pk).name == "First Name"

    user.name = "Third Name"
    user.save(condition=User.pk.exists() & (User.role == "r"))
    assert User.get(pk).name == "Third Name"


def test_refresh_reloads_and_decrypts_the_stored_item(User: Any) -> None:
    user = save_user(User)
    other = User.get(user.pk)
    other.name = "Renamed Secretly"
    other.age = None
    other.email = "changed@example.com"
    other.save()

    user.refresh()
    assert user.name == "Renamed Secretly"
    assert user.age is None
    assert user.email == "changed@example.com"
    assert user.role == "admin"


def test_refresh_of_a_deleted_item_raises_does_not_exist(User: Any) -> None:
    user = save_user(User)
    User.get(user.pk).delete()
    with pytest.raises(User.DoesNotExist):
        user.refresh()


def test_delete_removes_the_item(User: Any, client: Any) -> None:
    user = save_user(User)
    with pytest.raises(DeleteError):
        user.delete(condition=User.email == "not-the-email@example.com")
    assert raw_item(client, User.Meta.table_name, {"pk": {"S": user.pk}}) is not None

    user.delete(condition=User.email == user.email)
    assert raw_item(client, User.Meta.table_name, {"pk": {"S": user.pk}}) is None
    with pytest.raises(User.DoesNotExist):
        User.get(user.pk)
    assert list(User.email_index.query(user.email)) == []


# -- batches ------------------------------------------------------------------------------------------


def test_batch_write_and_batch_get_beyond_the_request_limits(Event: Any, client: Any) -> None:
    group = unique("batch")
    count = 130  # > 25 per BatchWriteItem, > 100 per BatchGetItem
    with Event.batch_write() as batch:
        for seq in range(count):
            batch.save(
                Event(
                    group,
                    seq,
                    payload=f"payload-secret-{seq:04d}",
                    kind=f"kind{seq % 3}",
                    amount=Decimal(seq) / 4,
                )
            )

    raw = raw_item(client, Event.Meta.table_name, {"group": {"S": group}, "seq": {"N": "7"}})
    assert raw is not None
    assert_sealed(raw, "payload")
    assert_sealed(raw, "kind", hmac=Event.kind.hmac("kind1"))
    assert_no_plaintext(raw, "payload-secret-0007", "kind1")

    keys = [(group, seq) for seq in range(count)] + [(group, 10_000)]
    got = {item.seq: item for item in Event.batch_get(keys)}
    assert sorted(got) == list(range(count))
    for seq, item in got.items():
        assert item.payload == f"payload-secret-{seq:04d}"
        assert item.kind == f"kind{seq % 3}"
        assert item.amount == Decimal(seq) / 4

    deleted = range(0, count, 3)  # 44 deletes
    with Event.batch_write() as batch:
        for seq in deleted:
            batch.delete(got[seq] if seq % 2 else Event(group, seq))
    remaining = {item.seq for item in Event.batch_get(keys)}
    assert remaining == set(range(count)) - set(deleted)
    assert Event.count(group) == count - len(deleted)


# -- query, scan, count, pagination -------------------------------------------------------------------


def _seed_events(Event: Any, n: int = 10) -> str:
    group = unique("events")
    with Event.batch_write() as batch:
        for seq in range(n):
            batch.save(
                Event(group, seq, payload=f"secret payload {seq}", kind="even" if seq % 2 == 0 else "odd")
            )
    return group


def test_query_with_limit_and_last_evaluated_key_pages_through_decrypted_items(Event: Any) -> None:
    group = _seed_events(Event)

    first = Event.query(group, limit=4)
    first_items = list(first)
    assert [e.seq for e in first_items] == [0, 1, 2, 3]
    assert first.last_evaluated_key == {"group": {"S": group}, "seq": {"N": "3"}}

    rest = Event.query(group, last_evaluated_key=first.last_evaluated_key)
    rest_items = list(rest)
    assert [e.seq for e in rest_items] == [4, 5, 6, 7, 8, 9]
    assert all(e.payload == f"secret payload {e.seq}" for e in first_items + rest_items)

    paged = Event.query(group, page_size=3)
    assert [e.seq for e in paged] == list(range(10))
    assert paged.last_evaluated_key is None

    backwards = Event.query(group, scan_index_forward=False, limit=2, page_size=1)
    assert [e.seq for e in backwards] == [9, 8]

    between = Event.query(group, Event.seq.between(3, 6), filter_condition=Event.kind == "odd")
    assert [(e.seq, e.payload) for e in between] == [(3, "secret payload 3"), (5, "secret payload 5")]


def test_count_by_hash_key_with_range_and_encrypted_filter(Event: Any) -> None:
    group = _seed_events(Event)
    assert Event.count(group) == 10
    assert Event.count(group, filter_condition=Event.kind == "odd") == 5
    assert Event.count(group, Event.seq >= 6) == 4
    assert Event.count(group, Event.seq >= 6, filter_condition=Event.kind == "even") == 2
    assert Event.count(unique("empty")) == 0


def test_scan_with_limit_page_size_segments_and_last_evaluated_key(
    ddb_url: str, table_name: str, keyring: Keyring
) -> None:
    model: Any = define_user(ddb_url, table_name, keyring)
    model.create_table(wait=True)
    try:
        expected = {}
        for n in range(7):
            user = model(pk=f"u{n}", email=f"scan{n}@example.com", name=f"Scanned {n}", age=n, role="r")
            user.save()
            expected[user.pk] = (user.email, user.name, user.age)

        first = model.scan(limit=3)
        first_pks = [u.pk for u in first]
        assert len(first_pks) == 3
        assert first.last_evaluated_key is not None
        rest_pks = [u.pk for u in model.scan(last_evaluated_key=first.last_evaluated_key)]
        assert len(rest_pks) == 4
        assert set(first_pks) | set(rest_pks) == set(expected)

        paged = list(model.scan(page_size=2))
        assert {u.pk: (u.email, u.name, u.age) for u in paged} == expected

        segments = [u.pk for seg in range(2) for u in model.scan(segment=seg, total_segments=2)]
        assert sorted(segments) == sorted(expected)
    finally:
        model.delete_table()


# -- projections --------------------------------------------------------------------------------------


def test_get_with_attributes_to_get_adds_keys_and_decrypts(User: Any) -> None:
    user = save_user(User)
    for projection in (["name"], [User.name], "name"):
        got = User.get(user.pk, attributes_to_get=projection)
        assert got.pk == user.pk
        assert got.name == user.name
        assert got.email is None and got.age is None and got.role is None

    got = User.get(user.pk, attributes_to_get=["email", User.role])
    assert got.email == user.email
    assert got.role == "admin"
    assert got.name is None and got.age is None


def test_attributes_to_get_by_stored_name_decrypts(User: Any) -> None:
    """A user who sees ``email__source`` in the console and projects it gets the email back."""
    user = save_user(User)
    assert User.get(user.pk, attributes_to_get=["name__source"]).name == user.name
    got = User.get(user.pk, attributes_to_get=["email__source"])
    assert got.email == user.email
    assert got.name is None


def test_query_scan_batch_get_with_attributes_to_get(User: Any) -> None:
    user = save_user(User)
    results = [
        *User.query(user.pk, attributes_to_get=["name"]),
        *User.scan(User.pk == user.pk, attributes_to_get=[User.name]),
        *User.batch_get([user.pk], attributes_to_get=["name", "age"]),
        *User.email_index.query(user.email, attributes_to_get=[User.name]),
    ]
    assert len(results) == 4
    for got in results:
        assert got.pk == user.pk
        assert got.name == user.name
        assert got.email is None and got.role is None
    assert results[2].age == 4242
