"""Typed plaintext: how a Python value becomes the bytes that are encrypted and hashed.

Each encoding starts with a one-byte type tag, so a value comes back as the type it was written as, and
equal values of different types (``1`` and ``"1"``) never share an HMAC.
"""

from __future__ import annotations

import base64
import contextlib
import json
import struct
from datetime import date, datetime, timezone
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    Clamped,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Subnormal,
    Underflow,
)
from typing import Any, Callable, Generic, Mapping, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pynamodb.attributes import Attribute, MapAttribute
from pynamodb.constants import BINARY, BINARY_SET, LIST, MAP, NUMBER, NUMBER_SET, STRING_SET

_T = TypeVar("_T")


class WrongType(TypeError):
    """A value of the wrong type, refused by this library.

    Its message is written here and names types only, never the value, so it may be shown anywhere
    (error messages, handlers, logs). A TypeError, so that ``except TypeError`` still catches it.
    """


class ValueRejected(ValueError):
    """A value of the right type that cannot be encoded, hashed or stored, refused by this library.

    Its message is written here and never contains the value (nor its digits, characters or bytes).
    A ValueError, so that ``except ValueError`` still catches it.
    """


def safe_reason(error: BaseException) -> str:
    """What went wrong, for a message that may be shown anywhere.

    The text of a :class:`WrongType` or :class:`ValueRejected` (exactly those classes, not subclasses:
    this library writes their messages, which never contain a value). Any other error (a built-in
    TypeError or ValueError, a UnicodeError, a KeyError, a user normalizer's) may quote the value,
    so only its type is named: ``"the value does not fit (ValueError)"``. Never raises.
    """
    if type(error) in (WrongType, ValueRejected):
        return str(error)
    return f"the value does not fit ({type(error).__name__})"


_FLOAT = struct.Struct(">d")

# DynamoDB numbers: 0, or up to 38 significant digits with a magnitude from 1E-130 to
# 9.9999999999999999999999999999999999999E+125, positive or negative. No NaN, no Infinity.
NUMBER_DIGITS = 38
NUMBER_MIN_ADJUSTED = -130  # the exponent of the leading digit: 1E-130
NUMBER_MAX_ADJUSTED = 125  # 9.99...9E+125
_NUMBER_MAX_BITS = 420  # an int of more bits is >= 2**420 > 10**126: out of range, not worth converting
_NOT_A_NUMBER = "the text is not a number DynamoDB can store"
_NOT_FINITE = "NaN and Infinity are not DynamoDB numbers"
_TOO_PRECISE = f"a DynamoDB number has at most {NUMBER_DIGITS} significant digits"
_OUT_OF_RANGE = (
    "a DynamoDB number is 0 or has a magnitude from 1E-130 to 9.9999999999999999999999999999999999999E+125"
)
# normalize() under this context rounds to 38 digits, traps Inexact (a nonzero digit dropped) and every
# exponent condition, so it either returns the exact value without trailing zeros or raises. Within
# DynamoDB's range it never raises: 38 digits fit prec=38, and Emin/Emax are the widest there are.
_NUMBERS = Context(
    prec=NUMBER_DIGITS,
    Emin=MIN_EMIN,
    Emax=MAX_EMAX,
    capitals=1,
    clamp=0,
    traps=[InvalidOperation, DivisionByZero, Inexact, Overflow, Underflow, Subnormal, Clamped],
)


