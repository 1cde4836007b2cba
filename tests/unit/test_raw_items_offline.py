"""The raw-item API without a server: ``encrypt_item``, ``decrypt_item`` and ``from_stream_image`` on the
stored layout, both item shapes, encrypted maps, HMAC keys, polymorphic models and stream images.

Both item shapes people hold are exercised: DynamoDB JSON (``{"S": ...}``, as ``boto3.client``, Streams
and S3 exports have it) and document values (as a ``boto3.resource`` Table has them: ``Decimal``
numbers, ``boto3.dynamodb.types.Binary``, Python sets). Bad input is in
``test_raw_items_offline_bad_input.py``, hypothesis round trips in ``test_raw_items_offline_properties.py``;
the models they share in ``tests/unit/rawitemtest.py``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary
from rawitemtest import (
    MARKER,
    Account,
    Event,
    Invoice,
    Patient,
    Record,
    Typed,
    assert_clean,
    doc_canon,
    item_canon,
)
from stashtest import assert_no_plaintext, av_to_doc, exported, json_to_av

from pynamodb_stash import DecryptionError, EncryptionError, decrypt_item, encrypt_item

pytestmark = pytest.mark.usefixtures("offline")


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
