"""The raw-item API without a server: ``encrypt_item``, ``decrypt_item``, ``from_stream_image``, bulk.

Both item shapes people hold are exercised: DynamoDB JSON (``{"S": ...}``, as ``boto3.client``, Streams
and S3 exports have it) and document values (as a ``boto3.resource`` Table has them: ``Decimal``
numbers, ``boto3.dynamodb.types.Binary``, Python sets). Round trips are checked on explicit edge cases
and with hypothesis; bad input must end in a ``StashError`` whose message, args and printed traceback
hold no plaintext, ciphertext or HMAC.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

import pytest
import stashtest
from boto3.dynamodb.types import Binary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynamodb.attributes import (
    DiscriminatorAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from stashtest import assert_no_plaintext, av_to_doc, exported, json_to_av

from pynamodb_stash import (
    DecryptionError,
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    EncryptionError,
    ItemResult,
    KeyNotFoundError,
    Keyring,
    StashError,
    bulk_decrypt_items,
    bulk_encrypt_items,
    decrypt_item,
    encrypt_item,
)

MARKER = "zq-PLAINTEXT-MARKER-7731"
KEYRING = Keyring.generate()
OTHER_KEYRING = Keyring.generate(key_id="k-other", index_key_id="idx-other")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("these tests must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    yield


# -- models ---------------------------------------------------------------------------------------------


class Address(EncryptedMapAttribute):
    street = EncryptedAttribute(str, equality=True)
    city = UnicodeAttribute(null=True)
    zip = NumberAttribute(null=True)


class Profile(EncryptedMapAttribute):
    ssn = EncryptedAttribute(str, equality=True)
    dob = EncryptedAttribute(date, null=True)
    address = Address(null=True)
    note = UnicodeAttribute(null=True)


class Typed(EncryptedModel):
    class Meta:
        table_name = "raw_offline_typed"
        keyring = KEYRING

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


class Typed2(EncryptedModel):
    """The same table and fields as Typed, under another keyring."""

    class Meta:
        table_name = "raw_offline_typed"
        keyring = OTHER_KEYRING

    pk = UnicodeAttribute(hash_key=True)
    s = EncryptedAttribute(str, null=True)


class Account(EncryptedModel):
    """Keyed on an HMAC: the table's hash key is ``email__hmac``."""

    class Meta:
        table_name = "raw_offline_accounts"
        keyring = KEYRING

    email = EncryptedAttribute(str, equality=True, hash_key=True)
    name = EncryptedAttribute(str, null=True)
    plan = UnicodeAttribute(null=True)


class Event(EncryptedModel):
    class Meta:
        table_name = "raw_offline_events"
        keyring = KEYRING

    group = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    payload = EncryptedAttribute(str, null=True)


class Record(EncryptedModel):
    class Meta:
        table_name = "raw_offline_records"
        keyring = KEYRING

    pk = UnicodeAttribute(hash_key=True)
    kind = DiscriminatorAttribute()
    owner = EncryptedAttribute(str, equality=True)


class Patient(Record, discriminator="patient"):
    diagnosis = EncryptedAttribute(str, equality=True)
    notes = EncryptedAttribute(list, null=True)


class Invoice(Record, discriminator="invoice"):
    amount = EncryptedAttribute(Decimal)


# -- helpers --------------------------------------------------------------------------------------------


def av_canon(av: Any) -> Any:
    """A DynamoDB attribute value in a form where equal values compare equal (numbers as Decimal)."""
    ((kind, value),) = av.items()
    if kind == "N":
        return ("N", Decimal(value))
    if kind == "B":
        return ("B", bytes(value))
    if kind == "SS":
        return ("SS", frozenset(value))
    if kind == "NS":
        return ("NS", frozenset(Decimal(v) for v in value))
    if kind == "BS":
        return ("BS", frozenset(bytes(v) for v in value))
    if kind == "M":
        return ("M", {k: av_canon(v) for k, v in value.items()})
    if kind == "L":
        return ("L", [av_canon(v) for v in value])
    return (kind, value)


def item_canon(item: dict[str, Any]) -> dict[str, Any]:
    return {name: av_canon(av) for name, av in item.items()}


def doc_canon(value: Any) -> Any:
    """A document value in a form where equal values compare equal (numbers as Decimal, Binary as bytes)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, (bytes, bytearray, Binary)):
        return bytes(value.value if isinstance(value, Binary) else value)
    if isinstance(value, (set, frozenset)):
        return frozenset(doc_canon(v) for v in value)
    if isinstance(value, dict):
        return {k: doc_canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [doc_canon(v) for v in value]
    raise AssertionError(f"unexpected document value type {type(value).__name__}")


def assert_clean(error: BaseException, *secrets: str | bytes) -> None:
    """:func:`stashtest.assert_clean`, with this module's MARKER among the secrets."""
    stashtest.assert_clean(error, MARKER, *secrets)


# -- stored layout and shapes ---------------------------------------------------------------------------


def test_encrypt_item_stores_only_ciphertext_and_the_hmac() -> None:
    plain = {"pk": {"S": "p1"}, "s": {"S": MARKER}, "tag": {"S": MARKER + "-tag"}, "role": {"S": "admin"}}
    stored = encrypt_item(Typed, plain)
    assert sorted(stored) == ["pk", "role", "s__source", "tag__hmac", "tag__source"]
    assert list(stored["s__source"]) == ["B"] and type(stored["s__source"]["B"]) is bytes
    assert stored["tag__hmac"] == {"S": Typed.tag.hmac(MARKER + "-tag")}
    assert stored["pk"] == {"S": "p1"} and stored["role"] == {"S": "admin"}
    assert_no_plaintext(stored, MARKER)
    assert plain["s"] == {"S": MARKER}, "the input item must not be modified"
    assert decrypt_item(Typed, stored) == plain


def test_each_encryption_uses_a_fresh_nonce() -> None:
    plain = {"pk": {"S": "p1"}, "s": {"S": "same"}, "tag": {"S": "same"}}
    first, second = encrypt_item(Typed, plain), encrypt_item(Typed, plain)
    assert first["s__source"] != second["s__source"]
    assert first["tag__hmac"] == second["tag__hmac"]


