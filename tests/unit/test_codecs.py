"""Typed plaintext codecs (``pynamodb_stash._codecs``): every supported type comes back as itself."""

from __future__ import annotations

import ipaddress
import json
import math
import struct
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)

from pynamodb_stash._codecs import ValueRejected, WrongType, codec_for, safe_reason

BUILTIN_TYPES = [str, bytes, int, float, Decimal, bool, datetime, date, dict, list, set]
SAMPLES: dict[type, Any] = {
    str: "alice@example.com",
    bytes: b"\x00secret\xff",
    int: 42,
    float: 1.5,
    Decimal: Decimal("12.50"),
    bool: True,
    datetime: datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc),
    date: date(2024, 5, 6),
    dict: {"a": [1, "b"]},
    list: [1, "b", None],
    set: {"a", "b"},
}
ZONES = sorted(available_timezones())


def round_trip(type_: Any, value: Any) -> Any:
    codec = codec_for(type_)
    return codec.decode(codec.encode(value))


def assert_same_json(out: Any, expected: Any) -> None:
    """Equal and of the same type all the way down (``1 == True == 1.0`` in plain Python)."""
    assert type(out) is type(expected), (out, expected)
    if isinstance(expected, dict):
        assert list(out) == list(expected)
        for key in expected:
            assert_same_json(out[key], expected[key])
    elif isinstance(expected, list):
        assert len(out) == len(expected)
        for a, b in zip(out, expected):
            assert_same_json(a, b)
    elif isinstance(expected, float):
        assert out == expected
        assert math.copysign(1.0, out) == math.copysign(1.0, expected)
    else:
        assert out == expected


def assert_same_datetime(out: Any, expected: datetime) -> None:
    assert type(out) is datetime
    assert out == expected  # the same instant
    assert out.utcoffset() == expected.utcoffset()
    assert out.replace(tzinfo=None, fold=0) == expected.replace(tzinfo=None, fold=0)  # the same wall time
    if isinstance(expected.tzinfo, ZoneInfo):
        assert isinstance(out.tzinfo, ZoneInfo)
        assert out.tzinfo.key == expected.tzinfo.key
        ambiguous = expected.replace(fold=1 - expected.fold).utcoffset() != expected.utcoffset()
        if ambiguous:
            assert out.fold == expected.fold
    elif expected.tzinfo is timezone.utc:
        assert out.tzinfo is timezone.utc


# -- round trips ---------------------------------------------------------------------------------------


@settings(max_examples=200)
@given(value=st.text())
def test_str_round_trip(value: str) -> None:
    out = round_trip(str, value)
    assert type(out) is str
    assert out == value


@pytest.mark.parametrize(
    "value",
    ["", " ", "\x00", "héllo wörld", "日本語", "🔐🗝️", "\U0010ffff", "a\u0301", "\r\n\t", "x" * 100_000],
)
def test_str_round_trip_examples(value: str) -> None:
    out = round_trip(str, value)
    assert type(out) is str
    assert out == value


@settings(max_examples=100)
@given(value=st.binary(max_size=1024))
def test_bytes_round_trip(value: bytes) -> None:
    out = round_trip(bytes, value)
    assert type(out) is bytes
    assert out == value


def test_empty_bytes_round_trip() -> None:
    out = round_trip(bytes, b"")
    assert type(out) is bytes
    assert out == b""


@settings(max_examples=200)
@given(value=st.integers() | st.integers(min_value=-(10**200), max_value=10**200))
def test_int_round_trip(value: int) -> None:
    out = round_trip(int, value)
    assert type(out) is int
    assert out == value


@pytest.mark.parametrize(
    "value",
    [0, -1, 1, 2**63, -(2**63) - 1, 2**64 + 1, 10**38, -(10**38), 2**1000, -(3**2000), 10**4000],
)
def test_int_round_trip_examples(value: int) -> None:
    out = round_trip(int, value)
    assert type(out) is int
    assert out == value


def test_int_beyond_the_str_conversion_limit_round_trips() -> None:
    """A Python int of any size is an int; CPython's 4300-digit str() limit must not make it unstorable."""
    value = 10**5000 + 7
    out = round_trip(int, value)
    assert type(out) is int
    assert out == value


