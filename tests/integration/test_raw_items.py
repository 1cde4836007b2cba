"""The raw-item API against DynamoDB Local, interoperating with boto3 and with the models.

Both directions, in both item shapes:

- ``encrypt_item`` then ``boto3.client.put_item`` (DynamoDB JSON) or ``boto3.resource Table.put_item``
  (document values: ``Decimal``, ``boto3.dynamodb.types.Binary``, sets), then ``Model.get``;
- ``Model.save`` then ``client.get_item`` / ``Table.get_item``, then ``decrypt_item``;

for every supported type, encrypted maps and lists of them, HMAC-keyed and polymorphic models, a GSI
on an HMAC, numeric keys, S3-export lines and Streams images. DynamoDB Local has no reliable Streams,
so images are built from ``get_item`` responses, which are what a stream record's images hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import boto3
import pytest
import stashtest
from boto3.dynamodb.types import Binary
from pynamodb.attributes import (
    DiscriminatorAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from stashtest import assert_no_plaintext, av_to_doc, exported, json_to_av, unique

from pynamodb_stash import (
    DecryptionError,
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    EncryptionError,
    HmacAttribute,
    KeyNotFoundError,
    Keyring,
    StashError,
    bulk_decrypt_items,
    bulk_encrypt_items,
    decrypt_item,
    encrypt_item,
)

REGION = "us-east-1"
MARKER = "zq-PLAINTEXT-MARKER-4410"


# -- helpers ------------------------------------------------------------------------------------------


def assert_clean(error: BaseException, *secrets: str | bytes) -> None:
    """:func:`stashtest.assert_clean`, with this module's MARKER among the secrets."""
    stashtest.assert_clean(error, MARKER, *secrets)


# -- models -------------------------------------------------------------------------------------------


class Address(EncryptedMapAttribute):
    street = EncryptedAttribute(str, equality=True)
    city = UnicodeAttribute(null=True)
    zip = NumberAttribute(null=True)


class Profile(EncryptedMapAttribute):
    ssn = EncryptedAttribute(str, equality=True)
    dob = EncryptedAttribute(date, null=True)
    address = Address(null=True)
    note = UnicodeAttribute(null=True)


def define_typed(url: str, table: str, kr: Keyring) -> type[EncryptedModel]:
    class TagIndex(GlobalSecondaryIndex):
        class Meta:
            index_name = "TagIndex"
            projection = AllProjection()

        tag = HmacAttribute(hash_key=True)

    class Typed(EncryptedModel):
        class Meta:
            table_name = table
            host = url
            region = REGION
            keyring = kr
            billing_mode = "PAY_PER_REQUEST"

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
        js = EncryptedAttribute(JSONAttribute(), null=True)
        tag = EncryptedAttribute(str, equality=True, null=True)
        role = UnicodeAttribute(null=True)
        profile = Profile(null=True)
        history = ListAttribute(of=Address, null=True)
        tag_index = TagIndex()

    return Typed


def define_account(url: str, table: str, kr: Keyring) -> type[EncryptedModel]:
    class Account(EncryptedModel):
        class Meta:
            table_name = table
            host = url
            region = REGION
            keyring = kr
            billing_mode = "PAY_PER_REQUEST"

        email = EncryptedAttribute(str, equality=True, hash_key=True)
        name = EncryptedAttribute(str)
        plan = UnicodeAttribute(null=True)

    return Account


def define_event(url: str, table: str, kr: Keyring) -> type[EncryptedModel]:
    class Event(EncryptedModel):
        class Meta:
            table_name = table
            host = url
            region = REGION
            keyring = kr
            billing_mode = "PAY_PER_REQUEST"

        group = UnicodeAttribute(hash_key=True)
        seq = NumberAttribute(range_key=True)
        payload = EncryptedAttribute(str)
        kind = EncryptedAttribute(str, equality=True, null=True)

    return Event


def define_records(url: str, table: str, kr: Keyring) -> tuple[Any, Any, Any]:
    class Record(EncryptedModel):
        class Meta:
            table_name = table
            host = url
            region = REGION
            keyring = kr
            billing_mode = "PAY_PER_REQUEST"

        pk = UnicodeAttribute(hash_key=True)
        kind = DiscriminatorAttribute()
        owner = EncryptedAttribute(str, equality=True)

    class Patient(Record, discriminator="patient"):
        diagnosis = EncryptedAttribute(str, equality=True)
        notes = EncryptedAttribute(list, null=True)

    class Invoice(Record, discriminator="invoice"):
        amount = EncryptedAttribute(Decimal)
        paid = NumberAttribute(null=True)

    return Record, Patient, Invoice


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture(scope="module")
def client(ddb_url: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=ddb_url, region_name=REGION)


