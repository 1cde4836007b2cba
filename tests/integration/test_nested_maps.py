"""Nested encryption (``EncryptedMapAttribute``) on DynamoDB Local.

Maps declared as ``EncryptedMapAttribute`` subclasses encrypt their ``EncryptedAttribute`` fields one by
one, at any depth and inside ``ListAttribute(of=...)``, and leave their plain fields exactly as PynamoDB
stores them. Every test that writes reads the raw item back with boto3 (past the library) to check the
stored shape (``profile -> address -> street__source``) and that no plaintext reaches DynamoDB.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nestedtest import (
    LEAF_ENCRYPTED,
    LEAF_PLAIN,
    NOTE,
    SSN,
    STREET,
    Address,
    Leaf,
    Middle,
    PlainAddress,
    PlainFields,
    PlainTwin,
    Profile,
    define_doc,
    define_user,
    full_user,
    model_fixture,
    raw_user,
)
from pynamodb.attributes import MapAttribute, UnicodeAttribute
from pynamodb.exceptions import AttributeNullError
from pynamodb.models import Model
from stashtest import REGION, assert_no_plaintext, assert_sealed, unique

# -- fixtures: a table per model for the module (``keyring``, ``client``, ``connection`` from conftest.py)

User = model_fixture(define_user, "nested_users")
Doc = model_fixture(define_doc, "nested_docs")


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