@settings(max_examples=200)
@given(value=st.floats(allow_nan=False))
def test_float_round_trip(value: float) -> None:
    out = round_trip(float, value)
    assert type(out) is float
    assert out == value
    assert math.copysign(1.0, out) == math.copysign(1.0, value)


@pytest.mark.parametrize(
    "value", [0.0, -0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, 0.1, -1e-300]
)
def test_float_round_trip_examples(value: float) -> None:
    out = round_trip(float, value)
    assert type(out) is float
    assert out == value
    assert math.copysign(1.0, out) == math.copysign(1.0, value)


def test_float_nan_round_trip() -> None:
    out = round_trip(float, math.nan)
    assert type(out) is float
    assert math.isnan(out)


@settings(max_examples=200)
@given(value=st.decimals(allow_nan=True, allow_infinity=True))
def test_decimal_round_trip(value: Decimal) -> None:
    out = round_trip(Decimal, value)
    assert type(out) is Decimal
    assert str(out) == str(value)
    assert out.as_tuple() == value.as_tuple()


@pytest.mark.parametrize(
    "text",
    ["0", "-0", "0.000", "-0E+5", "NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "1E+400", "1.10",
     "-123.4560", "1E-1000000", "12345678901234567890123456789012345678901234567890"],
)
def test_decimal_round_trip_examples(text: str) -> None:
    value = Decimal(text)
    out = round_trip(Decimal, value)
    assert type(out) is Decimal
    assert str(out) == str(value)
    assert out.as_tuple() == value.as_tuple()


@pytest.mark.parametrize("value", [True, False])
def test_bool_round_trip(value: bool) -> None:
    out = round_trip(bool, value)
    assert type(out) is bool
    assert out is value


fixed_offsets = st.builds(
    lambda seconds: timezone(timedelta(seconds=seconds)),
    st.integers(min_value=-(24 * 3600 - 1), max_value=24 * 3600 - 1),
)
zone_strategy = st.sampled_from(ZONES).map(ZoneInfo)


@settings(max_examples=200)
@given(
    value=st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.just(timezone.utc) | fixed_offsets | zone_strategy,
        allow_imaginary=False,
    )
)
def test_datetime_round_trip(value: datetime) -> None:
    assert_same_datetime(round_trip(datetime, value), value)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 1, 1, tzinfo=timezone.utc),
        datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 1, 1, tzinfo=timezone(-timedelta(hours=23, minutes=59))),
        datetime(2024, 7, 1, 12, tzinfo=ZoneInfo("Europe/Paris")),
        datetime(2024, 1, 1, 12, tzinfo=ZoneInfo("Europe/Paris")),
        datetime(2024, 7, 1, 12, tzinfo=ZoneInfo("Australia/Lord_Howe")),
        datetime(2024, 7, 1, 12, tzinfo=ZoneInfo("UTC")),
        datetime(1900, 1, 1, tzinfo=ZoneInfo("Europe/Amsterdam")),  # an LMT offset in seconds
        datetime(2024, 1, 1, 0, 0, 0, 999999, tzinfo=ZoneInfo("Asia/Kathmandu")),
    ],
    ids=str,
)
def test_datetime_round_trip_examples(value: datetime) -> None:
    assert_same_datetime(round_trip(datetime, value), value)


@pytest.mark.parametrize("fold", [0, 1])
def test_datetime_fold_round_trip(fold: int) -> None:
    """01:30 on 2021-11-07 happens twice in New York; fold picks which one."""
    value = datetime(2021, 11, 7, 1, 30, fold=fold, tzinfo=ZoneInfo("America/New_York"))
    out = round_trip(datetime, value)
    assert_same_datetime(out, value)
    assert out.fold == fold
    assert out.utcoffset() == (timedelta(hours=-4) if fold == 0 else timedelta(hours=-5))


@pytest.mark.parametrize(
    "value",
    [
        datetime(1, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo")),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=ZoneInfo("America/New_York")),
        datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=12))),
    ],
    ids=str,
)
def test_datetime_at_the_ends_of_the_range_round_trips(value: datetime) -> None:
    assert_same_datetime(round_trip(datetime, value), value)