def canonical_number(value: Decimal | str | int) -> str:
    """The one text of a number that DynamoDB can store: equal numbers give equal texts.

    ``Decimal("1.0")``, ``"1"`` and ``1`` give ``"1"``; ``"-0"`` and ``"0E+5"`` give ``"0"``; ``"1E+2"``
    and ``100`` give ``"1E+2"`` (Python's ``str`` of the normalized Decimal: trailing zeros become an
    exponent, so this is not always DynamoDB's own spelling, which is ``"100"``; compare canonical
    texts with canonical texts). Two numbers give the same text exactly when they are equal: nothing
    is rounded. Independent of the thread's decimal context.

    ``value``: a Decimal, an int (not a bool), or a number's text as ``Decimal()`` parses it.

    :raises WrongType: if ``value`` is not a Decimal, str or int.
    :raises ValueRejected: if it is not a number DynamoDB can store: not a number, NaN, Infinity,
        more than 38 significant digits, or a nonzero magnitude outside 1E-130 to
        9.9999999999999999999999999999999999999E+125. The message never contains the value.
    """
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        try:
            number = Decimal(value, _NUMBERS)  # the context only decides that bad text raises
        except ArithmeticError:
            raise ValueRejected(_NOT_A_NUMBER) from None
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > _NUMBER_MAX_BITS:
            raise ValueRejected(_OUT_OF_RANGE)
        number = Decimal(value)
    else:
        raise WrongType(f"expected a Decimal, str or int, got {type(value).__name__}")
    if not number.is_finite():
        raise ValueRejected(_NOT_FINITE)
    if number.is_zero():
        return "0"
    if not NUMBER_MIN_ADJUSTED <= number.adjusted() <= NUMBER_MAX_ADJUSTED:
        raise ValueRejected(_OUT_OF_RANGE)
    try:
        normal = number.normalize(_NUMBERS)
    except Inexact:
        raise ValueRejected(_TOO_PRECISE) from None
    except ArithmeticError:  # not within the range checked above: cannot happen, but fail closed
        raise ValueRejected(_OUT_OF_RANGE) from None
    return str(normal)


class Codec(Generic[_T]):
    """The encoding of one declared type.

    Every error its methods raise is a :class:`WrongType` or :class:`ValueRejected` whose message
    names what is wrong, never the value or the bytes; an error from the functions it wraps (a
    parser's, a PynamoDB attribute's, which may quote what they fail on) becomes a ValueRejected that
    names only that error's type.
    """

    __slots__ = ("tag", "name", "canonical", "absent", "coerce", "_prefix", "_kinds", "_to_bytes", "_from_bytes")

    def __init__(
        self,
        tag: int,
        name: str,
        kinds: tuple[type, ...] | None,
        to_bytes: Callable[[Any], bytes],
        from_bytes: Callable[[bytes], Any],
        canonical: Callable[[Any], bytes] | None = None,
        absent: Callable[[Any], bool] | None = None,
        coerce: Callable[[Any], Any] | None = None,
    ) -> None:
        """``kinds``: the accepted types (``bool`` only where listed), or None if ``to_bytes`` checks.

        ``canonical``: the bytes to hash for equality, where values that compare equal in Python encode
        differently (``Decimal("1.0")`` and ``Decimal("1")``); None when the encoding already is.

        ``absent``: whether a value means "no value" (a PynamoDB attribute that serializes it to
        nothing, as an empty set): it is then stored as a missing attribute, like None. None when only
        None is absent.

        ``coerce``: what a value assigned to the attribute becomes, where the declared type converts
        values on assignment (a ``MapAttribute`` makes a dict a ``MapAttribute``); None when values are
        kept as assigned. ``decode`` gives values already coerced.
        """
        self.tag = tag
        self.name = name
        self.canonical = canonical
        self.absent = absent
        self.coerce = coerce
        self._prefix = bytes((tag,))
        self._kinds = kinds
        self._to_bytes = to_bytes
        self._from_bytes = from_bytes

    def encode(self, value: _T) -> bytes:
        """The typed plaintext of ``value``: its tag byte, then its encoding. Accepts what ``decode``
        gives back, for any value of the declared type (out-of-range Decimals, NaN and Infinity too).

        :raises WrongType: if ``value`` is not of the declared type.
        :raises ValueRejected: if it cannot be encoded (a naive datetime, a str with a lone surrogate,
            JSON nested too deep).
        """
        kinds = self._kinds
        if kinds is not None and type(value) not in kinds and (
            not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        ):
            raise WrongType(f"expected {self.name}, got {type(value).__name__}")
        try:
            return self._prefix + self._to_bytes(value)
        except (WrongType, ValueRejected):
            raise
        except Exception as exc:  # e.g. UnicodeEncodeError, which quotes the character
            raise ValueRejected(f"the {self.name} value cannot be encoded ({type(exc).__name__})") from None

    def hmac_input(self, value: _T, encoded: bytes | None = None) -> bytes:
        """What the equality HMAC is computed over: the same bytes for values Python calls equal,
        different bytes for values it calls different.

        ``encoded`` is ``encode(value)``, when the caller has it already.

        :raises WrongType: if ``value`` is not of the declared type.
        :raises ValueRejected: if it cannot be encoded, or has no equality: a Decimal that DynamoDB
            could not store as a number (NaN, Infinity, more than 38 significant digits, a magnitude
            outside 1E-130 to 9.99...E+125; see :func:`canonical_number`), a float NaN.
        """
        if self.canonical is None:
            return encoded if encoded is not None else self.encode(value)
        if encoded is None:
            self.encode(value)  # the same type checks
        try:
            return self._prefix + self.canonical(value)
        except (WrongType, ValueRejected):
            raise
        except Exception as exc:
            raise ValueRejected(
                f"the {self.name} value has no canonical form ({type(exc).__name__})"
            ) from None

    def decode(self, data: bytes) -> _T:
        """The value whose ``encode`` is ``data``.

        :raises ValueRejected: if ``data`` is not an encoding of this type (the message never
            quotes it).
        """
        if data[:1] != self._prefix:
            raise ValueRejected(f"stored as another type than {self.name}")
        try:
            result: _T = self._from_bytes(data[1:])
        except ValueRejected:
            raise
        except Exception:  # parsers quote what they fail on: the plaintext
            raise ValueRejected(f"stored value is not a {self.name}") from None
        return result


