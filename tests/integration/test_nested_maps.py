"""Nested encryption (``EncryptedMapAttribute``) on DynamoDB Local.

Maps declared as ``EncryptedMapAttribute`` subclasses encrypt their ``EncryptedAttribute`` fields one by
one, at any depth and inside ``ListAttribute(of=...)``, and leave their plain fields exactly as PynamoDB
stores them. Every test that writes reads the raw item back with boto3 (past the library) to check the
stored shape (``profile -> address -> street__source``) and that no plaintext reaches DynamoDB.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
from pynamodb.connection import Connection
from pynamodb.exceptions import AttributeNullError, DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.expressions.operand import Path
from pynamodb.models import Model
from pynamodb.transactions import TransactGet, TransactWrite
from stashtest import REGION, assert_no_plaintext, assert_sealed, created, raw_item, table_meta, unique

from pynamodb_stash import (
    DecryptionError,
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    Keyring,
    UnsupportedQueryError,
)

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


# -- helpers --------------------------------------------------------------------------------------------


def assert_absent(stored_map: dict[str, Any], name: str) -> None:
    assert not {name, f"{name}__source", f"{name}__hmac"} & set(stored_map)


def normalized(av: Any) -> Any:
    """A raw attribute value with its sets sorted (DynamoDB returns set members in any order)."""
    if isinstance(av, dict):
        out = {}
        for kind, value in av.items():
            if kind in ("SS", "NS", "BS"):
                out[kind] = sorted(bytes(v) if kind == "BS" else v for v in value)
            elif kind == "B":
                out[kind] = bytes(value)
            else:
                out[kind] = normalized(value)
        return out
    if isinstance(av, list):
        return [normalized(v) for v in av]
    return av


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


# -- fixtures (and ``keyring``, ``client``, ``connection`` from conftest.py) ----------------------------


@pytest.fixture(scope="module")
def User(ddb_url: str, keyring: Keyring) -> Iterator[type[EncryptedModel]]:
    yield from created(define_user(ddb_url, unique("nested_users"), keyring))


@pytest.fixture(scope="module")
def Event(ddb_url: str, keyring: Keyring) -> Iterator[type[EncryptedModel]]:
    yield from created(define_event(ddb_url, unique("nested_events"), keyring))


@pytest.fixture(scope="module")
def Doc(ddb_url: str, keyring: Keyring) -> Iterator[type[EncryptedModel]]:
    yield from created(define_doc(ddb_url, unique("nested_docs"), keyring))


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


# -- stored shape and round trips -----------------------------------------------------------------------


def test_round_trip_keeps_the_nesting_and_stores_no_plaintext(User: Any, client: Any) -> None:
    pk = unique("shape")
    full_user(User, pk).save()

    raw = raw_user(client, User, pk)
    assert set(raw) == {"pk", "profile", "work", "history"}
    profile = raw["profile"]["M"]
    assert set(profile) == {"ssn__source", "ssn__hmac", "address", "age", "note__source"}
    assert_sealed(profile, "ssn", hmac=User.profile.ssn.hmac(SSN))
    assert_sealed(profile, "note")
    assert profile["age"] == {"N": "40"}
    address = profile["address"]["M"]
    assert set(address) == {"street__source", "street__hmac", "city"}
    assert_sealed(address, "street", hmac=User.profile.address.street.hmac(STREET))
    assert address["city"] == {"S": "Springfield"}
    work = raw["work"]["M"]
    assert_sealed(work, "street", hmac=User.work.street.hmac(f"{STREET} (work)"))
    history = raw["history"]["L"]
    assert len(history) == 2
    for element, city in zip(history, ("Shelbyville", "Ogden")):
        assert set(element["M"]) == {"street__source", "street__hmac", "city"}
        assert_sealed(element["M"], "street", equality=True)
        assert element["M"]["city"] == {"S": city}
    assert_no_plaintext(raw, SSN, STREET, NOTE, "Main Street", "penicillin")

    got = User.get(pk, consistent_read=True)
    assert isinstance(got.profile, Profile) and isinstance(got.profile.address, Address)
    assert (got.profile.ssn, got.profile.note, got.profile.age) == (SSN, NOTE, 40)
    assert (got.profile.address.street, got.profile.address.city) == (STREET, "Springfield")
    assert (got.work.street, got.work.city) == (f"{STREET} (work)", "Capital City")
    assert [(h.street, h.city) for h in got.history] == [
        (f"{STREET} (old)", "Shelbyville"),
        (f"{STREET} (older)", "Ogden"),
    ]


def test_equal_values_at_two_paths_store_different_hmacs(User: Any, client: Any) -> None:
    pk = unique("paths")
    User(
        pk=pk,
        profile=Profile(ssn="same", address=Address(street="same", city="c")),
        work=Address(street="same", city="c"),
    ).save()
    raw = raw_user(client, User, pk)
    digests = {
        raw["profile"]["M"]["ssn__hmac"]["S"],
        raw["profile"]["M"]["address"]["M"]["street__hmac"]["S"],
        raw["work"]["M"]["street__hmac"]["S"],
    }
    assert len(digests) == 3
    assert User.profile.address.street.hmac("same") != User.work.street.hmac("same")


def test_every_supported_type_round_trips_inside_maps_and_lists(Doc: Any, client: Any) -> None:
    values = {
        "s": "SECRET-text \u00e9\u4e2d",
        "b": b"SECRETB-\x00\xff",
        "i": -(2**70),
        "f": 2.5e-300,
        "d": Decimal("-12345678901234567890.000100"),
        "flag": False,
        "dt": datetime(2024, 3, 31, 2, 30, 1, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        "day": date(1999, 12, 31),
        "obj": {"k": [1, 2.5, None, True, "x"], "n": {"deep": "SECRET-json"}},
        "arr": ["SECRET-list", 1, None],
        "tags": {"SECRET-tag", "b"},
        "utc": datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc),
        "num": 12345,
        "plain_s": "visible",
        "plain_n": 7,
    }
    pk = unique("types")
    Doc(
        pk=pk,
        top=Middle(leaf=Leaf(**values), leaves=[Leaf(), Leaf(**values)], secret="SECRET-mid", label="lbl"),
        tops=[Middle(leaves=[Leaf(**values)])],
    ).save()

    raw = client.get_item(TableName=Doc.Meta.table_name, Key={"pk": {"S": pk}}, ConsistentRead=True)["Item"]
    assert_no_plaintext(raw, "SECRET", b"SECRETB")
    top = raw["top"]["M"]
    for stored_leaf in (
        top["leaf"]["M"],
        top["leaves"]["L"][1]["M"],
        raw["tops"]["L"][0]["M"]["leaves"]["L"][0]["M"],
    ):
        for name in LEAF_ENCRYPTED:
            assert_sealed(stored_leaf, name, equality=name == "s")
        assert stored_leaf["plain_s"] == {"S": "visible"} and stored_leaf["plain_n"] == {"N": "7"}
    assert top["leaves"]["L"][0] == {"M": {}}
    assert top["leaf"]["M"]["s__hmac"] == {"S": Doc.top.leaf.s.hmac(values["s"])}

    got = Doc.get(pk, consistent_read=True)
    for leaf in (got.top.leaf, got.top.leaves[1], got.tops[0].leaves[0]):
        for name, expected in values.items():
            actual = getattr(leaf, name)
            assert actual == expected and type(actual) is type(expected), name
        assert leaf.dt.utcoffset() == timedelta(hours=5, minutes=30)
    assert all(getattr(got.top.leaves[0], name) is None for name in (*LEAF_ENCRYPTED, *LEAF_PLAIN))
    assert (got.top.secret, got.top.label) == ("SECRET-mid", "lbl")
    assert got.tops[0].leaf is None and got.tops[0].secret is None


def _plain_values() -> dict[str, Any]:
    return {
        "s": "plain text",
        "n": 12.5,
        "bin": b"\x00\x01raw",
        "flag": True,
        "ss": {"a", "b"},
        "ns": {1, 2.5},
        "bs": {b"x", b"y"},
        "when": datetime(2021, 6, 1, 12, 0, tzinfo=timezone.utc),
        "numbers": [1, 2, 3],
        "anything": ["x", 1, True, None],
        "raw": MapAttribute(k="v", n=1),
        "typed": PlainAddress(street="plain street", zip=12345),
        "doc": {"json": [1, "two"]},
    }


def test_plain_fields_inside_encrypted_maps_are_stored_exactly_as_pynamodb_stores_them(
    User: Any, client: Any
) -> None:
    class PlainModel(Model):
        class Meta:
            table_name = "never-created"
            host = "http://127.0.0.1:9"
            region = REGION

        pk = UnicodeAttribute(hash_key=True)
        plain = PlainTwin(null=True)

    pk = unique("plain")
    User(pk=pk, plain=PlainFields(secret="SECRET-beside-plain", **_plain_values())).save()
    expected = PlainModel(pk=pk, plain=PlainTwin(**_plain_values())).serialize()["plain"]["M"]

    raw = raw_user(client, User, pk)
    stored = dict(raw["plain"]["M"])
    assert_sealed(stored, "secret", hmac=User.plain.secret.hmac("SECRET-beside-plain"))
    assert_no_plaintext(raw, "SECRET")
    del stored["secret__source"], stored["secret__hmac"]
    assert normalized(stored) == normalized(expected)

    got = User.get(pk, consistent_read=True).plain
    assert got.secret == "SECRET-beside-plain"
    for name, value in _plain_values().items():
        if isinstance(value, MapAttribute):
            assert getattr(got, name).attribute_values == value.attribute_values, name
        else:
            assert getattr(got, name) == value, name


def test_dicts_assigned_instead_of_map_instances(User: Any, client: Any) -> None:
    pk = unique("dicts")
    user = User(
        pk=pk,
        profile={"ssn": SSN, "address": {"street": STREET, "city": "Springfield"}, "age": 3},
        work={"street": "w", "city": "wc"},
        history=[{"street": "first past street", "city": "c0"}, Address(street="second past street", city="c1")],
    )
    user.save()
    raw = raw_user(client, User, pk)
    assert_sealed(raw["profile"]["M"], "ssn", hmac=User.profile.ssn.hmac(SSN))
    assert_sealed(
        raw["profile"]["M"]["address"]["M"], "street", hmac=User.profile.address.street.hmac(STREET)
    )
    assert [set(e["M"]) for e in raw["history"]["L"]] == [{"street__source", "street__hmac", "city"}] * 2
    assert_no_plaintext(raw, SSN, STREET, "first past street", "second past street")

    got = User.get(pk, consistent_read=True)
    assert (got.profile.ssn, got.profile.address.street, got.profile.age) == (SSN, STREET, 3)
    assert [(h.street, h.city) for h in got.history] == [("first past street", "c0"), ("second past street", "c1")]
    assert [
        u.pk for u in User.scan(User.profile.address.street == STREET, consistent_read=True) if u.pk == pk
    ] == [pk]

    got.update(actions=[User.profile.set({"ssn": "987", "address": {"street": "dict st", "city": "x"}})])
    got.update(actions=[User.work.set({"street": "dict work", "city": "y"})])
    again = User.get(pk, consistent_read=True)
    assert (again.profile.ssn, again.profile.address.street, again.work.street) == (
        "987",
        "dict st",
        "dict work",
    )
    raw = raw_user(client, User, pk)
    assert raw["profile"]["M"]["ssn__hmac"] == {"S": User.profile.ssn.hmac("987")}
    assert_no_plaintext(raw, "dict st", "dict work")


def test_missing_optional_fields_and_empty_containers(User: Any, client: Any) -> None:
    pk = unique("sparse")
    User(pk=pk, profile=Profile(ssn=SSN), history=[]).save()
    raw = raw_user(client, User, pk)
    assert set(raw["profile"]["M"]) == {"ssn__source", "ssn__hmac"}
    assert raw["history"] == {"L": []}
    assert "work" not in raw and "plain" not in raw
    got = User.get(pk, consistent_read=True)
    assert got.profile.ssn == SSN
    assert got.profile.address is None and got.profile.note is None and got.profile.age is None
    assert got.history == [] and got.work is None


def test_missing_required_nested_field_is_refused_and_nothing_is_written(User: Any, client: Any) -> None:
    pk = unique("required")
    with pytest.raises(AttributeNullError):
        User(pk=pk, profile=Profile(age=3)).save()
    with pytest.raises(AttributeNullError):
        User(pk=pk, history=[Address(city="no street")]).save()
    assert client.get_item(TableName=User.Meta.table_name, Key={"pk": {"S": pk}}).get("Item") is None


def test_modified_loaded_maps_are_resealed_on_save(User: Any, client: Any) -> None:
    pk = unique("resave")
    full_user(User, pk).save()
    got = User.get(pk, consistent_read=True)
    got.profile.ssn = "000-00-0000"
    got.history[1].street = "changed street"
    got.profile.address = Address(street="new street", city="n")
    got.save()
    raw = raw_user(client, User, pk)
    assert raw["profile"]["M"]["ssn__hmac"] == {"S": User.profile.ssn.hmac("000-00-0000")}
    assert_no_plaintext(raw, "000-00-0000", "changed street", "new street")
    again = User.get(pk, consistent_read=True)
    assert again.profile.ssn == "000-00-0000" and again.profile.address.street == "new street"
    assert [h.street for h in again.history] == [f"{STREET} (old)", "changed street"]
    assert not [u for u in User.scan(User.profile.ssn == SSN, consistent_read=True) if u.pk == pk]


# -- round trips of random nested shapes -----------------------------------------------------------------

_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.text(max_size=6),
    st.floats(allow_nan=False, allow_infinity=False),
)
_secret_text = st.text(max_size=10).map(lambda s: "SECRET-" + s)
_leaf_spec = st.fixed_dictionaries(
    {},
    optional={
        "s": _secret_text,
        "b": st.binary(max_size=12).map(lambda b: b"SECRETB-" + b),
        "i": st.integers(),
        "f": st.floats(allow_nan=False),
        "d": st.decimals(allow_nan=False, allow_infinity=False),
        "flag": st.booleans(),
        "dt": st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(9999, 12, 30),
            timezones=st.sampled_from(
                [timezone.utc, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=45))]
            ),
        ),
        "day": st.dates(),
        "obj": st.dictionaries(st.text(max_size=4), _json_scalar, max_size=3),
        "arr": st.lists(_json_scalar, max_size=3),
        "tags": st.sets(st.text(max_size=5), max_size=3),
        "utc": st.datetimes(
            min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)
        ),
        "num": st.integers(-(10**12), 10**12),
        "plain_s": st.text(min_size=1, max_size=8).filter(lambda s: "SECRET" not in s),
        "plain_n": st.integers(-1000, 1000),
    },
)
_middle_spec = st.fixed_dictionaries(
    {},
    optional={
        "leaf": _leaf_spec,
        "leaves": st.lists(_leaf_spec, max_size=3),
        "secret": _secret_text,
        "label": st.text(min_size=1, max_size=8).filter(lambda s: "SECRET" not in s),
    },
)
_doc_spec = st.fixed_dictionaries(
    {}, optional={"top": _middle_spec, "tops": st.lists(_middle_spec, max_size=2)}
)


def _build_leaf(spec: dict[str, Any], as_dict: bool) -> Any:
    return dict(spec) if as_dict else Leaf(**spec)


def _build_middle(spec: dict[str, Any], as_dict: bool) -> Any:
    kwargs = dict(spec)
    if "leaf" in kwargs:
        kwargs["leaf"] = _build_leaf(kwargs["leaf"], as_dict)
    if "leaves" in kwargs:
        kwargs["leaves"] = [_build_leaf(leaf, as_dict) for leaf in kwargs["leaves"]]
    return kwargs if as_dict else Middle(**kwargs)


def _leaf_as_spec(leaf: Any) -> dict[str, Any]:
    assert isinstance(leaf, Leaf)
    return {
        name: getattr(leaf, name)
        for name in (*LEAF_ENCRYPTED, *LEAF_PLAIN)
        if getattr(leaf, name) is not None
    }


def _middle_as_spec(middle: Any) -> dict[str, Any]:
    assert isinstance(middle, Middle)
    out: dict[str, Any] = {}
    if middle.leaf is not None:
        out["leaf"] = _leaf_as_spec(middle.leaf)
    if middle.leaves is not None:
        out["leaves"] = [_leaf_as_spec(leaf) for leaf in middle.leaves]
    for name in ("secret", "label"):
        if getattr(middle, name) is not None:
            out[name] = getattr(middle, name)
    return out


def _check_stored_leaf(stored: dict[str, Any], spec: dict[str, Any]) -> None:
    for name in LEAF_ENCRYPTED:
        if name in spec:
            assert_sealed(stored, name, equality=name == "s")
        else:
            assert_absent(stored, name)
    for name in LEAF_PLAIN:
        if name in spec:
            expected = {"S": spec[name]} if name == "plain_s" else {"N": str(spec[name])}
            assert stored[name] == expected
        else:
            assert name not in stored


def _check_stored_middle(stored: dict[str, Any], spec: dict[str, Any]) -> None:
    if "leaf" in spec:
        _check_stored_leaf(stored["leaf"]["M"], spec["leaf"])
    else:
        assert "leaf" not in stored
    if "leaves" in spec:
        assert len(stored["leaves"]["L"]) == len(spec["leaves"])
        for element, leaf in zip(stored["leaves"]["L"], spec["leaves"]):
            _check_stored_leaf(element["M"], leaf)
    else:
        assert "leaves" not in stored
    if "secret" in spec:
        assert_sealed(stored, "secret")
    else:
        assert_absent(stored, "secret")
    assert stored.get("label") == ({"S": spec["label"]} if "label" in spec else None)


def _same(actual: Any, expected: Any) -> bool:
    """Equal, and of the same type and (for datetimes) offset, recursively."""
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(_same(actual[k], expected[k]) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_same(a, e) for a, e in zip(actual, expected))
        )
    if isinstance(expected, datetime):
        return actual == expected and actual.utcoffset() == expected.utcoffset()
    if isinstance(expected, float) and expected == 0.0:
        return type(actual) is float and str(actual) == str(expected)
    return type(actual) is type(expected) and actual == expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=_doc_spec, as_dict=st.booleans())
def test_random_nested_shapes_round_trip(Doc: Any, client: Any, spec: dict[str, Any], as_dict: bool) -> None:
    pk = unique("shape")
    kwargs: dict[str, Any] = {}
    if "top" in spec:
        kwargs["top"] = _build_middle(spec["top"], as_dict)
    if "tops" in spec:
        kwargs["tops"] = [_build_middle(middle, as_dict) for middle in spec["tops"]]
    Doc(pk=pk, **kwargs).save()

    raw = client.get_item(TableName=Doc.Meta.table_name, Key={"pk": {"S": pk}}, ConsistentRead=True)["Item"]
    assert_no_plaintext(raw, "SECRET", b"SECRETB")
    if "top" in spec:
        _check_stored_middle(raw["top"]["M"], spec["top"])
        leaf_s = spec["top"].get("leaf", {}).get("s")
        if leaf_s is not None:
            assert raw["top"]["M"]["leaf"]["M"]["s__hmac"] == {"S": Doc.top.leaf.s.hmac(leaf_s)}
    else:
        assert "top" not in raw
    if "tops" in spec:
        assert len(raw["tops"]["L"]) == len(spec["tops"])
        for element, middle in zip(raw["tops"]["L"], spec["tops"]):
            _check_stored_middle(element["M"], middle)
    else:
        assert "tops" not in raw

    got = Doc.get(pk, consistent_read=True)
    assert _same(_middle_as_spec(got.top), spec["top"]) if "top" in spec else got.top is None
    if "tops" in spec:
        assert _same([_middle_as_spec(m) for m in got.tops], spec["tops"])
    else:
        assert got.tops is None


# -- conditions and filters -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def events(Event: Any) -> str:
    """Four events in one group: ssn/street values chosen per test below; seq 3 has no profile."""
    group = unique("grp")
    Event(
        group=group,
        seq=0,
        profile=Profile(ssn="A", address=Address(street="S0", city="X"), note="n"),
        history=[Address(street="H0", city="X")],
    ).save()
    Event(
        group=group,
        seq=1,
        profile=Profile(ssn="B", address=Address(street="S1", city="Y")),
        history=[Address(street="H1", city="Y"), Address(street="H0", city="Y")],
    ).save()
    Event(group=group, seq=2, profile=Profile(ssn="A")).save()
    Event(group=group, seq=3).save()
    return group


def _seqs(Event: Any, group: str, condition: Any) -> list[int]:
    return sorted(int(e.seq) for e in Event.query(group, filter_condition=condition, consistent_read=True))


FILTERS: list[tuple[str, Callable[[Any], Any], list[int]]] = [
    ("eq", lambda E: E.profile.ssn == "A", [0, 2]),
    ("eq_deep", lambda E: E.profile.address.street == "S1", [1]),
    ("eq_none_match", lambda E: E.profile.ssn == "nobody", []),
    ("ne", lambda E: E.profile.ssn != "A", [1, 3]),
    ("ne_deep", lambda E: E.profile.address.street != "S1", [0, 2, 3]),
    ("is_in", lambda E: E.profile.ssn.is_in("B", "nobody"), [1]),
    ("is_in_deep", lambda E: E.profile.address.street.is_in("S0", "S1"), [0, 1]),
    ("exists", lambda E: E.profile.ssn.exists(), [0, 1, 2]),
    ("exists_deep", lambda E: E.profile.address.street.exists(), [0, 1]),
    ("exists_no_equality", lambda E: E.profile.note.exists(), [0]),
    ("does_not_exist", lambda E: E.profile.note.does_not_exist(), [1, 2, 3]),
    ("does_not_exist_deep", lambda E: E.profile.address.street.does_not_exist(), [2, 3]),
    ("plain_field_in_encrypted_map", lambda E: E.profile.address.city == "Y", [1]),
    ("combined", lambda E: (E.profile.ssn == "A") & E.profile.address.exists(), [0]),
    ("negated", lambda E: ~(E.profile.ssn == "A"), [1, 3]),
]


@pytest.mark.parametrize("build,expected", [(b, e) for _, b, e in FILTERS], ids=[n for n, _, _ in FILTERS])
def test_filters_on_nested_fields(
    Event: Any, events: str, build: Callable[[Any], Any], expected: list[int]
) -> None:
    assert _seqs(Event, events, build(Event)) == expected


def test_scan_filter_on_nested_field(Event: Any, events: str) -> None:
    found = [
        (e.group, int(e.seq)) for e in Event.scan(Event.profile.address.street == "S0", consistent_read=True)
    ]
    assert found == [(events, 0)]
    assert Event.count(events, filter_condition=Event.profile.ssn.is_in("A", "B")) == 3


def test_nested_condition_values_are_hashed_on_the_wire(Event: Any) -> None:
    condition = Event.profile.address.street == "S0"
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    expression = condition.serialize(names, values)
    assert sorted(names) == ["address", "profile", "street__hmac"]
    assert list(values.values()) == [{"S": Event.profile.address.street.hmac("S0")}]
    assert "S0" not in repr(values) and "S0" not in expression


def test_filter_on_a_field_of_a_list_element_works_or_is_refused_when_built(Event: Any, events: str) -> None:
    """``history[1].street == v``: either DynamoDB filters on ``history[1].street__hmac``, or it is refused
    with UnsupportedQueryError when the expression is built (never another error, never a wrong answer)."""
    try:
        condition = Event.history[1].street == "H0"
    except UnsupportedQueryError:
        return
    assert _seqs(Event, events, condition) == [1]


def test_conditions_on_nested_fields_guard_writes(User: Any, client: Any) -> None:
    pk = unique("cond")
    user = full_user(User, pk)
    user.save()
    with pytest.raises(PutError):
        user.save(condition=User.profile.ssn == "someone else")
    with pytest.raises(UpdateError):
        user.update(actions=[User.profile.age.set(1)], condition=User.profile.address.street != STREET)
    user.update(actions=[User.profile.age.set(2)], condition=User.profile.address.street == STREET)
    assert User.get(pk, consistent_read=True).profile.age == 2
    with pytest.raises(DeleteError):
        user.delete(condition=User.profile.note.does_not_exist())
    user.delete(condition=User.profile.ssn.is_in(SSN) & User.profile.note.exists())
    assert client.get_item(TableName=User.Meta.table_name, Key={"pk": {"S": pk}}).get("Item") is None


UNSUPPORTED: list[tuple[str, Callable[[Any], Any]]] = [
    ("lt", lambda U: U.profile.ssn < "x"),
    ("le", lambda U: U.profile.address.street <= "x"),
    ("gt", lambda U: U.profile.ssn > "x"),
    ("ge", lambda U: U.work.street >= "x"),
    ("between", lambda U: U.profile.ssn.between("a", "z")),
    ("startswith", lambda U: U.profile.address.street.startswith("1 ")),
    ("contains", lambda U: U.profile.ssn.contains("123")),
    ("is_type", lambda U: U.profile.ssn.is_type()),
    ("size", lambda U: size(U.profile.address.street)),
    ("index", lambda U: U.profile.ssn[0]),
    ("if_not_exists", lambda U: U.profile.ssn | "x"),
    ("plus", lambda U: U.profile.note + "x"),
    ("add", lambda U: U.profile.ssn.add("x")),
    ("delete", lambda U: U.profile.ssn.delete("x")),
    ("append", lambda U: U.profile.note.append(["x"])),
    ("prepend", lambda U: U.profile.note.prepend(["x"])),
    ("eq_without_equality", lambda U: U.profile.note == "x"),
    ("ne_without_equality", lambda U: U.profile.note != "x"),
    ("is_in_without_equality", lambda U: U.profile.note.is_in("x")),
    ("hmac_without_equality", lambda U: U.profile.note.hmac("x")),
    ("set_from_attribute", lambda U: U.profile.ssn.set(U.profile.note)),
    ("set_from_path", lambda U: U.profile.ssn.set(Path("pk"))),
    ("path_eq", lambda U: Path(U.profile.ssn) == "x"),
    ("path_set", lambda U: Path(U.profile.address.street).set("x")),
    ("nested_hmac_lt", lambda U: U.profile.ssn__hmac < "x"),
    ("nested_hmac_set", lambda U: U.profile.address.street__hmac.set("x")),
    ("whole_map_eq", lambda U: U.profile == Profile(ssn="x")),
    ("whole_map_is_in", lambda U: U.work.is_in(Address(street="x", city="y"))),
    ("list_set", lambda U: U.history.set([Address(street="x", city="y")])),
    ("list_append", lambda U: U.history.append([Address(street="x", city="y")])),
    ("list_prepend", lambda U: U.history.prepend([Address(street="x", city="y")])),
]


@pytest.mark.parametrize("build", [b for _, b in UNSUPPORTED], ids=[n for n, _ in UNSUPPORTED])
def test_unsupported_operations_on_nested_encrypted_fields_raise_when_built(
    User: Any, build: Callable[[Any], Any]
) -> None:
    with pytest.raises(UnsupportedQueryError) as info:
        build(User)
    assert info.value.code == "unsupported_query"


# -- updates --------------------------------------------------------------------------------------------


def _by_ssn(User: Any, pk: str, value: str) -> bool:
    return any(u.pk == pk for u in User.scan(User.profile.ssn == value, consistent_read=True))


def _by_street(User: Any, pk: str, value: str) -> bool:
    return any(u.pk == pk for u in User.scan(User.profile.address.street == value, consistent_read=True))


def test_nested_field_set_keeps_the_hmac_in_sync(User: Any, client: Any) -> None:
    pk = unique("upd")
    user = full_user(User, pk)
    user.save()
    user.update(
        actions=[User.profile.ssn.set("555-55-5555"), User.profile.address.street.set("2 Elm Street")]
    )
    assert (user.profile.ssn, user.profile.address.street) == ("555-55-5555", "2 Elm Street")

    raw = raw_user(client, User, pk)
    assert_sealed(raw["profile"]["M"], "ssn", hmac=User.profile.ssn.hmac("555-55-5555"))
    assert_sealed(
        raw["profile"]["M"]["address"]["M"], "street", hmac=User.profile.address.street.hmac("2 Elm Street")
    )
    assert raw["profile"]["M"]["address"]["M"]["city"] == {"S": "Springfield"}
    assert_no_plaintext(raw, "555-55-5555", "2 Elm Street")
    got = User.get(pk, consistent_read=True)
    assert (got.profile.ssn, got.profile.address.street, got.profile.note) == (
        "555-55-5555",
        "2 Elm Street",
        NOTE,
    )
    assert _by_ssn(User, pk, "555-55-5555") and not _by_ssn(User, pk, SSN)
    assert _by_street(User, pk, "2 Elm Street") and not _by_street(User, pk, STREET)


def test_nested_field_without_equality_set(User: Any, client: Any) -> None:
    pk = unique("note")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    user.update(actions=[User.profile.note.set("new note text")])
    raw = raw_user(client, User, pk)
    assert_sealed(raw["profile"]["M"], "note")
    assert_no_plaintext(raw, "new note text")
    assert User.get(pk, consistent_read=True).profile.note == "new note text"


@pytest.mark.parametrize("how", ["remove", "set_none"])
def test_nested_field_remove_removes_source_and_hmac(User: Any, client: Any, how: str) -> None:
    pk = unique("rm")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    fields = (User.profile.ssn, User.profile.address.street, User.profile.note)
    user.update(actions=[f.remove() if how == "remove" else f.set(None) for f in fields])
    raw = raw_user(client, User, pk)
    assert set(raw["profile"]["M"]) == {"address", "age"}
    assert raw["profile"]["M"]["address"]["M"] == {"city": {"S": "Springfield"}}
    got = User.get(pk, consistent_read=True)
    assert got.profile.ssn is None and got.profile.address.street is None and got.profile.note is None
    assert got.profile.age == 40 and [h.street for h in got.history] == [
        f"{STREET} (old)",
        f"{STREET} (older)",
    ]
    assert not _by_ssn(User, pk, SSN)


def test_whole_map_set_replaces_every_source_and_hmac(User: Any, client: Any) -> None:
    pk = unique("whole")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    user.update(
        actions=[User.profile.set(Profile(ssn="777-77-7777", address=Address(street="9 Oak Road", city="Z")))]
    )
    assert user.profile.ssn == "777-77-7777" and user.profile.note is None and user.profile.age is None

    raw = raw_user(client, User, pk)
    profile = raw["profile"]["M"]
    assert set(profile) == {"ssn__source", "ssn__hmac", "address"}
    assert_sealed(profile, "ssn", hmac=User.profile.ssn.hmac("777-77-7777"))
    assert_sealed(profile["address"]["M"], "street", hmac=User.profile.address.street.hmac("9 Oak Road"))
    assert_no_plaintext(raw, "777-77-7777", "9 Oak Road")
    got = User.get(pk, consistent_read=True)
    assert (got.profile.ssn, got.profile.address.street, got.profile.address.city) == (
        "777-77-7777",
        "9 Oak Road",
        "Z",
    )
    assert (
        _by_street(User, pk, "9 Oak Road") and not _by_street(User, pk, STREET) and not _by_ssn(User, pk, SSN)
    )


def test_inner_map_set_replaces_it_in_place(User: Any, client: Any) -> None:
    pk = unique("inner")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    user.update(
        actions=[User.profile.address.set(Address(street="3 Pine Lane", city="P")), User.work.set(None)]
    )
    raw = raw_user(client, User, pk)
    assert "work" not in raw
    assert_sealed(
        raw["profile"]["M"]["address"]["M"], "street", hmac=User.profile.address.street.hmac("3 Pine Lane")
    )
    assert_sealed(raw["profile"]["M"], "ssn", hmac=User.profile.ssn.hmac(SSN))
    got = User.get(pk, consistent_read=True)
    assert (got.profile.ssn, got.profile.address.street, got.work) == (SSN, "3 Pine Lane", None)
    assert _by_street(User, pk, "3 Pine Lane")


@pytest.mark.parametrize("how", ["remove", "set_none"])
def test_whole_map_remove(User: Any, client: Any, how: str) -> None:
    pk = unique("rmmap")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    user.update(
        actions=[User.profile.remove() if how == "remove" else User.profile.set(None), User.history.remove()]
    )
    raw = raw_user(client, User, pk)
    assert set(raw) == {"pk", "work"}
    got = User.get(pk, consistent_read=True)
    assert got.profile is None and got.history is None and got.work.street == f"{STREET} (work)"


def test_plain_fields_of_an_encrypted_map_update_as_usual(User: Any, client: Any) -> None:
    pk = unique("plainupd")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    user.update(actions=[User.profile.age.add(1), User.profile.address.city.set("Elsewhere")])
    raw = raw_user(client, User, pk)
    assert raw["profile"]["M"]["age"] == {"N": "41"}
    assert raw["profile"]["M"]["address"]["M"]["city"] == {"S": "Elsewhere"}
    got = User.get(pk, consistent_read=True)
    assert (got.profile.age, got.profile.address.city, got.profile.address.street) == (
        41,
        "Elsewhere",
        STREET,
    )


RAW_NESTED_NAMES: list[tuple[str, Callable[[], Any]]] = [
    ("set_source", lambda: Path(["profile", "ssn__source"]).set("123-45-6789")),
    ("set_deep_source", lambda: Path(["profile", "address", "street__source"]).set(b"\x01forged")),
    ("set_hmac", lambda: Path("profile.ssn__hmac").set("forged-digest")),
    ("remove_hmac", lambda: Path(["profile", "address", "street__hmac"]).remove()),
    ("remove_source", lambda: Path(["profile", "note__source"]).remove()),
    ("list_element_source", lambda: Path(["history[0]", "street__source"]).set("plain")),
]


@pytest.mark.parametrize("build", [b for _, b in RAW_NESTED_NAMES], ids=[n for n, _ in RAW_NESTED_NAMES])
def test_update_on_a_raw_nested_stored_name_raises(User: Any, client: Any, build: Callable[[], Any]) -> None:
    """As for top-level ``x__source``/``x__hmac``: a raw path to a nested stored name would write plaintext
    or leave the item unreadable, so ``update()`` refuses it and writes nothing."""
    pk = unique("rawname")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    before = raw_user(client, User, pk)
    with pytest.raises(UnsupportedQueryError):
        user.update(actions=[User.profile.age.set(99), build()])
    assert raw_user(client, User, pk) == before
    assert User.get(pk, consistent_read=True).profile.ssn == SSN


@pytest.mark.parametrize(
    "build",
    [
        lambda U: U.history[0].street.set("new street"),
        lambda U: U.history[0].set(Address(street="new street", city="c")),
    ],
    ids=["field", "element"],
)
def test_update_of_a_list_element_is_refused_or_correct(
    User: Any, client: Any, build: Callable[[Any], Any]
) -> None:
    """Either refused with UnsupportedQueryError (nothing written), or the element is sealed for its position."""
    pk = unique("elem")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    before = raw_user(client, User, pk)
    try:
        user.update(actions=[build(User)])
    except UnsupportedQueryError:
        assert raw_user(client, User, pk) == before
        return
    got = User.get(pk, consistent_read=True)
    assert [h.street for h in got.history] == ["new street", f"{STREET} (older)"]
    assert_no_plaintext(raw_user(client, User, pk), "new street")


@pytest.mark.parametrize(
    "build",
    [
        lambda U: U.history[0].remove(),
        lambda U: Path("history[0]").remove(),
        lambda U: Path(["history[0]"]).remove(),
    ],
    ids=["attribute", "path-string", "path-list"],
)
def test_remove_of_a_list_element_is_refused_or_leaves_a_readable_item(
    User: Any, client: Any, build: Callable[[Any], Any]
) -> None:
    """DynamoDB shifts the later elements down, and their ciphertexts are bound to their positions: removing
    an element other than the last must be refused (nothing written) rather than make the item unreadable."""
    pk = unique("rmelem")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    before = raw_user(client, User, pk)
    try:
        user.update(actions=[build(User)])
    except UnsupportedQueryError:
        assert raw_user(client, User, pk) == before
        return
    assert [h.street for h in User.get(pk, consistent_read=True).history] == [f"{STREET} (older)"]


# -- tamper: moved, swapped and forged nested values ------------------------------------------------------


@pytest.fixture
def pair(User: Any, client: Any) -> tuple[str, str]:
    """Two fully populated users with distinct values; both read back untampered."""
    a, b = unique("ta"), unique("tb")
    full_user(User, a).save()
    full_user(User, b, ssn="987-65-4321", street="5 Side Street").save()
    assert User.get(a, consistent_read=True).profile.ssn == SSN
    assert User.get(b, consistent_read=True).profile.ssn == "987-65-4321"
    return a, b


def _tampered(User: Any, client: Any, pk: str, change: Callable[[dict[str, Any]], None]) -> None:
    item = copy.deepcopy(raw_user(client, User, pk))
    change(item)
    put_raw(client, User, item)


def _unreadable(User: Any, pk: str) -> None:
    with pytest.raises(DecryptionError):
        User.get(pk, consistent_read=True)
    with pytest.raises(DecryptionError):
        list(User.batch_get([pk]))


def _map(item: dict[str, Any], *path: Any) -> dict[str, Any]:
    node: Any = item
    for step in path:
        node = node["L"][step] if isinstance(step, int) else node[step]
        if "M" in node:
            node = node["M"]
    assert isinstance(node, dict)
    return node


@pytest.mark.parametrize("with_hmac", [True, False], ids=["source+hmac", "source-only"])
def test_nested_source_swapped_between_items(
    User: Any, client: Any, pair: tuple[str, str], with_hmac: bool
) -> None:
    a, b = pair
    other = _map(raw_user(client, User, b), "profile")

    def change(item: dict[str, Any]) -> None:
        _map(item, "profile")["ssn__source"] = other["ssn__source"]
        if with_hmac:
            _map(item, "profile")["ssn__hmac"] = other["ssn__hmac"]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_deep_source_swapped_between_items(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, b = pair
    other = _map(raw_user(client, User, b), "profile", "address")
    _tampered(
        User,
        client,
        a,
        lambda item: _map(item, "profile", "address").update(
            street__source=other["street__source"], street__hmac=other["street__hmac"]
        ),
    )
    _unreadable(User, a)


def test_whole_map_moved_to_another_item(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, b = pair
    other = raw_user(client, User, b)
    _tampered(User, client, a, lambda item: item.update(profile=other["profile"]))
    _unreadable(User, a)


def test_whole_item_copied_under_another_primary_key(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair
    item = raw_user(client, User, a)
    copied = unique("copy")
    put_raw(client, User, {**item, "pk": {"S": copied}})
    _unreadable(User, copied)


def test_nested_sources_swapped_between_two_fields(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair

    def change(item: dict[str, Any]) -> None:
        profile, address = _map(item, "profile"), _map(item, "profile", "address")
        profile["ssn__source"], address["street__source"] = address["street__source"], profile["ssn__source"]
        profile["ssn__hmac"], address["street__hmac"] = address["street__hmac"], profile["ssn__hmac"]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_same_map_class_swapped_between_two_attributes(User: Any, client: Any, pair: tuple[str, str]) -> None:
    """``profile.address`` and ``work`` are both ``Address`` maps, at different paths."""
    a, _ = pair

    def change(item: dict[str, Any]) -> None:
        item["profile"]["M"]["address"], item["work"] = item["work"], item["profile"]["M"]["address"]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_list_elements_swapped(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair

    def change(item: dict[str, Any]) -> None:
        first, second = item["history"]["L"]
        item["history"]["L"] = [second, first]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_source_moved_into_another_list_element(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair

    def change(item: dict[str, Any]) -> None:
        first, second = _map(item, "history", 0), _map(item, "history", 1)
        second["street__source"], second["street__hmac"] = first["street__source"], first["street__hmac"]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_list_truncated_at_the_front(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair
    _tampered(User, client, a, lambda item: item["history"]["L"].pop(0))
    _unreadable(User, a)


def test_map_field_moved_into_a_list_element_and_back(User: Any, client: Any, pair: tuple[str, str]) -> None:
    """``profile.address.street`` and ``history[0].street``: same map class, same field name, other paths."""
    a, _ = pair

    def change(item: dict[str, Any]) -> None:
        address, element = _map(item, "profile", "address"), _map(item, "history", 0)
        for name in ("street__source", "street__hmac"):
            address[name], element[name] = element[name], address[name]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_whole_map_moved_into_a_list_element(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair
    _tampered(
        User, client, a, lambda item: item["history"]["L"].__setitem__(0, item["profile"]["M"]["address"])
    )
    _unreadable(User, a)


def test_nested_hmac_swapped_between_items(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, b = pair
    other = _map(raw_user(client, User, b), "profile")
    _tampered(User, client, a, lambda item: _map(item, "profile").update(ssn__hmac=other["ssn__hmac"]))
    _unreadable(User, a)


def test_nested_hmac_replaced_by_one_for_another_value(User: Any, client: Any, pair: tuple[str, str]) -> None:
    """An item must not be made to answer ``street == "5 Side Street"`` while holding another street."""
    a, _ = pair
    forged = User.profile.address.street.hmac("5 Side Street")
    _tampered(
        User, client, a, lambda item: _map(item, "profile", "address").update(street__hmac={"S": forged})
    )
    _unreadable(User, a)


def test_list_element_hmac_replaced(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair
    _tampered(
        User,
        client,
        a,
        lambda item: _map(item, "history", 1).update(street__hmac=_map(item, "history", 0)["street__hmac"]),
    )
    _unreadable(User, a)


def test_item_moved_to_another_table_with_the_same_declaration(
    User: Any, client: Any, ddb_url: str, keyring: Keyring, pair: tuple[str, str]
) -> None:
    a, _ = pair
    Other = define_user(ddb_url, unique("nested_other"), keyring)
    Other.create_table(wait=True)
    try:
        put_raw(client, Other, raw_user(client, User, a))
        with pytest.raises(DecryptionError):
            Other.get(a, consistent_read=True)
    finally:
        Other.delete_table()


# -- wrong stored types ---------------------------------------------------------------------------------

WRONG_TYPES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("map_as_string", lambda it: it.update(profile={"S": "123-45-6789"})),
    ("map_as_list", lambda it: it.update(profile={"L": [{"S": "x"}]})),
    ("map_as_binary", lambda it: it.update(profile={"B": b"\x01\x02"})),
    ("map_as_bool", lambda it: it.update(profile={"BOOL": True})),
    ("map_as_string_set", lambda it: it.update(work={"SS": ["a"]})),
    ("inner_map_as_number", lambda it: _map(it, "profile").update(address={"N": "1"})),
    ("inner_map_as_list", lambda it: _map(it, "profile").update(address={"L": []})),
    ("list_as_map", lambda it: it.update(history={"M": {}})),
    ("list_as_string", lambda it: it.update(history={"S": "x"})),
    ("list_element_as_string", lambda it: it["history"]["L"].__setitem__(0, {"S": "x"})),
    ("list_element_as_list", lambda it: it["history"]["L"].__setitem__(1, {"L": []})),
    ("list_element_null", lambda it: it["history"]["L"].__setitem__(0, {"NULL": True})),
    ("source_as_string", lambda it: _map(it, "profile").update(ssn__source={"S": "123-45-6789"})),
    ("source_as_number", lambda it: _map(it, "profile").update(ssn__source={"N": "123"})),
    ("source_as_map", lambda it: _map(it, "profile").update(note__source={"M": {}})),
    ("source_as_binary_set", lambda it: _map(it, "profile", "address").update(street__source={"BS": [b"x"]})),
    ("source_as_empty_binary", lambda it: _map(it, "profile").update(ssn__source={"B": b""})),
    ("source_as_short_binary", lambda it: _map(it, "profile").update(note__source={"B": b"\x01"})),
    ("source_as_bool", lambda it: _map(it, "history", 0).update(street__source={"BOOL": False})),
    ("hmac_as_number", lambda it: _map(it, "profile").update(ssn__hmac={"N": "1"})),
    ("hmac_as_binary", lambda it: _map(it, "history", 1).update(street__hmac={"B": b"x"})),
    ("hmac_missing", lambda it: _map(it, "profile", "address").pop("street__hmac")),
]


@pytest.mark.parametrize("change", [c for _, c in WRONG_TYPES], ids=[n for n, _ in WRONG_TYPES])
def test_a_stored_nested_value_of_the_wrong_type_raises_decryption_error(
    User: Any, client: Any, change: Callable[[dict[str, Any]], None]
) -> None:
    pk = unique("wrong")
    full_user(User, pk).save()
    _tampered(User, client, pk, change)
    _unreadable(User, pk)
    with pytest.raises(DecryptionError):
        [u for u in User.scan(User.pk == pk, consistent_read=True)]


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