def test_the_result_has_the_shape_of_the_input() -> None:
    doc = {"pk": "p1", "s": "hello", "tag": "t", "i": 5, "role": "r"}
    stored_doc = encrypt_item(Typed, doc)
    assert type(stored_doc["s__source"]) is bytes and stored_doc["tag__hmac"] == Typed.tag.hmac("t")
    assert stored_doc["pk"] == "p1" and stored_doc["role"] == "r"
    assert decrypt_item(Typed, stored_doc) == {"pk": "p1", "s": "hello", "tag": "t", "i": Decimal(5), "role": "r"}

    stored_json = encrypt_item(Typed, {"pk": {"S": "p1"}, "s": {"S": "hello"}})
    assert stored_json["pk"] == {"S": "p1"} and list(stored_json["s__source"]) == ["B"]
    # Either shape decrypts what the other encrypted.
    json_of_doc = {k: ({"B": v} if isinstance(v, bytes) else {"S": v}) for k, v in stored_doc.items()}
    assert decrypt_item(Typed, json_of_doc)["s"] == {"S": "hello"}
    assert decrypt_item(Typed, {"pk": "p1", "s__source": stored_json["s__source"]["B"]}) == {"pk": "p1", "s": "hello"}


def test_explicit_shapes() -> None:
    with pytest.raises(EncryptionError):
        encrypt_item(Typed, {"pk": "p1", "s": "x"}, shape="dynamodb")
    # As document values, {"S": ...} is a map, not a typed value.
    stored = encrypt_item(Typed, {"pk": "p1", "s": "x", "meta": {"S": "not a type tag"}}, shape="document")
    assert stored["meta"] == {"S": "not a type tag"} and type(stored["s__source"]) is bytes
    assert decrypt_item(Typed, stored, shape="document")["meta"] == {"S": "not a type tag"}
    with pytest.raises(DecryptionError):
        decrypt_item(Typed, {"pk": "p1"}, shape="dynamodb")


def test_plain_and_undeclared_attributes_pass_through_dynamodb_json_byte_for_byte() -> None:
    passthrough = {
        "role": {"S": "ünï\u0000code"},
        "n": {"N": "1.50"},
        "n2": {"N": "-0.000"},
        "big": {"N": "123456789012345678901234567890123456.78"},
        "bin": {"B": b"\x00\xff\x10"},
        "active": {"BOOL": False},
        "nothing": {"NULL": True},
        "ss": {"SS": ["z", "a"]},
        "ns": {"NS": ["10", "1.0"]},
        "bs": {"BS": [b"\x02", b"\x01"]},
        "m": {"M": {"x": {"N": "01.10"}, "y": {"L": [{"S": "a"}, {"B": b"\x03"}]}}},
        "l": {"L": [{"NULL": True}, {"M": {}}]},
    }
    plain = {"pk": {"S": "p1"}, "s": {"S": "secret"}, **passthrough}
    stored = encrypt_item(Typed, plain)
    for name, av in passthrough.items():
        assert stored[name] == av, name
    assert type(stored["bin"]["B"]) is bytes
    back = decrypt_item(Typed, stored)
    assert back == plain
    for name, av in passthrough.items():
        assert back[name] == av, name


def test_plain_and_undeclared_attributes_pass_through_document_values() -> None:
    passthrough = {
        "role": "admin",
        "n": Decimal("1.50"),
        "bin": Binary(b"\x00\xff"),
        "active": False,
        "nothing": None,
        "ss": {"a", "b"},
        "ns": {Decimal("1"), Decimal("2.5")},
        "bs": {Binary(b"\x01"), Binary(b"\x02")},
        "m": {"x": Decimal("3"), "y": ["a", Binary(b"\x03")]},
    }
    plain = {"pk": "p1", "s": "secret", **passthrough}
    stored = encrypt_item(Typed, plain)
    back = decrypt_item(Typed, stored)
    for name, value in passthrough.items():
        assert stored[name] == value, name
        assert back[name] == value, name
    assert str(stored["n"]) == "1.50" and str(back["n"]) == "1.50"
    assert back["s"] == "secret"


def test_s3_export_style_dynamodb_json_with_base64_binary() -> None:
    plain = {"pk": {"S": "p1"}, "s": {"S": "export me"}, "b": {"B": b"\x00\xffraw"}, "tag": {"S": "t"},
             "blob": {"B": b"\x01plain"}, "blobs": {"BS": [b"\x01", b"\x02"]}}
    line = {"Item": exported(encrypt_item(Typed, plain))}
    assert isinstance(line["Item"]["s__source"]["B"], str)
    back = decrypt_item(Typed, line["Item"])
    assert back["s"] == {"S": "export me"} and back["b"] == {"B": b"\x00\xffraw"} and back["tag"] == {"S": "t"}
    # Pass-through binaries come back as botocore holds them: bytes.
    assert back["blob"] == {"B": b"\x01plain"} and back["blobs"] == {"BS": [b"\x01", b"\x02"]}
    assert Typed.from_stream_image(line["Item"]).s == "export me"


def test_falsy_values_are_encrypted_not_skipped() -> None:
    values = {
        "s": ({"S": ""}, ""),
        "b": ({"B": b""}, Binary(b"")),
        "i": ({"N": "0"}, Decimal(0)),
        "f": ({"N": "0.0"}, Decimal("0.0")),
        "d": ({"N": "0"}, Decimal("0")),
        "flag": ({"BOOL": False}, False),
        "obj": ({"M": {}}, {}),
        "arr": ({"L": []}, []),
        "tags": ({"SS": []}, set()),
        "tag": ({"S": ""}, ""),
    }
    plain_json = {"pk": {"S": "p1"}, **{name: av for name, (av, _) in values.items()}}
    plain_doc = {"pk": "p1", **{name: doc for name, (_, doc) in values.items()}}
    for plain in (plain_json, plain_doc):
        stored = encrypt_item(Typed, plain)
        assert {f"{name}__source" for name in values} <= set(stored)
        assert not set(values) & set(stored)
        back = decrypt_item(Typed, stored)
        assert back == plain
    instance = Typed.from_stream_image(encrypt_item(Typed, plain_json))
    assert (instance.s, instance.b, instance.i, instance.f, instance.flag) == ("", b"", 0, 0.0, False)
    assert (instance.obj, instance.arr, instance.tags) == ({}, [], set())


def test_null_and_missing_encrypted_values_store_nothing() -> None:
    for plain in ({"pk": {"S": "p1"}, "s": {"NULL": True}, "role": {"S": "r"}}, {"pk": "p1", "s": None, "role": "r"}):
        stored = encrypt_item(Typed, plain)
        assert "s" not in stored and "s__source" not in stored
        assert "s" not in decrypt_item(Typed, stored)