@settings(max_examples=100)
@given(value=st.dates())
def test_date_round_trip(value: date) -> None:
    out = round_trip(date, value)
    assert type(out) is date
    assert out == value


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_trees = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=200)
@given(value=st.dictionaries(st.text(max_size=10), json_trees, max_size=6))
def test_dict_round_trip(value: dict[str, Any]) -> None:
    assert_same_json(round_trip(dict, value), value)


@settings(max_examples=200)
@given(value=st.lists(json_trees, max_size=6))
def test_list_round_trip(value: list[Any]) -> None:
    assert_same_json(round_trip(list, value), value)


@pytest.mark.parametrize(
    "value",
    [{}, {"": ""}, {"a": {"b": {"c": [1, 2.0, True, None, "x"]}}}, {"ü": "日本", "n": -0.0, "i": math.inf}],
    ids=repr,
)
def test_dict_round_trip_examples(value: dict[str, Any]) -> None:
    assert_same_json(round_trip(dict, value), value)


@pytest.mark.parametrize("value", [[], [[]], [1, 1.0, True, "1", None], [{"a": []}]], ids=repr)
def test_list_round_trip_examples(value: list[Any]) -> None:
    assert_same_json(round_trip(list, value), value)


@settings(max_examples=100)
@given(value=st.sets(st.text(max_size=20), max_size=10))
def test_set_round_trip(value: set[str]) -> None:
    out = round_trip(set, value)
    assert type(out) is set
    assert out == value


def test_empty_set_and_frozenset_round_trip() -> None:
    assert round_trip(set, set()) == set()
    assert type(round_trip(set, set())) is set
    out = round_trip(set, frozenset({"a", "b"}))
    assert out == {"a", "b"}


@settings(max_examples=50)
@given(a=st.sets(st.text(max_size=5), max_size=6))
def test_equal_sets_encode_identically(a: set[str]) -> None:
    """Set order must not leak into the plaintext (and so into an equality HMAC)."""
    codec = codec_for(set)
    assert codec.encode(a) == codec.encode(set(reversed(sorted(a))))


def test_equal_values_of_different_types_encode_differently() -> None:
    encodings = [
        codec_for(str).encode("1"),
        codec_for(bytes).encode(b"1"),
        codec_for(int).encode(1),
        codec_for(float).encode(1.0),
        codec_for(Decimal).encode(Decimal(1)),
        codec_for(bool).encode(True),
        codec_for(list).encode([1]),
        codec_for(set).encode({"1"}),
    ]
    assert len(set(encodings)) == len(encodings)


# -- bad input -----------------------------------------------------------------------------------------

MARKER = "SECRET-PLAINTEXT-7b3f"


def _deep(levels: int) -> list[Any]:
    value: list[Any] = [MARKER]
    for _ in range(levels):
        value = [value]
    return value


class _Opaque:
    def __repr__(self) -> str:
        return MARKER

    __str__ = __repr__


BAD_VALUES = [
    (int, True, TypeError),
    (int, False, TypeError),
    (int, MARKER, TypeError),
    (int, 1.5, TypeError),
    (int, Decimal("7"), TypeError),
    (float, 10**400, ValueError),  # an int is taken (as PynamoDB's NumberAttribute takes it) if it fits
    (float, True, TypeError),
    (float, MARKER, TypeError),
    (float, Decimal("1.5"), TypeError),
    (str, MARKER.encode(), TypeError),
    (str, 12345, TypeError),
    (str, _Opaque(), TypeError),
    (bytes, MARKER, TypeError),
    (bytes, bytearray(MARKER.encode()), TypeError),
    (bool, 1, TypeError),
    (bool, MARKER, TypeError),
    (Decimal, 1.5, TypeError),
    (Decimal, MARKER, TypeError),
    (datetime, datetime(2024, 5, 6, 7, 8, 9), ValueError),
    (datetime, date(2024, 5, 6), TypeError),
    (datetime, MARKER, TypeError),
    (date, datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc), TypeError),
    (date, datetime(2024, 5, 6, 7, 8, 9), TypeError),
    (date, MARKER, TypeError),
    (dict, (MARKER,), TypeError),
    (dict, [MARKER], TypeError),
    (dict, {"k": (MARKER,)}, TypeError),
    (dict, {1: MARKER}, TypeError),
    (dict, {(MARKER,): 1}, TypeError),
    (dict, {"k": _Opaque()}, TypeError),
    (dict, {"k": {MARKER}}, TypeError),
    (dict, {"k": MARKER.encode()}, TypeError),
    (dict, {"k": datetime(2024, 1, 1, tzinfo=timezone.utc)}, TypeError),
    (dict, {"k": Decimal("1.5")}, TypeError),
    (list, (MARKER,), TypeError),
    (list, {MARKER: 1}, TypeError),
    (list, [(MARKER,)], TypeError),
    (list, [MARKER.encode()], TypeError),
    (list, [{1: MARKER}], TypeError),
    (list, [_Opaque()], TypeError),
    (list, _deep(200), ValueError),
    (set, {MARKER, 1}, TypeError),
    (set, [MARKER], TypeError),
    (set, {MARKER.encode()}, TypeError),
    (set, {(MARKER,)}, TypeError),
    (set, MARKER, TypeError),
]


