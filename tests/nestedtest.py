"""Declarations and helpers shared by the nested-map tests (``tests/integration/test_nested_maps*.py``):
``from nestedtest import ...``, as for ``stashtest``.

The map classes are table independent; ``define_user``, ``define_event`` and ``define_doc`` declare the
models on a DynamoDB Local table; ``model_fixture`` makes a module-scoped fixture of one, so that each test
module has its own tables (``User = model_fixture(define_user, "nested_users")``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Iterator

import pytest
from pynamodb.attributes import (
    BinaryAttribute,
    BinarySetAttribute,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from stashtest import created, raw_item, table_meta, unique

from pynamodb_stash import EncryptedAttribute, EncryptedMapAttribute, EncryptedModel, Keyring

SSN = "123-45-6789"
STREET = "1 Main Street"
NOTE = "allergic to penicillin"


# -- map declarations (table independent) ---------------------------------------------------------------


class Address(EncryptedMapAttribute):
    street = EncryptedAttribute(str, equality=True)
    city = UnicodeAttribute()


class Profile(EncryptedMapAttribute):
    ssn = EncryptedAttribute(str, equality=True)
    address = Address(null=True)
    age = NumberAttribute(null=True)
    note = EncryptedAttribute(str, null=True)


class PlainAddress(MapAttribute[str, Any]):
    street = UnicodeAttribute()
    zip = NumberAttribute(null=True)


class PlainFields(EncryptedMapAttribute):
    """Every kind of plain PynamoDB attribute, next to one encrypted field."""

    secret = EncryptedAttribute(str, equality=True)
    s = UnicodeAttribute(null=True)
    n = NumberAttribute(null=True)
    bin = BinaryAttribute(legacy_encoding=False, null=True)
    flag = BooleanAttribute(null=True)
    ss = UnicodeSetAttribute(null=True)
    ns = NumberSetAttribute(null=True)
    bs = BinarySetAttribute(legacy_encoding=False, null=True)
    when = UTCDateTimeAttribute(null=True)
    numbers = ListAttribute(of=NumberAttribute, null=True)
    anything = ListAttribute(null=True)
    raw = MapAttribute(null=True)
    typed = PlainAddress(null=True)
    doc = JSONAttribute(null=True)


class PlainTwin(MapAttribute[str, Any]):
    """``PlainFields`` without its encrypted field, as plain PynamoDB declares it."""

    s = UnicodeAttribute(null=True)
    n = NumberAttribute(null=True)
    bin = BinaryAttribute(legacy_encoding=False, null=True)
    flag = BooleanAttribute(null=True)
    ss = UnicodeSetAttribute(null=True)
    ns = NumberSetAttribute(null=True)
    bs = BinarySetAttribute(legacy_encoding=False, null=True)
    when = UTCDateTimeAttribute(null=True)
    numbers = ListAttribute(of=NumberAttribute, null=True)
    anything = ListAttribute(null=True)
    raw = MapAttribute(null=True)
    typed = PlainAddress(null=True)
    doc = JSONAttribute(null=True)


class Leaf(EncryptedMapAttribute):
    """Every supported encrypted type, plus two plain fields."""

    s = EncryptedAttribute(str, equality=True, null=True)
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
    plain_s = UnicodeAttribute(null=True)
    plain_n = NumberAttribute(null=True)


LEAF_ENCRYPTED = ("s", "b", "i", "f", "d", "flag", "dt", "day", "obj", "arr", "tags", "utc", "num")
LEAF_PLAIN = ("plain_s", "plain_n")


class Middle(EncryptedMapAttribute):
    """A map holding a map, a list of maps, an encrypted field and a plain field."""

    leaf = Leaf(null=True)
    leaves = ListAttribute(of=Leaf, null=True)
    secret = EncryptedAttribute(str, null=True)
    label = UnicodeAttribute(null=True)



# -- models and items ----------------------------------------------------------------------------------


def define_user(url: str, table: str, kr: Keyring) -> type[EncryptedModel]:
    class User(EncryptedModel):
        Meta = table_meta(url, table, kr)

        pk = UnicodeAttribute(hash_key=True)
        profile = Profile(null=True)
        work = Address(null=True)
        history = ListAttribute(of=Address, null=True)
        plain = PlainFields(null=True)

    return User


def define_event(url: str, table: str, kr: Keyring) -> type[EncryptedModel]:
    class Event(EncryptedModel):
        Meta = table_meta(url, table, kr)

        group = UnicodeAttribute(hash_key=True)
        seq = NumberAttribute(range_key=True)
        profile = Profile(null=True)
        history = ListAttribute(of=Address, null=True)

    return Event


def define_doc(url: str, table: str, kr: Keyring) -> type[EncryptedModel]:
    class Doc(EncryptedModel):
        Meta = table_meta(url, table, kr)

        pk = UnicodeAttribute(hash_key=True)
        top = Middle(null=True)
        tops = ListAttribute(of=Middle, null=True)

    return Doc


def model_fixture(define: Callable[[str, str, Keyring], type[EncryptedModel]], prefix: str) -> Any:
    """A module-scoped fixture: the model ``define`` declares on DynamoDB Local (with the ``keyring`` fixture),
    its table created for the module (named after ``prefix``) and deleted after it."""

    @pytest.fixture(scope="module")
    def model(ddb_url: str, keyring: Keyring) -> Iterator[type[EncryptedModel]]:
        yield from created(define(ddb_url, unique(prefix), keyring))

    return model


def raw_user(client: Any, User: Any, pk: str) -> dict[str, Any]:
    item = raw_item(client, User.Meta.table_name, {"pk": {"S": pk}})
    assert item is not None, f"no item {pk!r}"
    return dict(item)


def put_raw(client: Any, model: Any, item: dict[str, Any]) -> None:
    client.put_item(TableName=model.Meta.table_name, Item=item)


def full_user(User: Any, pk: str, *, ssn: str = SSN, street: str = STREET) -> Any:
    return User(
        pk=pk,
        profile=Profile(ssn=ssn, address=Address(street=street, city="Springfield"), age=40, note=NOTE),
        work=Address(street=f"{street} (work)", city="Capital City"),
        history=[
            Address(street=f"{street} (old)", city="Shelbyville"),
            Address(street=f"{street} (older)", city="Ogden"),
        ],
    )