def test_typed_values_from_either_shape_decrypt_to_the_declared_type() -> None:
    plain = {
        "pk": {"S": "p1"},
        "i": {"N": str(2**130 + 7)},
        "f": {"N": "0.1"},
        "d": {"N": "12.3400"},
        "dt": {"S": "2024-02-29T23:59:58.123456+05:30"},
        "day": {"S": "2024-02-29"},
        "tags": {"SS": ["red", "green"]},
        "utc": {"S": "2024-01-02T03:04:05.000006+0000"},
        "num": {"N": "7"},
    }
    instance = Typed.from_stream_image(encrypt_item(Typed, plain))
    assert instance.i == 2**130 + 7 and type(instance.i) is int
    assert instance.f == 0.1 and type(instance.f) is float
    assert instance.d == Decimal("12.3400") and str(instance.d) == "12.3400"
    assert instance.dt == datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert instance.day == date(2024, 2, 29) and type(instance.day) is date
    assert instance.tags == {"red", "green"}
    assert instance.utc == datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    assert instance.num == 7
    back = decrypt_item(Typed, encrypt_item(Typed, plain))
    assert back["i"] == {"N": str(2**130 + 7)} and back["d"] == {"N": "12.3400"} and back["f"] == {"N": "0.1"}
    assert back["dt"] == {"S": "2024-02-29T23:59:58.123456+05:30"} and back["day"] == {"S": "2024-02-29"}
    assert back["tags"] == {"SS": ["green", "red"]} and back["utc"] == plain["utc"] and back["num"] == {"N": "7"}


OBJ_WITH_NUMBERS = {"n": 1, "f": 2.5, "deep": {"neg": -3, "l": [4, "x", None, True]}}
ARR_WITH_NUMBERS = [1, 2.5, "a", {"k": 10}]


def test_dict_and_list_fields_with_numbers_round_trip_dynamodb_json() -> None:
    """dict/list hold JSON: numbers arrive as N and must be converted to int/float before encoding."""
    plain = {"pk": {"S": "p1"}, "obj": json_to_av(OBJ_WITH_NUMBERS), "arr": json_to_av(ARR_WITH_NUMBERS)}
    stored = encrypt_item(Typed, plain)  # today: EncryptionError "Decimal is not a JSON type"
    assert item_canon(decrypt_item(Typed, stored)) == item_canon(plain)
    instance = Typed.from_stream_image(stored)
    assert instance.obj == OBJ_WITH_NUMBERS and instance.arr == ARR_WITH_NUMBERS


@pytest.mark.parametrize("numbers", ["decimal", "python"])
def test_dict_and_list_fields_with_numbers_round_trip_document_values(numbers: str) -> None:
    """From a boto3 resource the numbers are Decimal; from application code, int and float."""
    if numbers == "decimal":
        plain = {"pk": "p1", "obj": av_to_doc(json_to_av(OBJ_WITH_NUMBERS)),
                 "arr": av_to_doc(json_to_av(ARR_WITH_NUMBERS))}
    else:
        plain = {"pk": "p1", "obj": OBJ_WITH_NUMBERS, "arr": ARR_WITH_NUMBERS}
    stored = encrypt_item(Typed, plain)  # today: EncryptionError "Decimal is not a JSON type"
    assert doc_canon(decrypt_item(Typed, stored)) == doc_canon(plain)
    as_json = {"pk": {"S": "p1"}, "obj__source": {"B": stored["obj__source"]},
               "arr__source": {"B": stored["arr__source"]}}
    instance = Typed.from_stream_image(as_json)
    assert instance.obj == OBJ_WITH_NUMBERS and instance.arr == ARR_WITH_NUMBERS


def test_dict_and_list_fields_without_numbers_round_trip() -> None:
    obj = {"s": "x", "t": True, "none": None, "deep": {"l": ["a", False, {"z": "y"}]}}
    arr = ["a", None, ["b"], {"k": "v"}]
    as_json = {"pk": {"S": "p1"}, "obj": json_to_av(obj), "arr": json_to_av(arr)}
    assert decrypt_item(Typed, encrypt_item(Typed, as_json)) == as_json
    as_doc = {"pk": "p1", "obj": obj, "arr": arr}
    assert decrypt_item(Typed, encrypt_item(Typed, as_doc)) == as_doc
    instance = Typed.from_stream_image(encrypt_item(Typed, as_json))
    assert instance.obj == obj and instance.arr == arr


def test_attribute_codec_with_a_string_value_round_trips() -> None:
    """EncryptedAttribute(JSONAttribute()): the stored form of "hello" is the JSON text '"hello"'."""
    plain = {"pk": {"S": "p1"}, "js": {"S": '"hello"'}}
    assert Typed.from_stream_image(encrypt_item(Typed, plain)).js == "hello"
    back = decrypt_item(Typed, encrypt_item(Typed, plain))
    assert back == plain  # today: {"S": "hello"}, which encrypt_item then refuses as invalid JSON
    assert decrypt_item(Typed, encrypt_item(Typed, back)) == plain


def test_attribute_codec_with_non_string_values_round_trips() -> None:
    plain = {"pk": {"S": "p1"}, "js": {"S": '{"a": [1, 2]}'}, "num": {"N": "2.5"}}
    back = decrypt_item(Typed, encrypt_item(Typed, plain))
    assert back == plain
    instance = Typed.from_stream_image(encrypt_item(Typed, plain))
    assert instance.js == {"a": [1, 2]} and instance.num == 2.5


# -- encrypted maps ---------------------------------------------------------------------------------


NESTED_JSON = {
    "pk": {"S": "p1"},
    "profile": {"M": {
        "ssn": {"S": "123-45-" + MARKER},
        "dob": {"S": "1990-01-31"},
        "address": {"M": {"street": {"S": "1 Secret Street"}, "city": {"S": "Springfield"}, "zip": {"N": "12345"}}},
        "note": {"S": "plain note"},
    }},
    "history": {"L": [
        {"M": {"street": {"S": "Old Street 1"}, "city": {"S": "A"}}},
        {"M": {"street": {"S": "Old Street 2"}}},
    ]},
}


