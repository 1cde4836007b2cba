"""The raw-item API without a server, checked with hypothesis: every declared type round-trips through
``encrypt_item``/``decrypt_item`` and ``from_stream_image`` in both item shapes (DynamoDB JSON and
document values), one attribute at a time and as whole items. The models are in
``tests/unit/rawitemtest.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynamodb.attributes import NumberAttribute, UTCDateTimeAttribute
from rawitemtest import Typed, doc_canon, item_canon
from stashtest import av_to_doc, exported, json_to_av

from pynamodb_stash import bulk_decrypt_items, decrypt_item, encrypt_item

pytestmark = pytest.mark.usefixtures("offline")


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
