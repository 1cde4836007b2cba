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
from decimal import Context, Decimal
from typing import Any, Callable, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pynamodb.attributes import Attribute
from pynamodb.constants import BINARY, BINARY_SET

_T = TypeVar("_T")


def safe_reason(error: Exception) -> str:
    """What went wrong, for a message: the codecs' own TypeError/ValueError texts name types, never
    values; any other error (a UnicodeError, a user function's) is named by its type only."""
    return str(error) if type(error) in (TypeError, ValueError) else f"the value does not fit ({type(error).__name__})"
_FLOAT = struct.Struct(">d")
_EXACT = Context(prec=1000)


class Codec(Generic[_T]):
    """The encoding of one declared type.

    ``encode`` raises TypeError or ValueError naming what is wrong, never the value; ``decode`` raises
    ValueError when the bytes are not of this type.
    """

    __slots__ = ("tag", "name", "canonical", "_prefix", "_kinds", "_to_bytes", "_from_bytes")

    def __init__(
        self,
        tag: int,
        name: str,
        kinds: tuple[type, ...] | None,
        to_bytes: Callable[[Any], bytes],
        from_bytes: Callable[[bytes], Any],
        canonical: Callable[[Any], bytes] | None = None,
    ) -> None:
        """``kinds``: the accepted types (``bool`` only where listed), or None if ``to_bytes`` checks.

        ``canonical``: the bytes to hash for equality, where values that compare equal in Python encode
        differently (``Decimal("1.0")`` and ``Decimal("1")``); None when the encoding already is.
        """
        self.tag = tag
        self.name = name
        self.canonical = canonical
        self._prefix = bytes((tag,))
        self._kinds = kinds
        self._to_bytes = to_bytes
        self._from_bytes = from_bytes

    def encode(self, value: _T) -> bytes:
        kinds = self._kinds
        if kinds is not None and type(value) not in kinds and (
            not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        ):
            raise TypeError(f"expected {self.name}, got {type(value).__name__}")
        return self._prefix + self._to_bytes(value)

    def hmac_input(self, value: _T, encoded: bytes | None = None) -> bytes:
        """What the equality HMAC is computed over: equal values give equal bytes.

        ``encoded`` is ``encode(value)``, when the caller has it already.
        """
        if self.canonical is None:
            return encoded if encoded is not None else self.encode(value)
        if encoded is None:
            self.encode(value)  # the same type checks
        return self._prefix + self.canonical(value)

    def decode(self, data: bytes) -> _T:
        if data[:1] != self._prefix:
            raise ValueError(f"stored as another type than {self.name}")
        result: _T = self._from_bytes(data[1:])
        return result


def _encode_datetime(value: Any) -> bytes:
    # ISO 8601 with its offset, then "[zone]" for a zoneinfo zone and "~1" for fold=1: the wall time,
    # zone and fold come back exactly, even for a time in a DST gap or overlap.
    if not isinstance(value, datetime):
        raise TypeError(f"expected datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime values must be timezone-aware")
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
        raise TypeError(f"expected date, got {type(value).__name__}")
    return value.isoformat().encode("ascii")


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > 64:
        raise ValueError("JSON value nested deeper than 64 levels")
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("JSON object keys must be str")
            _check_json(item, depth + 1)
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON type (str, int, float, bool, None, list, dict)")