def test_encrypted_maps_and_lists_of_maps_in_dynamodb_json() -> None:
    stored = encrypt_item(Typed, NESTED_JSON)
    profile = stored["profile"]["M"]
    assert sorted(profile) == ["address", "dob__source", "note", "ssn__hmac", "ssn__source"]
    assert profile["note"] == {"S": "plain note"}
    assert sorted(profile["address"]["M"]) == ["city", "street__hmac", "street__source", "zip"]
    assert profile["address"]["M"]["zip"] == {"N": "12345"}
    assert profile["ssn__hmac"] == {"S": Typed.profile.ssn.hmac("123-45-" + MARKER)}
    assert [sorted(e["M"]) for e in stored["history"]["L"]] == [
        ["city", "street__hmac", "street__source"], ["street__hmac", "street__source"]
    ]
    assert_no_plaintext(stored, MARKER, "Secret Street", "Old Street", "1990")
    assert decrypt_item(Typed, stored) == NESTED_JSON
    instance = Typed.from_stream_image(stored)
    assert instance.profile.ssn == "123-45-" + MARKER and instance.profile.dob == date(1990, 1, 31)
    assert instance.profile.address.street == "1 Secret Street" and instance.profile.address.zip == 12345
    assert [a.street for a in instance.history] == ["Old Street 1", "Old Street 2"]


def test_encrypted_maps_and_lists_of_maps_as_document_values() -> None:
    plain = {k: av_to_doc(v) for k, v in NESTED_JSON.items()}
    stored = encrypt_item(Typed, plain)
    assert type(stored["profile"]["ssn__source"]) is bytes
    assert stored["profile"]["address"]["city"] == "Springfield"
    assert MARKER not in repr(stored) and "Secret Street" not in repr(stored)
    assert decrypt_item(Typed, stored) == plain


def test_list_elements_are_bound_to_their_position() -> None:
    stored = encrypt_item(Typed, NESTED_JSON)
    swapped = {**stored, "history": {"L": list(reversed(stored["history"]["L"]))}}
    with pytest.raises(DecryptionError) as info:
        decrypt_item(Typed, swapped)
    assert_clean(info.value, "Old Street", stored["history"]["L"][0]["M"]["street__source"]["B"])


def test_unknown_field_inside_an_encrypted_map_is_refused() -> None:
    plain = {"pk": {"S": "p1"}, "profile": {"M": {"ssn": {"S": "1"}, MARKER: {"S": MARKER}}}}
    with pytest.raises(EncryptionError) as info:
        encrypt_item(Typed, plain)
    assert_clean(info.value)


# -- HMAC keys and polymorphism -----------------------------------------------------------------------


def test_hmac_keyed_model_gets_its_key_computed() -> None:
    for plain in ({"email": {"S": "ann@example.com"}, "name": {"S": "Ann"}, "plan": {"S": "pro"}},
                  {"email": "ann@example.com", "name": "Ann", "plan": "pro"}):
        stored = encrypt_item(Account, plain)
        assert sorted(stored) == ["email__hmac", "email__source", "name__source", "plan"]
        digest = stored["email__hmac"]["S"] if isinstance(stored["email__hmac"], dict) else stored["email__hmac"]
        assert digest == Account.email.hmac("ann@example.com")
        assert decrypt_item(Account, stored) == plain
    instance = Account.from_stream_image(encrypt_item(Account, {"email": {"S": "ann@example.com"}}))
    assert instance.email == "ann@example.com" and instance.email__hmac == Account.email.hmac("ann@example.com")


def test_hmac_keyed_model_without_its_key_value_is_refused() -> None:
    with pytest.raises(EncryptionError) as info:
        encrypt_item(Account, {"name": {"S": MARKER}})
    assert_clean(info.value)
    stored = encrypt_item(Account, {"email": {"S": "ann@example.com"}, "name": {"S": MARKER}})
    image = {k: v for k, v in stored.items() if k != "email__hmac"}
    with pytest.raises(DecryptionError) as info:
        decrypt_item(Account, image)
    assert_clean(info.value, stored["name__source"]["B"])
    with pytest.raises(DecryptionError):
        Account.from_stream_image(image)


def test_polymorphic_base_encrypts_the_subclass_fields() -> None:
    plain = {"pk": {"S": "r1"}, "kind": {"S": "patient"}, "owner": {"S": "dr-who"},
             "diagnosis": {"S": MARKER}, "notes": json_to_av(["a", "b"])}
    stored = encrypt_item(Record, plain)
    assert sorted(stored) == ["diagnosis__hmac", "diagnosis__source", "kind", "notes__source", "owner__hmac",
                              "owner__source", "pk"]
    assert stored["diagnosis__hmac"] == {"S": Patient.diagnosis.hmac(MARKER)}
    assert_no_plaintext(stored, MARKER, "dr-who")
    assert decrypt_item(Record, stored) == plain
    assert decrypt_item(Patient, stored) == plain
    instance = Record.from_stream_image(stored)
    assert type(instance) is Patient and instance.diagnosis == MARKER and instance.notes == ["a", "b"]
    doc = {"pk": "r2", "kind": "invoice", "owner": "o", "amount": Decimal("9.99")}
    stored_doc = encrypt_item(Record, doc)
    assert "amount__source" in stored_doc and "amount" not in stored_doc
    assert decrypt_item(Record, stored_doc) == doc


def test_polymorphic_discriminator_errors() -> None:
    with pytest.raises(EncryptionError) as info:
        encrypt_item(Record, {"pk": {"S": "r1"}, "kind": {"S": MARKER}, "owner": {"S": "o"}})
    assert_clean(info.value)
    with pytest.raises(EncryptionError):
        encrypt_item(Invoice, {"pk": {"S": "r1"}, "kind": {"S": "patient"}, "owner": {"S": "o"}})
    stored = encrypt_item(Record, {"pk": {"S": "r1"}, "kind": {"S": "patient"}, "owner": {"S": "o"}})
    with pytest.raises(DecryptionError):
        decrypt_item(Invoice, stored)
    with pytest.raises(DecryptionError):
        decrypt_item(Record, {**stored, "kind": {"S": MARKER}})


# -- streams --------------------------------------------------------------------------------------------


def test_from_stream_image_new_and_old_images() -> None:
    old = encrypt_item(Typed, {"pk": {"S": "p1"}, "s": {"S": "before"}, "tag": {"S": "t"}})
    new = encrypt_item(Typed, {"pk": {"S": "p1"}, "s": {"S": "after"}, "tag": {"S": "t"}, "i": {"N": "3"}})
    record = {"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": {"S": "p1"}}, "OldImage": old, "NewImage": new}}
    before = Typed.from_stream_image(record["dynamodb"]["OldImage"])
    after = Typed.from_stream_image(record["dynamodb"]["NewImage"])
    assert isinstance(before, Typed) and (before.pk, before.s, before.tag, before.i) == ("p1", "before", "t", None)
    assert (after.s, after.i) == ("after", 3)
    keys_only = Typed.from_stream_image(record["dynamodb"]["Keys"])
    assert keys_only.pk == "p1" and keys_only.s is None
    lambda_image = exported(new)  # a Lambda event is JSON: B arrives as base64 text
    assert Typed.from_stream_image(lambda_image).s == "after"


