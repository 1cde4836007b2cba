"""The models, keys and values behind the known-answer vectors (shared by generate.py and the tests).

Changing anything here changes the vectors: add new models and values, never edit existing ones.
"""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, Tuple
from zoneinfo import ZoneInfo

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)

from pynamodb_stash import EncryptedAttribute, EncryptedMapAttribute, EncryptedModel, Keyring

ENCRYPTION_KEY = bytes(range(32))
INDEX_KEY = bytes(range(32, 64))
OLD_KEY = bytes(range(64, 96))


def keyring() -> Keyring:
    return Keyring.local(ENCRYPTION_KEY, index_key=INDEX_KEY, key_id="k2", decrypt_only={"k1": OLD_KEY})


def old_keyring() -> Keyring:
    return Keyring.local(OLD_KEY, index_key=INDEX_KEY, key_id="k1")


def models(ring: Keyring) -> Dict[str, type]:
    class TypedItem(EncryptedModel):
        class Meta:
            table_name = "vectors-typed"
            host = "http://127.0.0.1:1"  # never contacted: vectors are (de)serialized offline
            keyring = ring

        pk = UnicodeAttribute(hash_key=True)
        text = EncryptedAttribute(str, equality=True)
        blob = EncryptedAttribute(bytes, null=True)
        count = EncryptedAttribute(int, null=True)
        ratio = EncryptedAttribute(float, null=True)
        amount = EncryptedAttribute(Decimal, null=True)
        flag = EncryptedAttribute(bool, null=True)
        when = EncryptedAttribute(datetime, null=True)
        day = EncryptedAttribute(date, null=True)
        doc = EncryptedAttribute(dict, null=True)
        items = EncryptedAttribute(list, null=True)
        tags = EncryptedAttribute(set, null=True)
        stamp = EncryptedAttribute(UTCDateTimeAttribute(), null=True)
        renamed = EncryptedAttribute(str, equality=True, null=True, attr_name="other_name")

    class KeyedItem(EncryptedModel):
        class Meta:
            table_name = "vectors-keyed"
            host = "http://127.0.0.1:1"
            keyring = ring

        email = EncryptedAttribute(str, equality=True, hash_key=True)
        seq = NumberAttribute(range_key=True)
        note = EncryptedAttribute(str)

    class NestedItem(EncryptedModel):
        class Meta:
            table_name = "vectors-nested"
            host = "http://127.0.0.1:1"
            keyring = ring

        pk = UnicodeAttribute(hash_key=True)
        profile = Profile(null=True)
        history = ListAttribute(of=Address, null=True)

    return {"TypedItem": TypedItem, "KeyedItem": KeyedItem, "NestedItem": NestedItem}


class Address(EncryptedMapAttribute):
    street = EncryptedAttribute(str, equality=True)
    city = UnicodeAttribute(null=True)


class Profile(EncryptedMapAttribute):
    ssn = EncryptedAttribute(str, equality=True, null=True)
    born = EncryptedAttribute(date, null=True)
    address = Address(null=True)


VALUES: Tuple[Tuple[str, Dict[str, Any]], ...] = (
    ("TypedItem", {"pk": "empty", "text": ""}),
    ("TypedItem", {
        "pk": "all-types",
        "text": "Grüße, 世界 🌍",
        "blob": b"\x00\xffbinary",
        "count": -(2**70),
        "ratio": -0.0,
        "amount": Decimal("-12.3400E+5"),
        "flag": False,
        "when": datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Paris")),
        "day": date(1999, 12, 31),
        "doc": {"nested": {"list": [1, 2.5, None, True, "x"]}, "": ""},
        "items": [[], {}, "", 0],
        "tags": {"b", "a", "ü"},
        "stamp": datetime(2020, 2, 29, 23, 59, 59, 999999, tzinfo=timezone.utc),
        "renamed": "stored as other_name",
    }),
    ("TypedItem", {
        "pk": "edge",
        "text": "x" * 1000,
        "blob": b"",
        "count": 0,
        "ratio": float("inf"),
        "amount": Decimal("NaN"),
        "flag": True,
        "when": datetime(1970, 1, 1, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
        "tags": set(),
    }),
    ("KeyedItem", {"email": "alice@example.com", "seq": 1, "note": "hash key is an HMAC"}),
    ("KeyedItem", {"email": "alice@example.com", "seq": 2.5, "note": "range key is a float"}),
    ("NestedItem", {
        "pk": "nested",
        "profile": {"ssn": "123-45-6789", "born": date(1990, 5, 17),
                    "address": {"street": "1 Main St", "city": "Springfield"}},
        "history": [{"street": "9 Old Rd", "city": "Shelbyville"}, {"street": "7 Elm Ct"}],
    }),
)


def to_json_value(value: Any) -> Any:
    """A typed, exact JSON form of an attribute value, for comparing what the vectors decrypt to."""
    if isinstance(value, MapAttribute):
        return {"map": {k: to_json_value(v) for k, v in sorted(value.attribute_values.items()) if v is not None
                        and not k.endswith("__hmac")}}
    if isinstance(value, list) and value and isinstance(value[0], MapAttribute):
        return {"maps": [to_json_value(v) for v in value]}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat(), "zone": getattr(value.tzinfo, "key", None)}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, set):
        return {"set": sorted(value)}
    return {"json": value}


def raw_to_json(raw: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {name: _av(value, encode=True) for name, value in raw.items()}


def raw_from_json(raw: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {name: _av(value, encode=False) for name, value in raw.items()}


def _av(value: Dict[str, Any], *, encode: bool) -> Dict[str, Any]:
    (kind, data), = value.items()
    if kind == "B":
        return {kind: base64.b64encode(data).decode() if encode else base64.b64decode(data)}
    if kind == "M":
        return {kind: {k: _av(v, encode=encode) for k, v in data.items()}}
    if kind == "L":
        return {kind: [_av(v, encode=encode) for v in data]}
    return {kind: data}
