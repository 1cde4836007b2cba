"""Models and helpers shared by the offline raw-item tests (``test_raw_items_offline*.py`` next to it).

``from rawitemtest import ...``: pytest puts a test module's directory on ``sys.path`` (the test
directories have no ``__init__.py``), as it does ``tests/`` for ``stashtest``. The models have keyrings
of their own and never reach a server.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

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

from pynamodb_stash import EncryptedAttribute, EncryptedMapAttribute, EncryptedModel, Keyring

MARKER = "zq-PLAINTEXT-MARKER-7731"
KEYRING = Keyring.generate()
OTHER_KEYRING = Keyring.generate(key_id="k-other", index_key_id="idx-other")


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