@pytest.mark.parametrize("missing", ["group", "seq"])
def test_stream_image_without_a_key_attribute_is_refused(missing: str) -> None:
    image = encrypt_item(Event, {"group": {"S": "g"}, "seq": {"N": "1"}, "payload": {"S": MARKER}})
    image.pop(missing)
    with pytest.raises(DecryptionError) as info:
        Event.from_stream_image(image)
    assert missing in str(info.value)
    assert_clean(info.value, image["payload__source"]["B"])
    with pytest.raises(DecryptionError):
        decrypt_item(Event, image)


@pytest.mark.parametrize(
    "image",
    [{}, {"pk": "p1", "s": "document values"}, ["not", "a", "mapping"], None, "text", {"pk": {"S": "p1"}, "x": 1}],
    ids=["empty", "document", "list", "none", "str", "half-json"],
)
def test_stream_image_that_is_not_dynamodb_json_is_refused(image: Any) -> None:
    with pytest.raises(DecryptionError):
        Typed.from_stream_image(image)


def test_tampered_stream_image_is_refused() -> None:
    image = encrypt_item(Typed, {"pk": {"S": "p1"}, "s": {"S": MARKER}})
    blob = bytearray(image["s__source"]["B"])
    blob[-1] ^= 1
    with pytest.raises(DecryptionError) as info:
        Typed.from_stream_image({**image, "s__source": {"B": bytes(blob)}})
    assert_clean(info.value, bytes(blob))
    with pytest.raises(DecryptionError):
        Typed.from_stream_image({**image, "pk": {"S": "p2"}})


# -- bad input ------------------------------------------------------------------------------------------


def _good() -> dict[str, Any]:
    return encrypt_item(Typed, {"pk": {"S": "p1"}, "s": {"S": MARKER}, "tag": {"S": MARKER + "t"}})