@pytest.fixture(scope="module")
def resource(ddb_url: str) -> Any:
    return boto3.resource("dynamodb", endpoint_url=ddb_url, region_name=REGION)


def _created(*models: Any) -> Iterator[None]:
    for model in models:
        model.create_table(wait=True)
    try:
        yield
    finally:
        for model in models:
            model.delete_table()


@pytest.fixture(scope="module")
def Typed(ddb_url: str, keyring: Keyring) -> Iterator[Any]:
    model = define_typed(ddb_url, unique("raw_typed"), keyring)
    for _ in _created(model):
        yield model


@pytest.fixture(scope="module")
def Account(ddb_url: str, keyring: Keyring) -> Iterator[Any]:
    model = define_account(ddb_url, unique("raw_accounts"), keyring)
    for _ in _created(model):
        yield model


@pytest.fixture(scope="module")
def Event(ddb_url: str, keyring: Keyring) -> Iterator[Any]:
    model = define_event(ddb_url, unique("raw_events"), keyring)
    for _ in _created(model):
        yield model


@pytest.fixture(scope="module")
def records(ddb_url: str, keyring: Keyring) -> Iterator[tuple[Any, Any, Any]]:
    models = define_records(ddb_url, unique("raw_records"), keyring)
    for _ in _created(models[0]):
        yield models