def _json_codec(kind: type, tag: int) -> Codec[Any]:
    def encode(value: Any) -> bytes:
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        _check_json(value)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def decode(data: bytes) -> Any:
        value = json.loads(data.decode("utf-8"))
        if type(value) is not kind:
            raise ValueError(f"stored JSON is not a {kind.__name__}")
        return value

    def canonical(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")

    return Codec(tag, kind.__name__, None, encode, decode, canonical)


def _encode_str_set(value: Any) -> bytes:
    if not isinstance(value, (set, frozenset)):
        raise TypeError(f"expected set, got {type(value).__name__}")
    if not all(isinstance(item, str) for item in value):
        raise TypeError("set members must be str")
    return json.dumps(sorted(value), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _decode_str_set(data: bytes) -> set[str]:
    items = json.loads(data.decode("utf-8"))
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError("stored value is not a set of str")
    return set(items)


def _encode_int(value: int) -> bytes:
    # Two's complement, big-endian, minimal length: exact for any size (str() is capped at 4300 digits).
    return int(value).to_bytes(value.bit_length() // 8 + 1, "big", signed=True)


def _decode_int(data: bytes) -> int:
    if not data:
        raise ValueError("stored value is not an int")
    return int.from_bytes(data, "big", signed=True)


def _canonical_decimal(value: Decimal) -> bytes:
    if value.is_nan():  # NaN and sNaN: no normal form, and equal to nothing
        return str(value).encode("ascii")
    if value.is_zero():
        return b"0"
    return str(value.normalize(_EXACT)).encode("ascii")


def _canonical_datetime(value: datetime) -> bytes:
    try:
        return value.astimezone(timezone.utc).isoformat().encode("ascii")
    except OverflowError:  # within a day of datetime.min or max: no UTC form; the offset form is exact
        return value.isoformat().encode("ascii")


def _decode_decimal(data: bytes) -> Decimal:
    try:
        return Decimal(data.decode("ascii"))
    except (ArithmeticError, UnicodeDecodeError):
        raise ValueError("stored value is not a Decimal") from None


def _decode_bool(data: bytes) -> bool:
    if data not in (b"\x00", b"\x01"):
        raise ValueError("stored value is not a bool")
    return data == b"\x01"


def _decode_float(data: bytes) -> float:
    if len(data) != _FLOAT.size:
        raise ValueError("stored value is not a float")
    value: float = _FLOAT.unpack(data)[0]
    return value


_BUILTIN: dict[type, Codec[Any]] = {
    str: Codec(1, "str", (str,), str.encode, bytes.decode),
    bytes: Codec(2, "bytes", (bytes,), bytes, bytes),
    int: Codec(3, "int", (int,), _encode_int, _decode_int),
    float: Codec(4, "float", (float,), _FLOAT.pack, _decode_float, lambda v: _FLOAT.pack(v + 0.0)),
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
    """Use a PynamoDB attribute's own ``serialize``/``deserialize`` as the plaintext encoding."""
    attr_type = attribute.attr_type

    def encode(value: Any) -> bytes:
        try:
            serialized = attribute.serialize(value)
        except Exception:  # an attribute's own error may quote the value
            raise TypeError(f"{type(attribute).__name__} cannot serialize a {type(value).__name__}") from None
        if serialized is None:
            raise ValueError(f"{type(attribute).__name__} serialized the value to nothing")
        av = {attr_type: serialized}
        return json.dumps(_to_json(av), separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def decode(data: bytes) -> Any:
        try:
            av = _from_json(json.loads(data.decode("utf-8")))
            return attribute.deserialize(attribute.get_value(av))
        except Exception:
            raise ValueError(f"stored value is not a {type(attribute).__name__} value") from None

    return Codec(_ATTRIBUTE_TAG, type(attribute).__name__, None, encode, decode)


def _to_json(av: Any) -> Any:
    """A DynamoDB attribute value with its bytes base64-encoded, so that ``json`` can write it."""
    if isinstance(av, dict) and len(av) == 1:
        (kind, value), = av.items()
        if kind == BINARY:
            return {kind: base64.b64encode(value).decode("ascii")}
        if kind == BINARY_SET:
            return {kind: [base64.b64encode(item).decode("ascii") for item in value]}
        if kind == "M":
            return {kind: {k: _to_json(v) for k, v in value.items()}}
        if kind == "L":
            return {kind: [_to_json(v) for v in value]}
    return av


def _from_json(av: Any) -> Any:
    if isinstance(av, dict) and len(av) == 1:
        (kind, value), = av.items()
        if kind == BINARY:
            return {kind: base64.b64decode(value)}
        if kind == BINARY_SET:
            return {kind: [base64.b64decode(item) for item in value]}
        if kind == "M":
            return {kind: {k: _from_json(v) for k, v in value.items()}}
        if kind == "L":
            return {kind: [_from_json(v) for v in value]}
    return av


def codec_for(type_: object) -> Codec[Any]:
    """The codec of a declared ``type_``; TypeError if it is not supported."""
    if isinstance(type_, Attribute):
        return _attribute_codec(type_)
    if isinstance(type_, type) and type_ in _BUILTIN:
        return _BUILTIN[type_]
    names = ", ".join(kind.__name__ for kind in _BUILTIN)
    raise TypeError(f"unsupported type {type_!r}: use one of {names}, or a PynamoDB Attribute instance")