def _encode_datetime(value: Any) -> bytes:
    # ISO 8601 with its offset, then "[zone]" for a zoneinfo zone and "~1" for fold=1: the wall time,
    # zone and fold come back exactly, even for a time in a DST gap or overlap.
    if not isinstance(value, datetime):
        raise WrongType(f"expected datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueRejected("datetime values must be timezone-aware")
    text = value.isoformat()
    zone = getattr(value.tzinfo, "key", None)
    if isinstance(zone, str):
        text += f"[{zone}]"
    if value.fold:
        text += "~1"
    return text.encode("ascii")


def _decode_datetime(data: bytes) -> datetime:
    text = data.decode("ascii")
    fold = 0
    if text.endswith("~1"):
        text, fold = text[:-2], 1
    zone = None
    if text.endswith("]"):
        text, _, zone = text[:-1].partition("[")
    value = datetime.fromisoformat(text)
    if zone is not None:
        with contextlib.suppress(ZoneInfoNotFoundError):  # else the fixed offset still names the instant
            value = value.replace(tzinfo=ZoneInfo(zone))
    return value.replace(fold=fold)


def _encode_date(value: Any) -> bytes:
    if type(value) is not date:
        raise WrongType(f"expected date, got {type(value).__name__}")
    return value.isoformat().encode("ascii")


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > 64:
        raise ValueRejected("JSON value nested deeper than 64 levels")
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise WrongType("JSON object keys must be str")
            _check_json(item, depth + 1)
    else:
        raise WrongType(f"{type(value).__name__} is not a JSON type (str, int, float, bool, None, list, dict)")


def _json_codec(kind: type, tag: int) -> Codec[Any]:
    def encode(value: Any) -> bytes:
        if type(value) is not kind:
            raise WrongType(f"expected {kind.__name__}, got {type(value).__name__}")
        _check_json(value)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def decode(data: bytes) -> Any:
        value = json.loads(data.decode("utf-8"))
        if type(value) is not kind:
            raise ValueRejected(f"stored JSON is not a {kind.__name__}")
        return value

    def canonical(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")

    return Codec(tag, kind.__name__, None, encode, decode, canonical)


def _encode_str_set(value: Any) -> bytes:
    if not isinstance(value, (set, frozenset)):
        raise WrongType(f"expected set, got {type(value).__name__}")
    if not all(isinstance(item, str) for item in value):
        raise WrongType("set members must be str")
    return json.dumps(sorted(value), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _decode_str_set(data: bytes) -> set[str]:
    items = json.loads(data.decode("utf-8"))
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueRejected("stored value is not a set of str")
    return set(items)


def _encode_int(value: int) -> bytes:
    # Two's complement, big-endian, minimal length: exact for any size (str() is capped at 4300 digits).
    return int(value).to_bytes(value.bit_length() // 8 + 1, "big", signed=True)


def _decode_int(data: bytes) -> int:
    if not data:
        raise ValueRejected("stored value is not an int")
    return int.from_bytes(data, "big", signed=True)


def _canonical_decimal(value: Decimal) -> bytes:
    # The Decimal codec's equality form: canonical_number, which refuses what DynamoDB cannot store
    # (NaN, Infinity, over 38 digits, out of range) rather than round two different values together.
    return canonical_number(value).encode("ascii")


def _canonical_float(value: float) -> bytes:
    # -0.0 == 0.0, so both hash as 0.0. NaN equals nothing, itself included, and its bits vary
    # (math.nan, -math.nan and inf - inf differ): an HMAC of it would match some NaNs and not others.
    if value != value:
        raise ValueRejected("NaN has no equality: it is equal to no value, itself included")
    return _FLOAT.pack(value + 0.0)


def _canonical_datetime(value: datetime) -> bytes:
    try:
        return value.astimezone(timezone.utc).isoformat().encode("ascii")
    except OverflowError:  # within a day of datetime.min or max: no UTC form; the offset form is exact
        return value.isoformat().encode("ascii")


def _decode_decimal(data: bytes) -> Decimal:
    try:
        return Decimal(data.decode("ascii"))
    except (ArithmeticError, UnicodeDecodeError):
        raise ValueRejected("stored value is not a Decimal") from None


def _decode_bool(data: bytes) -> bool:
    if data not in (b"\x00", b"\x01"):
        raise ValueRejected("stored value is not a bool")
    return data == b"\x01"


def _encode_float(value: float) -> bytes:
    try:
        return _FLOAT.pack(value)
    except (OverflowError, struct.error):  # an int too large for a double
        raise ValueRejected("the int is too large for a float") from None


def _decode_float(data: bytes) -> float:
    if len(data) != _FLOAT.size:
        raise ValueRejected("stored value is not a float")
    value: float = _FLOAT.unpack(data)[0]
    return value


_BUILTIN: dict[type, Codec[Any]] = {
    str: Codec(1, "str", (str,), str.encode, bytes.decode),
    bytes: Codec(2, "bytes", (bytes,), bytes, bytes),
    int: Codec(3, "int", (int,), _encode_int, _decode_int),
    # An int where a float is declared is taken as PynamoDB's NumberAttribute takes it (read back as float).
    float: Codec(4, "float", (float, int), _encode_float, _decode_float, _canonical_float),
    Decimal: Codec(
        5, "Decimal", (Decimal,), lambda v: str(v).encode("ascii"), _decode_decimal, _canonical_decimal
    ),
    bool: Codec(6, "bool", (bool,), lambda v: b"\x01" if v else b"\x00", _decode_bool),
    datetime: Codec(7, "datetime", None, _encode_datetime, _decode_datetime, _canonical_datetime),
    date: Codec(8, "date", None, _encode_date, lambda data: date.fromisoformat(data.decode("ascii"))),
    dict: _json_codec(dict, 9),
    list: _json_codec(list, 10),
    set: Codec(11, "set[str]", None, _encode_str_set, _decode_str_set),
}
_ATTRIBUTE_TAG = 12


def _attribute_codec(attribute: Attribute[Any]) -> Codec[Any]:
    """Use a PynamoDB attribute's own ``serialize``/``deserialize`` as the plaintext encoding, with its
    semantics: a value it serializes to nothing (an empty set) is absent; a value comes back as DynamoDB
    would give it back (numbers in DynamoDB's spelling, sets and maps in no particular order); a dict
    assigned to a ``MapAttribute`` becomes one.

    The encoding is canonical, so that equal values (as DynamoDB compares them) have one HMAC: numbers
    are written as DynamoDB stores them, the members of sets are sorted and map keys are sorted.
    """
    attr_type = attribute.attr_type

    def encode(value: Any) -> bytes:
        try:
            serialized = attribute.serialize(value)
        except Exception:  # an attribute's own error may quote the value
            raise WrongType(f"{type(attribute).__name__} cannot serialize a {type(value).__name__}") from None
        if serialized is None:
            raise ValueRejected(f"{type(attribute).__name__} serialized the value to nothing")
        av = _stored_form({attr_type: serialized})
        return json.dumps(av, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")

    coerce = None
    if isinstance(attribute, MapAttribute):
        map_class = type(attribute)

        def coerce(value: Any) -> Any:  # as MapAttribute.__set__ does
            return map_class(**value) if isinstance(value, Mapping) else value

    def decode(data: bytes) -> Any:
        try:
            av = _from_json(json.loads(data.decode("utf-8")))
            value = attribute.deserialize(attribute.get_value(av))
            return value if coerce is None else coerce(value)
        except Exception:
            raise ValueRejected(f"stored value is not a {type(attribute).__name__} value") from None

    def absent(value: Any) -> bool:
        # PynamoDB stores nothing for a value its attribute serializes to None (an empty set).
        try:
            return attribute.serialize(value) is None
        except Exception:  # not absent: encode() refuses it with its own message
            return False

    return Codec(_ATTRIBUTE_TAG, type(attribute).__name__, None, encode, decode, absent=absent, coerce=coerce)


def dynamodb_number(text: str) -> str:
    """A number's text as DynamoDB gives it back: no exponent, no trailing zeros (``"7.10"`` and
    ``"7.1E+0"`` give ``"7.1"``, ``"1e+16"`` gives ``"10000000000000000"``, ``"-0"`` gives ``"0"``).

    :raises ValueRejected: for a text that is not a number DynamoDB can store (see
        :func:`canonical_number`); the message never contains it.
    """
    return format(Decimal(canonical_number(text)), "f")


def _stored_form(av: Any) -> Any:
    """A DynamoDB attribute value in the canonical form of its JSON: numbers as DynamoDB stores them,
    set members sorted (and unique), bytes base64-encoded."""
    if not (isinstance(av, dict) and len(av) == 1):
        return av
    (kind, value), = av.items()
    if kind == NUMBER:
        return {kind: dynamodb_number(value)}
    if kind == NUMBER_SET:
        return {kind: sorted({dynamodb_number(item) for item in value})}
    if kind == STRING_SET:
        return {kind: sorted(set(value))}
    if kind == BINARY:
        return {kind: base64.b64encode(value).decode("ascii")}
    if kind == BINARY_SET:
        return {kind: [base64.b64encode(item).decode("ascii") for item in sorted(set(value))]}
    if kind == MAP:
        return {kind: {k: _stored_form(v) for k, v in value.items()}}
    if kind == LIST:
        return {kind: [_stored_form(v) for v in value]}
    return av


def _to_json(av: Any) -> Any:
    """A DynamoDB attribute value with its bytes base64-encoded, so that ``json`` can write it."""
    if isinstance(av, dict) and len(av) == 1:
        (kind, value), = av.items()
        if kind == BINARY:
            return {kind: base64.b64encode(value).decode("ascii")}
        if kind == BINARY_SET:
            return {kind: [base64.b64encode(item).decode("ascii") for item in value]}
        if kind == MAP:
            return {kind: {k: _to_json(v) for k, v in value.items()}}
        if kind == LIST:
            return {kind: [_to_json(v) for v in value]}
    return av


def _from_json(av: Any) -> Any:
    if isinstance(av, dict) and len(av) == 1:
        (kind, value), = av.items()
        if kind == BINARY:
            return {kind: base64.b64decode(value)}
        if kind == BINARY_SET:
            return {kind: [base64.b64decode(item) for item in value]}
        if kind == MAP:
            return {kind: {k: _from_json(v) for k, v in value.items()}}
        if kind == LIST:
            return {kind: [_from_json(v) for v in value]}
    return av


def codec_for(type_: object) -> Codec[Any]:
    """The codec of a declared ``type_``: a built-in type listed in ``_BUILTIN`` or a PynamoDB
    Attribute instance.

    :raises WrongType: if ``type_`` is not supported (the message names it by its type's name only).
    """
    if isinstance(type_, Attribute):
        return _attribute_codec(type_)
    if isinstance(type_, type) and type_ in _BUILTIN:
        return _BUILTIN[type_]
    names = ", ".join(kind.__name__ for kind in _BUILTIN)
    if isinstance(type_, type):
        given = type_.__qualname__ + (" (a class: pass an instance)" if issubclass(type_, Attribute) else "")
    else:
        given = f"a {type(type_).__name__} instance"
    raise WrongType(f"unsupported type {given}: use one of {names}, or a PynamoDB Attribute instance")