def _truncate(n: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(item: dict[str, Any]) -> dict[str, Any]:
        blob = item["s__source"]["B"]
        return {**item, "s__source": {"B": blob[:n]}}

    return mutate


def _flip(item: dict[str, Any]) -> dict[str, Any]:
    blob = bytearray(item["s__source"]["B"])
    blob[len(blob) // 2] ^= 0x40
    return {**item, "s__source": {"B": bytes(blob)}}


DECRYPT_MUTATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "S-where-B": lambda item: {**item, "s__source": {"S": MARKER}},
    "N-where-B": lambda item: {**item, "s__source": {"N": "1"}},
    "M-where-B": lambda item: {**item, "s__source": {"M": {"x": {"S": MARKER}}}},
    "BOOL-where-B": lambda item: {**item, "s__source": {"BOOL": True}},
    "truncated-0": _truncate(0),
    "truncated-1": _truncate(1),
    "truncated-2": _truncate(2),
    "truncated-header": _truncate(4),
    "truncated-header+nonce": _truncate(16),
    "truncated-last-byte": _truncate(-1),
    "bit-flip": _flip,
    "version-byte": lambda item: {**item, "s__source": {"B": b"\x07" + item["s__source"]["B"][1:]}},
    "bad-base64": lambda item: {**item, "s__source": {"B": MARKER + "!!"}},
    "missing-pk": lambda item: {k: v for k, v in item.items() if k != "pk"},
    "pk-of-another-item": lambda item: {**item, "pk": {"S": "p2"}},
    "pk-wrong-type": lambda item: {**item, "pk": {"N": "1"}},
    "missing-hmac": lambda item: {k: v for k, v in item.items() if k != "tag__hmac"},
    "hmac-of-another-value": lambda item: {**item, "tag__hmac": {"S": Typed.tag.hmac("other")}},
    "hmac-wrong-type": lambda item: {**item, "tag__hmac": {"B": b"\x00"}},
    "source-moved-to-other-field": lambda item: {**item, "b__source": item["s__source"]},
    "map-where-encrypted-map": lambda item: {**item, "profile": {"S": MARKER}},
    "list-where-list-of-maps": lambda item: {**item, "history": {"M": {}}},
}


@pytest.mark.parametrize("mutation", list(DECRYPT_MUTATIONS), ids=list(DECRYPT_MUTATIONS))
def test_bad_stored_items_raise_a_clear_decryption_error(mutation: str) -> None:
    good = _good()
    bad = DECRYPT_MUTATIONS[mutation](good)
    with pytest.raises(DecryptionError) as info:
        decrypt_item(Typed, bad)
    assert isinstance(info.value, StashError) and info.value.code
    assert_clean(info.value, good["s__source"]["B"], good["tag__hmac"]["S"], Typed.tag.hmac("other"))
    with pytest.raises(DecryptionError) as info:
        Typed.from_stream_image(bad)
    assert_clean(info.value, good["s__source"]["B"], good["tag__hmac"]["S"])


# Malformed DynamoDB JSON that reaches deeper code: each must still be a StashError, not a crash.
MALFORMED = {
    "map-member-not-an-attribute-value": {"pk": {"S": "p1"}, "m": {"M": {"x": MARKER}}},
    "list-member-not-an-attribute-value": {"pk": {"S": "p1"}, "l": {"L": [MARKER]}},
    "key-S-holding-a-number": {"pk": {"S": 12345}, "s__source": {"B": b"\x01\x02k1" + bytes(40)}},
    "key-S-holding-none": {"pk": {"S": None}},
}


@pytest.mark.parametrize("name", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_dynamodb_json_raises_a_stash_error_not_a_crash(name: str) -> None:
    item = MALFORMED[name]
    with pytest.raises(DecryptionError) as info:
        decrypt_item(Typed, item)
    assert_clean(info.value)
    with pytest.raises(EncryptionError) as enc_info:
        encrypt_item(Typed, {**item, "s": {"S": MARKER}})
    assert_clean(enc_info.value)


def test_a_ciphertext_of_another_keyring_raises_key_not_found() -> None:
    stored = encrypt_item(Typed2, {"pk": {"S": "p1"}, "s": {"S": MARKER}})
    with pytest.raises(KeyNotFoundError) as info:
        decrypt_item(Typed, stored)
    assert info.value.code == "key_not_found" and "k-other" in str(info.value)
    assert_clean(info.value, stored["s__source"]["B"])


ENCRYPT_BAD = {
    "str-where-int": {"pk": {"S": "p1"}, "i": {"S": MARKER}},
    "fraction-where-int": {"pk": {"S": "p1"}, "i": {"N": "1.5"}},
    "bad-number": {"pk": {"S": "p1"}, "f": {"N": MARKER}},
    "naive-datetime": {"pk": {"S": "p1"}, "dt": {"S": "2024-01-01T00:00:00"}},
    "bad-datetime": {"pk": {"S": "p1"}, "dt": {"S": MARKER}},
    "bad-date": {"pk": {"S": "p1"}, "day": {"S": MARKER}},
    "datetime-where-date": {"pk": {"S": "p1"}, "day": {"S": "2024-01-01T00:00:00+00:00"}},
    "set-in-dict": {"pk": {"S": "p1"}, "obj": {"M": {"x": {"SS": [MARKER]}}}},
    "number-set-where-str-set": {"pk": {"S": "p1"}, "tags": {"NS": ["1"]}},
    "bad-utc": {"pk": {"S": "p1"}, "utc": {"S": MARKER}},
    "bad-json-codec": {"pk": {"S": "p1"}, "js": {"S": MARKER + "{"}},
    "bytes-where-str": {"pk": {"S": "p1"}, "s": {"B": MARKER.encode()}},
    "missing-pk": {"s": {"S": MARKER}},
    "pk-wrong-type": {"pk": {"N": "1"}, "s": {"S": MARKER}},
    "map-not-a-map": {"pk": {"S": "p1"}, "profile": {"S": MARKER}},
    "list-of-maps-not-a-list": {"pk": {"S": "p1"}, "history": {"S": MARKER}},
    "map-missing-required-field": {"pk": {"S": "p1"}, "profile": {"M": {"note": {"S": MARKER}}}},
    "nan-document": {"pk": "p1", "f": float("nan"), "role": MARKER},
    "bad-base64-binary": {"pk": {"S": "p1"}, "b": {"B": MARKER + "!"}},
    "object-document": {"pk": "p1", "s": object()},
}


@pytest.mark.parametrize("name", list(ENCRYPT_BAD), ids=list(ENCRYPT_BAD))
def test_bad_plaintext_items_raise_a_clear_encryption_error(name: str) -> None:
    with pytest.raises(EncryptionError) as info:
        encrypt_item(Typed, ENCRYPT_BAD[name])
    assert info.value.code == "encryption_failed"
    assert_clean(info.value)


@pytest.mark.parametrize("item", [None, ["pk", "p1"], "pk", 42, b"pk", ("pk", "p1")], ids=repr)
def test_non_mapping_items_are_refused(item: Any) -> None:
    with pytest.raises(EncryptionError):
        encrypt_item(Typed, item)
    with pytest.raises(DecryptionError):
        decrypt_item(Typed, item)


def test_encrypt_item_without_its_primary_key_is_refused_even_with_nothing_to_encrypt() -> None:
    """The docstring: ``EncryptionError`` if the item ``lacks its primary key``."""
    with pytest.raises(EncryptionError):
        encrypt_item(Typed, {"role": {"S": "admin"}})
    with pytest.raises(EncryptionError):
        encrypt_item(Typed, {"role": "admin"})


# -- bulk -----------------------------------------------------------------------------------------------


def test_bulk_encrypt_one_result_per_item_in_order() -> None:
    items = [
        {"pk": {"S": "a"}, "s": {"S": "A"}},
        {"pk": {"S": "b"}, "i": {"S": MARKER}},
        "not a mapping",
        {"pk": "c", "s": "C"},
        {"s": {"S": MARKER}},
        {"pk": {"S": "d"}, "s": {"S": "D"}},
    ]
    results = bulk_encrypt_items(Typed, (item for item in items))  # any iterable
    assert len(results) == len(items)
    assert all(isinstance(r, ItemResult) for r in results)
    assert [r.ok for r in results] == [True, False, False, True, False, True]
    assert [type(r.error) for r in results] == [type(None), EncryptionError, EncryptionError, type(None),
                                                EncryptionError, type(None)]
    for result in results:
        assert (result.value is None) != (result.error is None)
        if result.error is not None:
            assert_clean(result.error)
    assert decrypt_item(Typed, results[0].unwrap()) == items[0]
    assert decrypt_item(Typed, results[3].unwrap()) == items[3]
    assert decrypt_item(Typed, results[5].unwrap())["pk"] == {"S": "d"}


def test_bulk_decrypt_mixed_good_and_bad_items() -> None:
    good = [encrypt_item(Typed, {"pk": {"S": f"p{n}"}, "s": {"S": f"secret {n}"}, "tag": {"S": f"t{n}"}})
            for n in range(4)]
    tampered = _flip(good[1])
    truncated = _truncate(10)(good[2])
    wrong_type = {**good[3], "s__source": {"S": MARKER}}
    missing_key = {k: v for k, v in good[0].items() if k != "pk"}
    foreign = encrypt_item(Typed2, {"pk": {"S": "x"}, "s": {"S": MARKER}})
    items: list[Any] = [good[0], tampered, good[1], truncated, "not a mapping", good[2], wrong_type, missing_key,
                        foreign, good[3], None, []]
    results = bulk_decrypt_items(Typed, items)
    assert len(results) == len(items)
    assert [r.ok for r in results] == [True, False, True, False, False, True, False, False, False, True, False, False]
    expected = {0: 0, 2: 1, 5: 2, 9: 3}
    for position, n in expected.items():
        assert results[position].value == {"pk": {"S": f"p{n}"}, "s": {"S": f"secret {n}"}, "tag": {"S": f"t{n}"}}
        assert results[position].unwrap() is results[position].value
    errors = [r.error for r in results if not r.ok]
    assert len({id(e) for e in errors}) == len(errors), "each bad item has its own error"
    assert [type(results[i].error) for i in (1, 3, 4, 6, 7, 8, 10, 11)] == [
        DecryptionError, DecryptionError, DecryptionError, DecryptionError, DecryptionError, KeyNotFoundError,
        DecryptionError, DecryptionError,
    ]
    assert results[1].error is not None and results[1].error.code == "decryption_failed"
    for index in (1, 3, 4, 6, 7, 8, 10, 11):
        result = results[index]
        with pytest.raises(StashError) as info:
            result.unwrap()
        assert info.value is result.error
        assert_clean(info.value, good[1]["s__source"]["B"], good[2]["s__source"]["B"], foreign["s__source"]["B"])


def test_bulk_of_nothing_is_nothing() -> None:
    assert bulk_encrypt_items(Typed, []) == [] and bulk_decrypt_items(Typed, iter(())) == []


def test_bulk_survives_malformed_items() -> None:
    """One malformed item must not lose the others: every item gets its own result."""
    good = encrypt_item(Typed, {"pk": {"S": "p1"}, "s": {"S": "fine"}})
    items = [good, *MALFORMED.values(), good]
    results = bulk_decrypt_items(Typed, items)
    assert [r.ok for r in results] == [True] + [False] * len(MALFORMED) + [True]
    assert all(isinstance(r.error, DecryptionError) for r in results[1:-1])
    plain_results = bulk_encrypt_items(Typed, [{"pk": {"S": "p1"}, "s": {"S": "x"}}, *MALFORMED.values()])
    assert [r.ok for r in plain_results] == [True] + [False] * len(MALFORMED)


def test_item_result_unwrap() -> None:
    ok = ItemResult(value={"pk": {"S": "a"}})
    assert ok.ok and ok.unwrap() == {"pk": {"S": "a"}}
    error = DecryptionError("x")
    failed: ItemResult[dict[str, Any]] = ItemResult(error=error)
    assert not failed.ok
    with pytest.raises(DecryptionError) as info:
        failed.unwrap()
    assert info.value is error


# -- property-based round trips -----------------------------------------------------------------------

JSON_LEAVES = st.none() | st.booleans() | st.text(max_size=8) | st.integers(-(2**70), 2**70) | st.floats(
    allow_nan=False, allow_infinity=False
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
TEXT_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
OFFSETS = st.integers(-(24 * 3600 - 1), 24 * 3600 - 1).map(lambda s: timezone(timedelta(seconds=s)))
AWARE = st.datetimes(timezones=OFFSETS)
UTC = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc))
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
# What DynamoDB stores as a number: 0, or a magnitude from 1E-130 to below 1E+126.
STORABLE_FLOATS = FLOATS.filter(lambda v: v == 0 or 1e-130 <= abs(v) < 1e125)

# field -> strategy of (DynamoDB JSON attribute value, the Python value the model holds)
TYPE_STRATEGIES: dict[str, Any] = {
    "s": st.text().map(lambda v: ({"S": v}, v)),
    "b": st.binary(max_size=64).map(lambda v: ({"B": v}, v)),
    "i": st.one_of(st.integers(-(2**64), 2**64), st.integers(-(10**120), 10**120)).map(lambda v: ({"N": str(v)}, v)),
    "f": FLOATS.map(lambda v: ({"N": repr(v)}, v)),
    "d": st.decimals(allow_nan=False, allow_infinity=False).map(lambda v: ({"N": str(v)}, v)),
    "flag": st.booleans().map(lambda v: ({"BOOL": v}, v)),
    "dt": AWARE.map(lambda v: ({"S": v.isoformat()}, v)),
    "day": st.dates().map(lambda v: ({"S": v.isoformat()}, v)),
    "obj": st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5).map(lambda v: (json_to_av(v), v)),
    "arr": st.lists(JSON_VALUES, max_size=5).map(lambda v: (json_to_av(v), v)),
    "tags": st.frozensets(st.text(max_size=10), max_size=6).map(lambda v: ({"SS": sorted(v)}, set(v))),
    "utc": UTC.map(lambda v: ({"S": UTCDateTimeAttribute().serialize(v)}, v)),
    "num": st.one_of(st.integers(-(10**30), 10**30), STORABLE_FLOATS).map(
        lambda v: ({"N": NumberAttribute().serialize(v)}, v)
    ),
    "tag": st.text().map(lambda v: ({"S": v}, v)),
}
HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assert_model_value(field: str, got: Any, expected: Any, av: dict[str, Any]) -> None:
    if field == "num":  # NumberAttribute: the number written, read as int or float
        assert Decimal(repr(got) if isinstance(got, float) else got) == Decimal(av["N"])
        return
    assert got == expected
    if field in ("i", "f", "d", "flag", "day", "b", "s"):
        assert type(got) is type(expected)


