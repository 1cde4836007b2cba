"""Typed plaintext: how a Python value becomes the bytes that are encrypted and hashed.

Each encoding starts with a one-byte type tag, so a value comes back as the type it was written as, and
equal values of different types (``1`` and ``"1"``) never share an HMAC.
"""

from __future__ import annotations

import base64
import contextlib
import json
import struct
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pynamodb.attributes import Attribute
from pynamodb.constants import BINARY, BINARY_SET

_T = TypeVar("_T")
_FLOAT = struct.Struct(">d")


class Codec(Generic[_T]):
    """Encodes one declared type. ``encode`` raises TypeError/ValueError naming the problem, not the value."""

    def __init__(
        self,
        tag: int,
        name: str,
        encode: Callable[[Any], bytes],
        decode: Callable[[bytes], Any],
    ) -> None:
        self.tag = tag
        self.name = name
        self._prefix = bytes((tag,))
        self._encode = encode
        self._decode = decode

    def encode(self, value: _T) -> bytes:
        return self._prefix + self._encode(value)

    def decode(self, data: bytes) -> _T:
        if not data or data[0] != self.tag:
            raise ValueError(f"stored as another type than {self.name}")
        result: _T = self._decode(data[1:])
        return result


def _expect(kind: type | tuple[type, ...], name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise TypeError(f"expected {name}, got {type(value).__name__}")

    return check


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _checked(check: Callable[[Any], None], encode: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    def checked_encode(value: Any) -> bytes:
        check(value)
        return encode(value)

    return checked_encode


def _encode_str(value: Any) -> bytes:
    if type(value) is not str:
        _expect(str, "str")(value)
    return value.encode("utf-8")  # type: ignore[no-any-return]


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

    return Codec(tag, kind.__name__, encode, decode)


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


def _decode_int(data: bytes) -> int:
    if not data or not data.lstrip(b"-").isdigit():
        raise ValueError("stored value is not an int")
    return int(data)


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
    str: Codec(1, "str", _encode_str, lambda data: data.decode("utf-8")),
    bytes: Codec(2, "bytes", _checked(_expect(bytes, "bytes"), bytes), bytes),
    int: Codec(3, "int", _checked(_expect(int, "int"), lambda v: str(v).encode("ascii")), _decode_int),
    float: Codec(4, "float", _checked(_expect(float, "float"), _FLOAT.pack), _decode_float),
    Decimal: Codec(
        5, "Decimal", _checked(_expect(Decimal, "Decimal"), lambda v: str(v).encode("ascii")),
        lambda data: Decimal(data.decode("ascii")),
    ),
    bool: Codec(6, "bool", _checked(_expect(bool, "bool"), lambda v: b"\x01" if v else b"\x00"), _decode_bool),
    datetime: Codec(7, "datetime", _encode_datetime, _decode_datetime),
    date: Codec(8, "date", _encode_date, lambda data: date.fromisoformat(data.decode("ascii"))),
    dict: _json_codec(dict, 9),
    list: _json_codec(list, 10),
    set: Codec(11, "set[str]", _encode_str_set, _decode_str_set),
}
_ATTRIBUTE_TAG = 12

SUPPORTED_TYPES = tuple(_BUILTIN)


def _attribute_codec(attribute: Attribute[Any]) -> Codec[Any]:
    """Use a PynamoDB attribute's own ``serialize``/``deserialize`` as the plaintext encoding."""
    attr_type = attribute.attr_type

    def encode(value: Any) -> bytes:
        serialized = attribute.serialize(value)
        if serialized is None:
            raise ValueError(f"{type(attribute).__name__} serialized the value to nothing")
        av = {attr_type: serialized}
        return json.dumps(_to_json(av), separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def decode(data: bytes) -> Any:
        av = _from_json(json.loads(data.decode("utf-8")))
        return attribute.deserialize(attribute.get_value(av))

    return Codec(_ATTRIBUTE_TAG, type(attribute).__name__, encode, decode)


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