@pytest.mark.parametrize(("type_", "value", "error"), BAD_VALUES, ids=lambda x: getattr(x, "__name__", None))
def test_bad_values_raise_without_naming_the_value(type_: Any, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as excinfo:
        codec_for(type_).encode(value)
    message = str(excinfo.value)
    assert MARKER not in message
    assert repr(value) not in message
    assert str(value) not in message
    for arg in excinfo.value.args:
        assert MARKER not in str(arg)


@pytest.mark.parametrize(("type_", "value", "error"), BAD_VALUES, ids=lambda x: getattr(x, "__name__", None))
def test_bad_values_raise_the_codecs_own_errors_with_their_text(
    type_: Any, value: Any, error: type[Exception]
) -> None:
    """Refused by this library, so safe_reason passes its (value-free) text on: it says what is wrong."""
    with pytest.raises(error) as excinfo:
        codec_for(type_).encode(value)
    assert type(excinfo.value) is (WrongType if error is TypeError else ValueRejected)
    assert safe_reason(excinfo.value) == str(excinfo.value)
    assert "does not fit" not in safe_reason(excinfo.value)
    assert excinfo.value.__cause__ is None


@pytest.mark.parametrize(
    ("type_", "value", "reason"),
    [
        (str, 5, "expected str, got int"),
        (int, True, "expected int, got bool"),
        (Decimal, 1.5, "expected Decimal, got float"),
        (datetime, datetime(2024, 5, 6), "datetime values must be timezone-aware"),
        (dict, {"k": Decimal("1")}, "Decimal is not a JSON type (str, int, float, bool, None, list, dict)"),
        (set, {1}, "set members must be str"),
        (list, _deep(200), "JSON value nested deeper than 64 levels"),
    ],
    ids=repr,
)
def test_codec_refusals_keep_their_informative_text(type_: Any, value: Any, reason: str) -> None:
    with pytest.raises((WrongType, ValueRejected)) as excinfo:
        codec_for(type_).encode(value)
    assert safe_reason(excinfo.value) == reason


@pytest.mark.parametrize(
    "value", [MARKER + "\ud800", "\udc80" + MARKER, "\udfff"], ids=["high", "low", "alone"]
)
def test_a_str_with_a_lone_surrogate_is_refused_without_the_unicode_error_text(value: str) -> None:
    """UnicodeEncodeError quotes the character and the position; the codec names only its type."""
    attempts: list[Any] = [
        lambda: codec_for(str).encode(value),
        lambda: codec_for(str).hmac_input(value),
        lambda: codec_for(list).encode([value]),
        lambda: codec_for(dict).hmac_input({"k": value}),
    ]
    for attempt in attempts:
        with pytest.raises(ValueRejected) as excinfo:
            attempt()
        assert type(excinfo.value) is ValueRejected
        message = safe_reason(excinfo.value)
        assert "UnicodeEncodeError" in message
        assert MARKER not in message and "\\ud" not in message.lower() and "position" not in message
        assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__


# -- safe_reason: the text of other code's errors never comes out --------------------------------------


class _UserValueRejected(ValueRejected):
    """A subclass made elsewhere: not written by the codecs, so not trusted."""


class _UserWrongType(WrongType):
    pass


FOREIGN_ERRORS = [ValueError, TypeError, KeyError, LookupError, RuntimeError, ArithmeticError, OverflowError,
                  UnicodeError, AttributeError, AssertionError, Exception, _UserValueRejected, _UserWrongType]


@settings(max_examples=300)
@given(kind=st.sampled_from(FOREIGN_ERRORS), secret=st.text(min_size=1), extra=st.lists(st.text(), max_size=2))
def test_safe_reason_never_passes_on_another_errors_text(
    kind: type[Exception], secret: str, extra: list[str]
) -> None:
    error = kind(f"invalid literal: {MARKER}{secret!r}", *extra)
    reason = safe_reason(error)
    assert reason == f"the value does not fit ({kind.__name__})"
    assert MARKER not in reason


def _foreign(call: Any) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("expected an error")


@pytest.mark.parametrize(
    "call",
    [
        lambda: int(MARKER),
        lambda: float(MARKER),
        lambda: ipaddress.ip_address(MARKER),
        lambda: datetime.strptime(MARKER, "%Y-%m-%d"),
        lambda: date.fromisoformat(MARKER),
        lambda: json.loads(MARKER),
        lambda: dict[str, int]()[MARKER],
        lambda: MARKER.encode("ascii", "strict") + "\udc80".encode(),
        lambda: (MARKER + "\xff").encode("ascii"),
        lambda: b"\xff".decode("utf-8") + MARKER,
        lambda: Decimal(MARKER),
        lambda: struct.pack(">d", MARKER),
        lambda: getattr(MARKER, MARKER),
    ],
    ids=["int", "float", "ipaddress", "strptime", "fromisoformat", "json", "KeyError", "surrogate",
         "ascii", "utf-8", "Decimal", "struct", "getattr"],
)
def test_safe_reason_hides_what_a_user_normalizer_quotes(call: Any) -> None:
    """A normalizer built on int(), ipaddress or strptime raises errors that quote the value."""
    error = _foreign(call)
    reason = safe_reason(error)
    assert reason == f"the value does not fit ({type(error).__name__})"
    assert MARKER not in reason


@settings(max_examples=100)
@given(secret=st.text(min_size=1, max_size=30))
def test_safe_reason_hides_int_parse_errors_of_any_text(secret: str) -> None:
    error = _foreign(lambda: int(MARKER + secret))
    assert type(error) is ValueError
    assert safe_reason(error) == "the value does not fit (ValueError)"


# -- decoding never quotes the plaintext ---------------------------------------------------------------


@settings(max_examples=200)
@given(
    type_=st.sampled_from(
        [*BUILTIN_TYPES, UnicodeAttribute(), NumberAttribute(), UTCDateTimeAttribute(), MapAttribute(), ListAttribute()]
    ),
    payload=st.binary(max_size=40) | st.text(max_size=40).map(lambda t: (MARKER + t).encode("utf-8", "replace")),
)
def test_decoding_garbage_raises_value_rejected_without_quoting_it(type_: Any, payload: bytes) -> None:
    codec = codec_for(type_)
    data = bytes((codec.tag,)) + payload
    try:
        out = codec.decode(data)
    except ValueRejected as exc:
        assert type(exc) is ValueRejected
        assert MARKER not in str(exc) and repr(payload) not in str(exc)
        assert exc.__cause__ is None
        assert safe_reason(exc) == str(exc)
    else:  # a payload that happens to be a valid encoding comes back as a value of the type
        if isinstance(type_, type):
            assert isinstance(out, type_)


@pytest.mark.parametrize(
    ("type_", "payload"),
    [
        (datetime, MARKER.encode()),
        (datetime, b"2024-01-01T00:00:00+00:00[../" + MARKER.encode() + b"]"),
        (date, MARKER.encode()),
        (dict, b'{"' + MARKER.encode() + b'":'),
        (str, MARKER.encode() + b"\xff"),
        (set, MARKER.encode()),
    ],
    ids=lambda x: getattr(x, "__name__", None),
)
def test_decoding_errors_name_the_type_not_the_bytes(type_: type, payload: bytes) -> None:
    codec = codec_for(type_)
    with pytest.raises(ValueRejected) as excinfo:
        codec.decode(bytes((codec.tag,)) + payload)
    assert type(excinfo.value) is ValueRejected
    assert MARKER not in str(excinfo.value)
    assert codec.name in str(excinfo.value)


# -- equality forms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nan",
    [math.nan, -math.nan, math.inf - math.inf, struct.unpack(">d", b"\x7f\xf0\x00\x00\x00\x00\x00\x01")[0]],
    ids=["nan", "-nan", "inf-inf", "signalling"],
)
def test_a_float_nan_has_no_equality_hmac(nan: float) -> None:
    """NaN equals nothing, itself included, and NaNs differ in their bits: an HMAC would match some."""
    codec = codec_for(float)
    assert math.isnan(codec.decode(codec.encode(nan)))  # still stored (encrypted) as it is
    with pytest.raises(ValueRejected) as excinfo:
        codec.hmac_input(nan)
    assert type(excinfo.value) is ValueRejected
    assert "NaN" in safe_reason(excinfo.value)
    with pytest.raises(ValueRejected):
        codec.hmac_input(nan, codec.encode(nan))