@pytest.mark.parametrize("field", list(TYPE_STRATEGIES))
@HYPOTHESIS
@given(data=st.data())
def test_property_round_trip_dynamodb_json(field: str, data: Any) -> None:
    av, value = data.draw(TYPE_STRATEGIES[field])
    plain = {"pk": {"S": "p1"}, field: av}
    stored = encrypt_item(Typed, plain)
    assert field not in stored and list(stored[f"{field}__source"]) == ["B"]
    if field == "tag":
        assert stored["tag__hmac"] == {"S": Typed.tag.hmac(value)}
    back = decrypt_item(Typed, stored)
    assert item_canon(back) == item_canon(plain)
    assert decrypt_item(Typed, exported(stored)) == back
    _assert_model_value(field, getattr(Typed.from_stream_image(stored), field), value, av)


@pytest.mark.parametrize("field", list(TYPE_STRATEGIES))
@HYPOTHESIS
@given(data=st.data())
def test_property_round_trip_document_values(field: str, data: Any) -> None:
    av, value = data.draw(TYPE_STRATEGIES[field])
    plain = {"pk": "p1", field: av_to_doc(av)}
    stored = encrypt_item(Typed, plain)
    assert field not in stored and type(stored[f"{field}__source"]) is bytes
    back = decrypt_item(Typed, stored)
    assert doc_canon(back) == doc_canon(plain)
    as_json = {"pk": {"S": "p1"}, **{k: {"B": v} for k, v in stored.items() if k.endswith("__source")}}
    if "tag__hmac" in stored:
        as_json["tag__hmac"] = {"S": stored["tag__hmac"]}
    _assert_model_value(field, getattr(Typed.from_stream_image(as_json), field), value, av)


ADDRESS = st.fixed_dictionaries(
    {"street": st.text(max_size=12).map(lambda v: {"S": v})},
    optional={"city": st.text(max_size=8).map(lambda v: {"S": v}),
              "zip": st.integers(0, 99999).map(lambda v: {"N": str(v)})},
).map(lambda m: {"M": m})
PROFILE = st.fixed_dictionaries(
    {"ssn": st.text(max_size=12).map(lambda v: {"S": v})},
    optional={"dob": st.dates().map(lambda v: {"S": v.isoformat()}), "address": ADDRESS,
              "note": st.text(max_size=8).map(lambda v: {"S": v})},
).map(lambda m: {"M": m})
ITEM_FIELDS = {
    **{k: v.map(lambda pair: pair[0]) for k, v in TYPE_STRATEGIES.items() if k not in ("obj", "arr")},
    "obj": st.dictionaries(st.text(max_size=6), TEXT_JSON_VALUES, max_size=4).map(json_to_av),
    "arr": st.lists(TEXT_JSON_VALUES, max_size=4).map(json_to_av),
    "profile": PROFILE,
    "history": st.lists(ADDRESS, max_size=3).map(lambda v: {"L": v}),
    "role": st.text(max_size=8).map(lambda v: {"S": v}),
    "extra": st.text(max_size=8).map(lambda v: {"S": v}),
}