def get_raw(client: Any, model: Any, key: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = client.get_item(TableName=model.Meta.table_name, Key=key, ConsistentRead=True)["Item"]
    return item


def get_doc(resource: Any, model: Any, key: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = resource.Table(model.Meta.table_name).get_item(Key=key, ConsistentRead=True)["Item"]
    return item


# -- every supported type, both shapes, both directions ----------------------------------------------

IST = timezone(timedelta(hours=5, minutes=30))
# id -> (field, DynamoDB JSON value, the value the model holds)
CASES: dict[str, tuple[str, dict[str, Any], Any]] = {
    "str": ("s", {"S": f"Secret ünïcode {MARKER}"}, f"Secret ünïcode {MARKER}"),
    "str-empty": ("s", {"S": ""}, ""),
    "bytes": ("b", {"B": b"\x00\xff" + MARKER.encode()}, b"\x00\xff" + MARKER.encode()),
    "int": ("i", {"N": "-987654321987"}, -987654321987),
    "int-zero": ("i", {"N": "0"}, 0),
    "int-big": ("i", {"N": str(2**130 + 7)}, 2**130 + 7),
    "float": ("f", {"N": "3.14159"}, 3.14159),
    "decimal": ("d", {"N": "12.3400"}, Decimal("12.3400")),
    "bool": ("flag", {"BOOL": False}, False),
    "datetime": ("dt", {"S": "2024-02-29T23:59:58.123456+05:30"}, datetime(2024, 2, 29, 23, 59, 58, 123456, IST)),
    "date": ("day", {"S": "2024-02-29"}, date(2024, 2, 29)),
    "dict-text": ("obj", json_to_av({"name": MARKER, "nested": {"ok": True, "none": None, "l": ["a"]}}),
                  {"name": MARKER, "nested": {"ok": True, "none": None, "l": ["a"]}}),
    "dict-numbers": ("obj", json_to_av({"n": 987654321987, "f": 2.5, "deep": {"l": [1, "x"]}}),
                     {"n": 987654321987, "f": 2.5, "deep": {"l": [1, "x"]}}),
    "list-text": ("arr", json_to_av([MARKER, None, True, {"k": "v"}]), [MARKER, None, True, {"k": "v"}]),
    "list-numbers": ("arr", json_to_av([987654321987, 2.5, "a"]), [987654321987, 2.5, "a"]),
    "set": ("tags", {"SS": ["green", MARKER]}, {"green", MARKER}),
    "codec-utcdatetime": ("utc", {"S": "2024-01-02T03:04:05.000006+0000"},
                          datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)),
    "codec-number": ("num", {"N": "7654321987"}, 7654321987),
    "codec-json": ("js", {"S": json.dumps({"a": [1, MARKER]})}, {"a": [1, MARKER]}),
    "equality-str": ("tag", {"S": f"tag {MARKER}"}, f"tag {MARKER}"),
}
SHAPES = ["dynamodb-json", "document"]


def _case_params() -> list[Any]:
    return [pytest.param(case, shape, id=f"{case}-{shape}") for case in CASES for shape in SHAPES]


def _secrets(value: Any) -> list[str | bytes]:
    if isinstance(value, bytes):
        return [value]
    if isinstance(value, (str, dict, list, set)) and MARKER in repr(value):
        return [MARKER]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**6:
        return [str(abs(value))]
    if isinstance(value, dict) and "987654321987" in repr(value) or isinstance(value, list) and 987654321987 in value:
        return ["987654321987"]
    return []


@pytest.mark.parametrize("case, shape", _case_params())
def test_encrypt_item_then_put_item_then_model_get(
    Typed: Any, client: Any, resource: Any, case: str, shape: str
) -> None:
    field, av, expected = CASES[case]
    pk = unique(case)
    if shape == "dynamodb-json":
        stored = encrypt_item(Typed, {"pk": {"S": pk}, field: av, "role": {"S": "r"}})
        client.put_item(TableName=Typed.Meta.table_name, Item=stored)
    else:
        stored = encrypt_item(Typed, {"pk": pk, field: av_to_doc(av), "role": "r"})
        resource.Table(Typed.Meta.table_name).put_item(Item=stored)

    raw = get_raw(client, Typed, {"pk": {"S": pk}})
    assert field not in raw and list(raw[f"{field}__source"]) == ["B"]
    assert raw["role"] == {"S": "r"}
    if field == "tag":
        assert raw["tag__hmac"] == {"S": Typed.tag.hmac(expected)}
    assert_no_plaintext(raw, *_secrets(expected))

    got = getattr(Typed.get(pk, consistent_read=True), field)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize("case, shape", _case_params())
def test_model_save_then_get_item_then_decrypt_item(
    Typed: Any, client: Any, resource: Any, case: str, shape: str
) -> None:
    field, av, value = CASES[case]
    pk = unique(case)
    Typed(pk=pk, role="r", **{field: value}).save()
    if shape == "dynamodb-json":
        plain = decrypt_item(Typed, get_raw(client, Typed, {"pk": {"S": pk}}))
        assert plain == {"pk": {"S": pk}, "role": {"S": "r"}, field: av}
    else:
        plain = decrypt_item(Typed, get_doc(resource, Typed, {"pk": pk}))
        assert plain == {"pk": pk, "role": "r", field: av_to_doc(av)}


@pytest.mark.parametrize("case, shape", _case_params())
def test_decrypt_item_output_encrypts_back_to_the_model_value(
    Typed: Any, client: Any, resource: Any, case: str, shape: str
) -> None:
    """Model.save -> get_item -> decrypt_item -> encrypt_item -> put_item -> Model.get gives the value saved."""
    field, _, value = CASES[case]
    pk = unique(case)
    Typed(pk=pk, role="r", **{field: value}).save()
    if shape == "dynamodb-json":
        plain = decrypt_item(Typed, get_raw(client, Typed, {"pk": {"S": pk}}))
        client.put_item(TableName=Typed.Meta.table_name, Item=encrypt_item(Typed, plain))
    else:
        plain = decrypt_item(Typed, get_doc(resource, Typed, {"pk": pk}))
        resource.Table(Typed.Meta.table_name).put_item(Item=encrypt_item(Typed, plain))
    got = getattr(Typed.get(pk, consistent_read=True), field)
    assert got == value and type(got) is type(value)


def test_every_type_in_one_item_round_trips_through_dynamodb(Typed: Any, client: Any, resource: Any) -> None:
    """decrypt_item(get_item(put_item(encrypt_item(x)))) == x, in both shapes."""
    pk = unique("all")
    text_cases = [c for c in CASES if not c.endswith("-numbers") and c not in ("str-empty", "int-zero", "int-big")]
    plain_json: dict[str, Any] = {"pk": {"S": pk}, "role": {"S": "all"}}
    for case in text_cases:
        field, av, _ = CASES[case]
        plain_json[field] = av
    client.put_item(TableName=Typed.Meta.table_name, Item=encrypt_item(Typed, plain_json))
    raw = get_raw(client, Typed, {"pk": {"S": pk}})
    assert_no_plaintext(raw, MARKER, "987654321987", "7654321987")
    assert decrypt_item(Typed, raw) == plain_json

    pk2 = unique("all-doc")
    plain_doc = {k: av_to_doc(v) for k, v in plain_json.items()}
    plain_doc["pk"] = pk2
    resource.Table(Typed.Meta.table_name).put_item(Item=encrypt_item(Typed, plain_doc))
    assert decrypt_item(Typed, get_doc(resource, Typed, {"pk": pk2})) == plain_doc
    got = Typed.get(pk2, consistent_read=True)
    assert (got.s, got.i, got.tags, got.num) == (CASES["str"][2], -987654321987, CASES["set"][2], 7654321987)


# -- encrypted maps and lists of them ---------------------------------------------------------------

NESTED = {
    "profile": {"M": {
        "ssn": {"S": f"123-45-{MARKER}"},
        "dob": {"S": "1990-01-31"},
        "address": {"M": {"street": {"S": "1 Secret Street"}, "city": {"S": "Springfield"}, "zip": {"N": "12345"}}},
        "note": {"S": "plain note"},
    }},
    "history": {"L": [
        {"M": {"street": {"S": "Old Street 1"}, "city": {"S": "Shelbyville"}}},
        {"M": {"street": {"S": "Old Street 2"}}},
    ]},
}


def _nested_model_values(Typed: Any, pk: str) -> Any:
    address = Address(street="1 Secret Street", city="Springfield", zip=12345)
    profile = Profile(ssn=f"123-45-{MARKER}", dob=date(1990, 1, 31), address=address, note="plain note")
    history = [Address(street="Old Street 1", city="Shelbyville"), Address(street="Old Street 2")]
    return Typed(pk=pk, profile=profile, history=history)


def _assert_nested_instance(got: Any) -> None:
    assert got.profile.ssn == f"123-45-{MARKER}" and got.profile.dob == date(1990, 1, 31)
    assert got.profile.note == "plain note"
    address = got.profile.address
    assert (address.street, address.city, address.zip) == ("1 Secret Street", "Springfield", 12345)
    assert [(a.street, a.city) for a in got.history] == [("Old Street 1", "Shelbyville"), ("Old Street 2", None)]


@pytest.mark.parametrize("shape", SHAPES)
def test_encrypted_maps_encrypt_item_then_model_get(Typed: Any, client: Any, resource: Any, shape: str) -> None:
    pk = unique("nested")
    if shape == "dynamodb-json":
        client.put_item(TableName=Typed.Meta.table_name, Item=encrypt_item(Typed, {"pk": {"S": pk}, **NESTED}))
    else:
        plain = {"pk": pk, **{k: av_to_doc(v) for k, v in NESTED.items()}}
        resource.Table(Typed.Meta.table_name).put_item(Item=encrypt_item(Typed, plain))
    raw = get_raw(client, Typed, {"pk": {"S": pk}})
    profile = raw["profile"]["M"]
    assert sorted(profile) == ["address", "dob__source", "note", "ssn__hmac", "ssn__source"]
    assert profile["ssn__hmac"] == {"S": Typed.profile.ssn.hmac(f"123-45-{MARKER}")}
    assert profile["address"]["M"]["city"] == {"S": "Springfield"}
    assert_no_plaintext(raw, MARKER, "Secret Street", "Old Street", "1990")
    got = Typed.get(pk, consistent_read=True)
    _assert_nested_instance(got)
    # the nested HMAC written by encrypt_item answers the model's own condition
    assert [t.pk for t in Typed.scan(Typed.profile.ssn == f"123-45-{MARKER}") if t.pk == pk] == [pk]


@pytest.mark.parametrize("shape", SHAPES)
def test_encrypted_maps_model_save_then_decrypt_item(Typed: Any, client: Any, resource: Any, shape: str) -> None:
    pk = unique("nested-save")
    _nested_model_values(Typed, pk).save()
    if shape == "dynamodb-json":
        assert decrypt_item(Typed, get_raw(client, Typed, {"pk": {"S": pk}})) == {"pk": {"S": pk}, **NESTED}
    else:
        expected = {"pk": pk, **{k: av_to_doc(v) for k, v in NESTED.items()}}
        assert decrypt_item(Typed, get_doc(resource, Typed, {"pk": pk})) == expected


def test_nested_values_moved_between_items_or_positions_fail(Typed: Any, client: Any) -> None:
    first, second = unique("nested-a"), unique("nested-b")
    _nested_model_values(Typed, first).save()
    _nested_model_values(Typed, second).save()
    raw_first = get_raw(client, Typed, {"pk": {"S": first}})
    raw_second = get_raw(client, Typed, {"pk": {"S": second}})
    moved = {**raw_first, "profile": raw_second["profile"]}
    swapped = {**raw_first, "history": {"L": list(reversed(raw_first["history"]["L"]))}}
    results = bulk_decrypt_items(Typed, [raw_first, moved, swapped, raw_second])
    assert [r.ok for r in results] == [True, False, False, True]
    for result in results[1:3]:
        assert isinstance(result.error, DecryptionError)
        assert_clean(result.error, "Secret Street", "Old Street", raw_second["profile"]["M"]["ssn__source"]["B"])


# -- pass-through ---------------------------------------------------------------------------------------

PASSTHROUGH = {
    "extra_s": {"S": "ünï code"},
    "extra_n": {"N": "1.5"},
    "extra_big": {"N": "12345678901234567890123456789012345678"},
    "extra_b": {"B": b"\x00\xffraw"},
    "extra_bool": {"BOOL": False},
    "extra_null": {"NULL": True},
    "extra_ss": {"SS": ["a", "b"]},
    "extra_ns": {"NS": ["1", "2.5"]},
    "extra_bs": {"BS": [b"\x01", b"\x02"]},
    "extra_m": {"M": {"x": {"N": "3"}, "y": {"L": [{"S": "a"}, {"B": b"\x03"}]}}},
    "extra_l": {"L": [{"NULL": True}, {"M": {}}]},
}


def _sets_sorted(av: Any) -> Any:
    ((kind, value),) = av.items()
    if kind in ("SS", "NS", "BS"):
        return {kind: sorted(value)}
    if kind == "M":
        return {"M": {k: _sets_sorted(v) for k, v in value.items()}}
    if kind == "L":
        return {"L": [_sets_sorted(v) for v in value]}
    return av


def test_undeclared_and_plain_attributes_pass_through_byte_for_byte(Typed: Any, client: Any) -> None:
    pk = unique("pass")
    plain = {"pk": {"S": pk}, "s": {"S": MARKER}, "role": {"S": "admin"}, **PASSTHROUGH}
    stored = encrypt_item(Typed, plain)
    for name, av in {**PASSTHROUGH, "role": plain["role"], "pk": plain["pk"]}.items():
        assert stored[name] == av, name
    client.put_item(TableName=Typed.Meta.table_name, Item=stored)
    raw = get_raw(client, Typed, {"pk": {"S": pk}})
    back = decrypt_item(Typed, raw)
    for name in [*PASSTHROUGH, "role", "pk"]:
        assert back[name] == raw[name], f"{name} changed by decrypt_item"
        assert _sets_sorted(raw[name]) == _sets_sorted(plain[name]), f"{name} changed in DynamoDB"
    assert back["s"] == {"S": MARKER} and "s__source" not in back
    got = Typed.get(pk, consistent_read=True)
    assert (got.s, got.role) == (MARKER, "admin")


def test_attributes_added_by_other_writers_pass_through_decrypt_item(Typed: Any, client: Any, resource: Any) -> None:
    pk = unique("pass-other")
    Typed(pk=pk, s="secret", role="r").save()
    client.update_item(
        TableName=Typed.Meta.table_name,
        Key={"pk": {"S": pk}},
        UpdateExpression="SET audit = :a, seen = :n, raw_bytes = :b",
        ExpressionAttributeValues={":a": {"M": {"by": {"S": "lambda"}}}, ":n": {"N": "7"}, ":b": {"B": b"\x09"}},
    )
    assert decrypt_item(Typed, get_raw(client, Typed, {"pk": {"S": pk}})) == {
        "pk": {"S": pk}, "s": {"S": "secret"}, "role": {"S": "r"},
        "audit": {"M": {"by": {"S": "lambda"}}}, "seen": {"N": "7"}, "raw_bytes": {"B": b"\x09"},
    }
    assert decrypt_item(Typed, get_doc(resource, Typed, {"pk": pk})) == {
        "pk": pk, "s": "secret", "role": "r", "audit": {"by": "lambda"}, "seen": Decimal(7),
        "raw_bytes": Binary(b"\x09"),
    }


# -- keys -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_hmac_keyed_model_encrypt_item_computes_the_key(Account: Any, client: Any, resource: Any, shape: str) -> None:
    email = f"{unique('ann')}@{MARKER}.example"
    if shape == "dynamodb-json":
        plain: dict[str, Any] = {"email": {"S": email}, "name": {"S": "Ann"}, "plan": {"S": "pro"}}
        stored = encrypt_item(Account, plain)
        assert stored["email__hmac"] == {"S": Account.email.hmac(email)}
        client.put_item(TableName=Account.Meta.table_name, Item=stored)
    else:
        plain = {"email": email, "name": "Ann", "plan": "pro"}
        stored = encrypt_item(Account, plain)
        assert stored["email__hmac"] == Account.email.hmac(email)
        resource.Table(Account.Meta.table_name).put_item(Item=stored)
    assert "email" not in stored
    got = Account.get(email, consistent_read=True)
    assert (got.email, got.name, got.plan) == (email, "Ann", "pro")
    raw = get_raw(client, Account, {"email__hmac": {"S": Account.email.hmac(email)}})
    assert_no_plaintext(raw, MARKER, email)
    if shape == "dynamodb-json":
        assert decrypt_item(Account, raw) == plain
    else:
        assert decrypt_item(Account, get_doc(resource, Account, {"email__hmac": Account.email.hmac(email)})) == plain


def test_hmac_keyed_model_save_then_decrypt_item(Account: Any, client: Any) -> None:
    email = f"{unique('bob')}@example.com"
    Account(email=email, name="Bob").save()
    raw = get_raw(client, Account, {"email__hmac": {"S": Account.email.hmac(email)}})
    assert decrypt_item(Account, raw) == {"email": {"S": email}, "name": {"S": "Bob"}}
    assert Account.from_stream_image(raw).email == email
    without_key = {k: v for k, v in raw.items() if k != "email__hmac"}
    with pytest.raises(DecryptionError) as info:
        Account.from_stream_image(without_key)
    assert_clean(info.value, email, raw["email__hmac"]["S"])


@pytest.mark.parametrize("seq", [{"N": "10.0"}, {"N": "1E+1"}, {"N": "10"}], ids=["10.0", "1E+1", "10"])
def test_numeric_range_key_written_by_boto3_reads_back(Event: Any, client: Any, seq: dict[str, str]) -> None:
    """DynamoDB stores 10.0 as 10: the key bound into the ciphertext must be normalized the same way."""
    group = unique("g")
    stored = encrypt_item(Event, {"group": {"S": group}, "seq": seq, "payload": {"S": MARKER}, "kind": {"S": "k"}})
    client.put_item(TableName=Event.Meta.table_name, Item=stored)
    got = Event.get(group, 10, consistent_read=True)
    assert (got.payload, got.kind) == (MARKER, "k")
    raw = get_raw(client, Event, {"group": {"S": group}, "seq": {"N": "10"}})
    assert raw["seq"] == {"N": "10"}
    assert decrypt_item(Event, raw) == {"group": {"S": group}, "seq": {"N": "10"}, "payload": {"S": MARKER},
                                        "kind": {"S": "k"}}


# -- polymorphism -------------------------------------------------------------------------------------


def test_polymorphic_encrypt_item_on_the_base_encrypts_subclass_fields(
    records: tuple[Any, Any, Any], client: Any, resource: Any
) -> None:
    Record, Patient, Invoice = records
    pk = unique("patient")
    plain = {"pk": {"S": pk}, "kind": {"S": "patient"}, "owner": {"S": "dr-who"},
             "diagnosis": {"S": f"flu {MARKER}"}, "notes": json_to_av(["rest", "fluids"])}
    stored = encrypt_item(Record, plain)
    assert "diagnosis" not in stored and "notes" not in stored
    assert stored["diagnosis__hmac"] == {"S": Patient.diagnosis.hmac(f"flu {MARKER}")}
    client.put_item(TableName=Record.Meta.table_name, Item=stored)
    raw = get_raw(client, Record, {"pk": {"S": pk}})
    assert_no_plaintext(raw, MARKER, "dr-who", "fluids")
    got = Record.get(pk, consistent_read=True)
    assert type(got) is Patient and (got.diagnosis, got.owner, got.notes) == (f"flu {MARKER}", "dr-who",
                                                                               ["rest", "fluids"])
    assert [p.pk for p in Patient.scan(Patient.diagnosis == f"flu {MARKER}")] == [pk]
    assert decrypt_item(Record, raw) == plain

    pk2 = unique("invoice")
    doc = {"pk": pk2, "kind": "invoice", "owner": "acme", "amount": Decimal("99.95"), "paid": Decimal(1)}
    resource.Table(Record.Meta.table_name).put_item(Item=encrypt_item(Record, doc))
    invoice = Record.get(pk2, consistent_read=True)
    assert type(invoice) is Invoice and invoice.amount == Decimal("99.95") and invoice.paid == 1


def test_polymorphic_model_save_then_decrypt_item_on_the_base(records: tuple[Any, Any, Any], client: Any) -> None:
    Record, Patient, _ = records
    pk = unique("patient-save")
    Patient(pk=pk, owner="dr-no", diagnosis="cold").save()
    raw = get_raw(client, Record, {"pk": {"S": pk}})
    assert decrypt_item(Record, raw) == {"pk": {"S": pk}, "kind": {"S": "patient"}, "owner": {"S": "dr-no"},
                                         "diagnosis": {"S": "cold"}}
    image = Record.from_stream_image(raw)
    assert type(image) is Patient and image.diagnosis == "cold"


# -- a GSI on an HMAC, queried with boto3 -----------------------------------------------------------


def test_query_the_hmac_index_with_boto3_and_decrypt(Typed: Any, client: Any) -> None:
    tag = unique("tag")
    pks = [unique("q") for _ in range(3)]
    for n, pk in enumerate(pks):
        item = encrypt_item(Typed, {"pk": {"S": pk}, "tag": {"S": tag}, "s": {"S": f"secret {n}"}})
        client.put_item(TableName=Typed.Meta.table_name, Item=item)
    found = client.query(
        TableName=Typed.Meta.table_name,
        IndexName="TagIndex",
        KeyConditionExpression="tag__hmac = :t",
        ExpressionAttributeValues={":t": {"S": Typed.tag.hmac(tag)}},
    )["Items"]
    plain = sorted((decrypt_item(Typed, item) for item in found), key=lambda p: p["pk"]["S"])
    expected = sorted(({"pk": {"S": pk}, "tag": {"S": tag}, "s": {"S": f"secret {n}"}} for n, pk in enumerate(pks)),
                      key=lambda p: p["pk"]["S"])
    assert plain == expected
    assert sorted(t.pk for t in Typed.tag_index.query(tag)) == sorted(pks)


# -- S3 export -------------------------------------------------------------------------------------


def test_s3_export_lines_decrypt(Typed: Any, client: Any) -> None:
    """An S3 export (DYNAMODB_JSON) is one JSON object per line, {"Item": ...}, with B as base64 text."""
    pks = [unique("export") for _ in range(3)]
    Typed(pk=pks[0], s=MARKER, b=b"\x00\x01", tag="t0", role="r").save()
    _nested_model_values(Typed, pks[1]).save()
    Typed(pk=pks[2], i=2**80, day=date(2020, 2, 29), tags={"x"}).save()
    raws = [get_raw(client, Typed, {"pk": {"S": pk}}) for pk in pks]
    lines = "\n".join(json.dumps({"Item": exported(raw)}) for raw in raws)
    assert MARKER not in lines and "Secret Street" not in lines
    items = [json.loads(line)["Item"] for line in lines.splitlines()]
    assert [decrypt_item(Typed, item) for item in items] == [decrypt_item(Typed, raw) for raw in raws]
    first = decrypt_item(Typed, items[0])
    assert first["s"] == {"S": MARKER} and first["b"] == {"B": b"\x00\x01"}
    assert decrypt_item(Typed, items[1]) == {"pk": {"S": pks[1]}, **NESTED}
    results = bulk_decrypt_items(Typed, items)
    assert [r.unwrap()["pk"] for r in results] == [{"S": pk} for pk in pks]
    assert Typed.from_stream_image(items[2]).i == 2**80


# -- streams ---------------------------------------------------------------------------------------------


def test_stream_images_built_from_get_item(Typed: Any, client: Any) -> None:
    pk = unique("stream")
    item = Typed(pk=pk, s="before", tag="t1", role="r")
    item.save()
    old_image = get_raw(client, Typed, {"pk": {"S": pk}})
    item.update(actions=[Typed.s.set("after"), Typed.i.set(7)])
    new_image = get_raw(client, Typed, {"pk": {"S": pk}})
    record = {"eventName": "MODIFY",
              "dynamodb": {"Keys": {"pk": {"S": pk}}, "OldImage": old_image, "NewImage": new_image}}

    before = Typed.from_stream_image(record["dynamodb"]["OldImage"])
    after = Typed.from_stream_image(record["dynamodb"]["NewImage"])
    assert (before.pk, before.s, before.i, before.tag, before.role) == (pk, "before", None, "t1", "r")
    assert (after.s, after.i, after.tag) == ("after", 7, "t1")
    assert decrypt_item(Typed, record["dynamodb"]["NewImage"])["s"] == {"S": "after"}
    assert Typed.from_stream_image(record["dynamodb"]["Keys"]).pk == pk

    # What a Lambda receives is JSON: binary values arrive as base64 text.
    event = json.loads(json.dumps({"Records": [{"dynamodb": {"NewImage": exported(new_image)}}]}))
    assert Typed.from_stream_image(event["Records"][0]["dynamodb"]["NewImage"]).s == "after"


def test_stream_images_missing_a_key_are_refused(Typed: Any, Event: Any, client: Any) -> None:
    pk = unique("stream-key")
    Typed(pk=pk, s=MARKER).save()
    typed_image = get_raw(client, Typed, {"pk": {"S": pk}})
    group = unique("g")
    Event(group=group, seq=3, payload=MARKER, kind="k").save()
    event_image = get_raw(client, Event, {"group": {"S": group}, "seq": {"N": "3"}})
    cases = [
        (Typed, {k: v for k, v in typed_image.items() if k != "pk"}, "pk"),
        (Event, {k: v for k, v in event_image.items() if k != "group"}, "group"),
        (Event, {k: v for k, v in event_image.items() if k != "seq"}, "seq"),
    ]
    for model, image, missing in cases:
        with pytest.raises(DecryptionError) as info:
            model.from_stream_image(image)
        assert missing in str(info.value)
        assert_clean(info.value, image.get("s__source", image.get("payload__source", {})).get("B", b"-" * 20))
        with pytest.raises(DecryptionError):
            decrypt_item(model, image)


def test_tampered_or_foreign_items_from_dynamodb_are_refused(Typed: Any, client: Any, ddb_url: str) -> None:
    pk = unique("tamper")
    Typed(pk=pk, s=MARKER, tag="t").save()
    raw = get_raw(client, Typed, {"pk": {"S": pk}})
    blob = bytearray(raw["s__source"]["B"])
    blob[-3] ^= 0x01
    client.update_item(
        TableName=Typed.Meta.table_name, Key={"pk": {"S": pk}},
        UpdateExpression="SET s__source = :v", ExpressionAttributeValues={":v": {"B": bytes(blob)}},
    )
    tampered = get_raw(client, Typed, {"pk": {"S": pk}})
    with pytest.raises(DecryptionError) as info:
        decrypt_item(Typed, tampered)
    assert info.value.code == "decryption_failed"
    assert_clean(info.value, bytes(blob), raw["tag__hmac"]["S"])
    with pytest.raises(DecryptionError):
        Typed.from_stream_image(tampered)

    client.update_item(
        TableName=Typed.Meta.table_name, Key={"pk": {"S": pk}},
        UpdateExpression="SET s__source = :v", ExpressionAttributeValues={":v": {"S": MARKER}},
    )
    wrong_type = get_raw(client, Typed, {"pk": {"S": pk}})
    with pytest.raises(DecryptionError) as info:
        decrypt_item(Typed, wrong_type)
    assert_clean(info.value)

    other = define_typed(ddb_url, Typed.Meta.table_name, Keyring.generate(key_id="k-other", index_key_id="i-other"))
    with pytest.raises(KeyNotFoundError) as key_info:
        decrypt_item(Typed, encrypt_item(other, {"pk": {"S": pk}, "s": {"S": MARKER}}))
    assert_clean(key_info.value)


# -- bulk -----------------------------------------------------------------------------------------------


def test_bulk_encrypt_then_batch_write_then_bulk_decrypt(Typed: Any, client: Any) -> None:
    pks = [unique("bulk") for _ in range(5)]
    plain = [
        {"pk": {"S": pks[0]}, "s": {"S": "zero"}, "tag": {"S": "t"}},
        {"pk": {"S": pks[1]}, "i": {"S": MARKER}},  # wrong type
        {"pk": {"S": pks[2]}, "s": {"S": "two"}, "profile": NESTED["profile"]},
        {"s": {"S": MARKER}},  # no key
        {"pk": {"S": pks[4]}, "d": {"N": "4.40"}},
    ]
    results = bulk_encrypt_items(Typed, plain)
    assert [r.ok for r in results] == [True, False, True, False, True]
    assert isinstance(results[1].error, EncryptionError) and isinstance(results[3].error, EncryptionError)
    for result in (results[1], results[3]):
        assert_clean(result.error)  # type: ignore[arg-type]
    good = [r.unwrap() for r in results if r.ok]
    client.batch_write_item(RequestItems={Typed.Meta.table_name: [{"PutRequest": {"Item": item}} for item in good]})

    assert {t.pk: t.s for t in Typed.batch_get([pks[0], pks[2]])} == {pks[0]: "zero", pks[2]: "two"}
    raws = client.batch_get_item(
        RequestItems={Typed.Meta.table_name: {"Keys": [{"pk": {"S": pk}} for pk in (pks[0], pks[2], pks[4])],
                                              "ConsistentRead": True}}
    )["Responses"][Typed.Meta.table_name]
    by_pk = {raw["pk"]["S"]: raw for raw in raws}
    tampered = {**by_pk[pks[0]], "s__source": {"B": by_pk[pks[0]]["s__source"]["B"][:-1]}}
    items: list[Any] = [by_pk[pks[4]], tampered, by_pk[pks[0]], 17, by_pk[pks[2]],
                        {k: v for k, v in by_pk[pks[2]].items() if k != "pk"}]
    decrypted = bulk_decrypt_items(Typed, items)
    assert [r.ok for r in decrypted] == [True, False, True, False, True, False]
    assert decrypted[0].unwrap() == plain[4]
    assert decrypted[2].unwrap() == plain[0]
    assert decrypted[4].unwrap() == plain[2]
    for index in (1, 3, 5):
        with pytest.raises(DecryptionError) as info:
            decrypted[index].unwrap()
        assert info.value is decrypted[index].error
        assert isinstance(info.value, StashError)
        assert_clean(info.value, by_pk[pks[0]]["s__source"]["B"])


def test_document_shape_bulk_with_resource_scan(Typed: Any, resource: Any) -> None:
    prefix = unique("docbulk")
    table = resource.Table(Typed.Meta.table_name)
    plain = [{"pk": f"{prefix}-{n}", "s": f"s{n}", "i": Decimal(n), "b": Binary(bytes([n]))} for n in range(4)]
    for result in bulk_encrypt_items(Typed, plain):
        table.put_item(Item=result.unwrap())
    scanned = [item for item in table.scan(ConsistentRead=True)["Items"] if str(item["pk"]).startswith(prefix)]
    scanned.sort(key=lambda item: item["pk"])
    assert isinstance(scanned[0]["s__source"], Binary)
    results = bulk_decrypt_items(Typed, scanned)
    assert [r.unwrap() for r in results] == plain