@settings(max_examples=300)
@given(a=st.floats(allow_nan=False), b=st.floats(allow_nan=False))
def test_floats_share_an_hmac_input_exactly_when_equal(a: float, b: float) -> None:
    codec = codec_for(float)
    assert (codec.hmac_input(a) == codec.hmac_input(b)) is (a == b)
    assert codec.hmac_input(-0.0) == codec.hmac_input(0.0)


@pytest.mark.parametrize("text", ["NaN", "sNaN", "-Infinity", "1E+126", "1E-131", "1" * 39])
def test_a_decimal_dynamodb_cannot_store_has_no_equality_hmac_but_is_still_stored(text: str) -> None:
    codec = codec_for(Decimal)
    value = Decimal(text)
    assert codec.decode(codec.encode(value)).as_tuple() == value.as_tuple()
    with pytest.raises(ValueRejected) as excinfo:
        codec.hmac_input(value)
    assert type(excinfo.value) is ValueRejected
    message = safe_reason(excinfo.value)
    assert message == str(excinfo.value)
    if value.is_finite():
        assert text not in message
    assert ("NaN" in message) is (not value.is_finite())


@pytest.mark.parametrize("type_", [tuple, frozenset, object, complex, bytearray, "str", None, UnicodeAttribute])
def test_unsupported_declared_types(type_: Any) -> None:
    with pytest.raises(TypeError) as excinfo:
        codec_for(type_)
    assert type(excinfo.value) is WrongType
    assert str(excinfo.value).startswith("unsupported type ")