@st.composite
def whole_items(draw: Any) -> dict[str, Any]:
    names = draw(st.sets(st.sampled_from(sorted(ITEM_FIELDS)), min_size=1))
    item = {"pk": {"S": draw(st.text(min_size=1, max_size=10))}}
    for name in sorted(names):
        item[name] = draw(ITEM_FIELDS[name])
    return item


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain=whole_items())
def test_property_round_trip_whole_items_both_shapes(plain: dict[str, Any]) -> None:
    stored = encrypt_item(Typed, plain)
    declared_plain = {"pk", "role", "extra", "profile", "history"}
    assert not (set(plain) - declared_plain) & set(stored), "no encrypted attribute under its base name"
    assert item_canon(decrypt_item(Typed, stored)) == item_canon(plain)
    assert item_canon(bulk_decrypt_items(Typed, [stored])[0].unwrap()) == item_canon(plain)
    doc = {k: av_to_doc(v) for k, v in plain.items()}
    assert doc_canon(decrypt_item(Typed, encrypt_item(Typed, doc))) == doc_canon(doc)
    instance = Typed.from_stream_image(stored)
    assert instance.pk == plain["pk"]["S"]
    if "profile" in plain:
        assert instance.profile.ssn == plain["profile"]["M"]["ssn"]["S"]


def test_an_encrypted_attribute_named_by_its_python_name_is_refused_not_passed_through() -> None:
    from pynamodb.attributes import UnicodeAttribute

    from pynamodb_stash import EncryptedAttribute, EncryptedModel, EncryptionError, Keyring

    class Renamed(EncryptedModel):
        class Meta:
            table_name = "renamed"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True, attr_name="mail")

    with pytest.raises(EncryptionError) as raised:
        encrypt_item(Renamed, {"pk": "1", "email": "alice@example.com"})
    assert "alice" not in str(raised.value)
    assert "mail__source" in encrypt_item(Renamed, {"pk": "1", "mail": "alice@example.com"})


@pytest.mark.parametrize("name", ["tag__hmac", "s__source", "undeclared__hmac", "other__source"])
@pytest.mark.parametrize("shape", ["dynamodb", "document"])
def test_encrypt_item_refuses_reserved_names_in_plaintext_input(name: str, shape: str) -> None:
    """An HMAC given in a plaintext item would be stored as given, and answer lookups for another value."""
    forged = Typed(pk="x", tag="someone-else").serialize()["tag__hmac"]
    item: dict[str, Any] = {"pk": {"S": "p1"}, "tag": {"S": "mine"}, name: forged}
    if shape == "document":
        item = {key: av_to_doc(value) for key, value in item.items()}
    with pytest.raises(EncryptionError) as raised:
        encrypt_item(Typed, item, shape=shape)  # type: ignore[arg-type]
    assert raised.value.code == "reserved_name" and name in str(raised.value)
    assert forged["S"] not in str(raised.value)


def test_decrypt_item_applies_the_plaintext_policy() -> None:
    """A plaintext ``s`` written where ``s__source`` was: refused under "forbid", never passed through."""
    stored = encrypt_item(Typed, {"pk": {"S": "p1"}, "s": {"S": "real"}, "tag": {"S": "t"}})
    del stored["s__source"]
    stored["s"] = {"S": MARKER}
    for read in (lambda: decrypt_item(Typed, stored), lambda: bulk_decrypt_items(Typed, [stored])[0].unwrap()):
        with pytest.raises(DecryptionError) as raised:
            read()
        assert raised.value.code == "plaintext_found"
        assert_clean(raised.value, MARKER)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("d", 1.5, "expected Decimal, got float"),  # the model refuses a float for a Decimal: so does this
        ("i", True, "expected int, got bool"),
        ("s", 7, "expected str, got int"),
    ],
)
def test_encrypt_item_applies_the_models_type_rules_to_document_values(name: str, value: Any, expected: str) -> None:
    with pytest.raises(EncryptionError) as raised:
        encrypt_item(Typed, {"pk": "p1", name: value}, shape="document")
    assert expected in str(raised.value) and f"Typed.{name}" in str(raised.value)
    with pytest.raises(EncryptionError) as raised_by_model:
        Typed(pk="p1", **{name: value}).serialize()
    assert expected in str(raised_by_model.value)


@pytest.mark.parametrize("shape", ["dynamodb", "document"])
def test_encrypt_item_says_a_fractional_number_is_not_an_int(shape: str) -> None:
    """Numbers arrive as N or Decimal: one with a fraction for an int attribute says so (not "got Decimal")."""
    item = {"pk": {"S": "p1"}, "i": {"N": "1.5"}} if shape == "dynamodb" else {"pk": "p1", "i": Decimal("1.5")}
    with pytest.raises(EncryptionError) as raised:
        encrypt_item(Typed, item, shape=shape)  # type: ignore[arg-type]
    assert "Typed.i" in str(raised.value) and "fractional" in str(raised.value) and "1.5" not in str(raised.value)


def test_document_values_of_every_wire_form_are_still_converted() -> None:
    """boto3's resource hands numbers as Decimal and binary as Binary; dates arrive as ISO text."""
    document = {
        "pk": "p1", "i": Decimal(42), "f": 2, "d": Decimal("1.50"), "b": Binary(b"\x00\x01"),
        "dt": "2024-02-29T23:59:58+00:00", "tags": {"a", "b"},
    }
    stored = encrypt_item(Typed, document, shape="document")
    as_json = {name: {"B": value} if isinstance(value, bytes) else {"S": value} for name, value in stored.items()}
    back = Typed.from_stream_image(as_json)
    assert (back.i, back.f, back.d, back.b, back.tags) == (42, 2.0, Decimal("1.50"), b"\x00\x01", {"a", "b"})
    assert type(back.i) is int and type(back.f) is float
    assert back.dt == datetime(2024, 2, 29, 23, 59, 58, tzinfo=timezone.utc)