def test_an_unsupported_declared_type_is_named_by_its_type_not_its_repr() -> None:
    with pytest.raises(WrongType) as excinfo:
        codec_for(_Opaque())
    assert MARKER not in str(excinfo.value)
    assert "_Opaque instance" in str(excinfo.value)
    with pytest.raises(WrongType) as excinfo:
        codec_for(UnicodeAttribute)
    assert "pass an instance" in str(excinfo.value)


# -- decoding ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", BUILTIN_TYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("writer", BUILTIN_TYPES, ids=lambda t: t.__name__)
def test_decoding_another_types_encoding_raises_value_error(writer: type, reader: type) -> None:
    if writer is reader:
        return
    data = codec_for(writer).encode(SAMPLES[writer])
    with pytest.raises(ValueError):
        codec_for(reader).decode(data)


@pytest.mark.parametrize("type_", BUILTIN_TYPES, ids=lambda t: t.__name__)
def test_decoding_nothing_raises_value_error(type_: type) -> None:
    with pytest.raises(ValueError):
        codec_for(type_).decode(b"")


@pytest.mark.parametrize("payload", [b"\xff\xfe", b"garbage", b"1.2.3", b"{", b"-"])
@pytest.mark.parametrize(
    "type_", [float, Decimal, bool, datetime, date, dict, list, set], ids=lambda t: t.__name__
)
def test_decoding_a_malformed_payload_raises_value_error(type_: type, payload: bytes) -> None:
    """The model turns ValueError into DecryptionError; any other exception would escape it."""
    codec = codec_for(type_)
    with pytest.raises(ValueError):
        codec.decode(bytes((codec.tag,)) + payload)


# -- PynamoDB attributes as codecs ---------------------------------------------------------------------


class Address(MapAttribute[str, Any]):
    street = UnicodeAttribute()
    number = NumberAttribute(null=True)
    photo = BinaryAttribute(null=True, legacy_encoding=False)
    tags = ListAttribute(null=True)  # type: ignore[var-annotated]
    flags = UnicodeSetAttribute(null=True)


@settings(max_examples=100)
@given(value=st.text())
def test_unicode_attribute_codec_round_trip(value: str) -> None:
    out = round_trip(UnicodeAttribute(), value)
    assert type(out) is str
    assert out == value


@settings(max_examples=100)
@given(
    value=st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v == 0 or 1e-130 <= abs(v) < 1e125)
)
def test_number_attribute_codec_round_trip(value: float) -> None:
    """A wrapped NumberAttribute gives back what PynamoDB reads from DynamoDB: the same number, an int
    when it is integral (DynamoDB stores 2.0 as 2)."""
    out = round_trip(NumberAttribute(), value)
    assert Decimal(repr(out)) == Decimal(repr(value))  # the number written (a float's shortest repr)
    assert type(out) is (int if value == int(value) else float)


@settings(max_examples=100)
@given(
    value=st.datetimes(
        min_value=datetime(1000, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.just(timezone.utc) | fixed_offsets,
    )
)
def test_utc_datetime_attribute_codec_round_trip(value: datetime) -> None:
    out = round_trip(UTCDateTimeAttribute(), value)
    assert type(out) is datetime
    assert out == value
    assert out.utcoffset() == timedelta(0)


@settings(max_examples=100)
@given(value=st.binary(max_size=256))
def test_binary_attribute_codec_round_trip(value: bytes) -> None:
    out = round_trip(BinaryAttribute(legacy_encoding=False), value)
    assert type(out) is bytes
    assert out == value


@pytest.mark.parametrize("value", [True, False])
def test_boolean_attribute_codec_round_trip(value: bool) -> None:
    assert round_trip(BooleanAttribute(), value) is value


@settings(max_examples=100)
@given(
    street=st.text(min_size=1),
    number=st.none() | st.integers(min_value=-(10**20), max_value=10**20),
    photo=st.none() | st.binary(min_size=1, max_size=64),
    tags=st.none() | st.lists(st.text(max_size=5) | st.integers(-100, 100), max_size=4),
    flags=st.none() | st.sets(st.text(min_size=1, max_size=5), min_size=1, max_size=4),
)
def test_map_attribute_codec_round_trip(
    street: str, number: int | None, photo: bytes | None, tags: list[Any] | None, flags: set[str] | None
) -> None:
    value = Address(street=street, number=number, photo=photo, tags=tags, flags=flags)
    out = round_trip(Address(), value)
    assert type(out) is Address
    expected = {k: v for k, v in value.as_dict().items() if v is not None}
    assert out.as_dict() == expected
    assert out.photo == photo
    assert type(out.photo) is type(photo)


def test_attribute_codec_does_not_share_a_tag_with_builtin_codecs() -> None:
    builtin_tags = {codec_for(t).tag for t in BUILTIN_TYPES}
    assert len(builtin_tags) == len(BUILTIN_TYPES)
    assert codec_for(UnicodeAttribute()).tag not in builtin_tags


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        (UTCDateTimeAttribute(), MARKER),
        (UTCDateTimeAttribute(), 1234567),
        (NumberAttribute(), _Opaque()),
        (BinaryAttribute(legacy_encoding=False), MARKER),
        (Address(), MARKER),
    ],
    ids=lambda x: type(x).__name__,
)
def test_attribute_codec_rejects_wrong_types_with_type_or_value_error(attribute: Any, value: Any) -> None:
    """``Codec.encode`` promises TypeError/ValueError, which the model turns into EncryptionError."""
    with pytest.raises((TypeError, ValueError)) as excinfo:
        codec_for(attribute).encode(value)
    assert MARKER not in str(excinfo.value)


def test_an_int_where_a_float_is_declared_reads_back_as_that_float() -> None:
    codec = codec_for(float)
    assert codec.decode(codec.encode(3)) == 3.0 and type(codec.decode(codec.encode(3))) is float
    assert codec.hmac_input(3) == codec.hmac_input(3.0)
