"""Plaintext values in DynamoDB JSON and in boto3's document shape, converted to and from what an
attribute declares: the conversions of the raw-item API, and of a plaintext left in a table being
migrated (read under ``Meta.plaintext_policy = "read_plaintext"``)."""

from __future__ import annotations

import base64
import math
from collections import abc
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Dict, List, Literal, Mapping, Optional, Tuple

from pynamodb.attributes import Attribute, NumberAttribute

from ._attributes import EncryptedAttribute, EncryptedMapAttribute, HmacAttribute
from ._codecs import WrongType
from ._layout import map_list
from .exceptions import StashError

_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})
_SCALARS = frozenset({"S", "N", "BOOL", "NULL", "SS", "NS"})
Shape = Literal["auto", "dynamodb", "document"]


# -- plaintext values: DynamoDB JSON <-> declared types ---------------------------------------------


def plaintext(attribute: Attribute[Any], av: Dict[str, Any]) -> Any:
    """The Python value of a plaintext attribute value, converted to what ``attribute`` declares."""
    if isinstance(attribute, EncryptedAttribute):
        if attribute.type_ is str and "S" in av:
            return av["S"]
        return _coerce(attribute, from_dynamodb(av))
    map_class = map_list(attribute)
    if map_class is not None:
        return [plaintext(map_class(), element) for element in _expect(av, "L", attribute)]
    if isinstance(attribute, EncryptedMapAttribute):
        children = {plaintext_name(child): (name, child) for name, child in map_fields(type(attribute))}
        values = {}
        for stored, value in _expect(av, "M", attribute).items():
            if stored not in children:
                raise TypeError(f"{type(attribute).__name__} has no attribute {stored!r}")
            name, child = children[stored]
            if "NULL" not in value:
                values[name] = plaintext(child, value)
        return type(attribute)(**values)
    return attribute.deserialize(attribute.get_value(av))


def document_plaintext(field: EncryptedAttribute[Any], value: Any) -> Any:
    """The Python value of a document-shaped plaintext value (boto3 resource style), as ``field`` declares."""
    inner = getattr(value, "value", None)  # boto3.dynamodb.types.Binary
    if not isinstance(value, (bytes, bytearray)) and isinstance(inner, (bytes, bytearray)):
        value = bytes(inner)
    if field.type_ is set and isinstance(value, (set, frozenset)):
        return set(value)
    return _coerce(field, value)


def map_fields(map_class: type[EncryptedMapAttribute]) -> List[Tuple[str, Attribute[Any]]]:
    """A map's attributes by Python name, without the HMAC companions."""
    return [
        (name, child) for name, child in map_class.get_attributes().items()
        if not (isinstance(child, HmacAttribute) and child.is_companion)
    ]


def plaintext_name(attribute: Attribute[Any]) -> str:
    """The name an attribute has in a plaintext item: an encrypted one's base name, else its stored name."""
    return attribute.logical_name if isinstance(attribute, EncryptedAttribute) else attribute.attr_name


def _expect(av: Dict[str, Any], kind: str, attribute: Attribute[Any]) -> Any:
    if kind not in av:
        raise TypeError(f"{type(attribute).__name__} expects a DynamoDB {kind} value")
    return av[kind]


def _json_numbers(value: Any) -> Any:
    """DynamoDB numbers (Decimal) inside a JSON value, as the int or float JSON itself would read."""
    if isinstance(value, Decimal):
        text = str(value)  # as JSON would: a fraction or an exponent makes a float
        return float(value) if any(mark in text for mark in ".eEnN") else int(value)
    if isinstance(value, dict):
        return {key: _json_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_numbers(item) for item in value]
    return value


def _coerce(field: EncryptedAttribute[Any], value: Any) -> Any:
    declared = field.type_
    if declared is dict or declared is list:
        return _json_numbers(value)
    if declared is int and isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise WrongType("expected int, got a number with a fractional part")
        return int(value)
    if declared is float and isinstance(value, Decimal):
        return float(value)
    if declared is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if declared is date and isinstance(value, str):
        return date.fromisoformat(value)
    if isinstance(declared, NumberAttribute) and isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(declared, Attribute) and isinstance(value, (str, bytes)) and declared.attr_type in ("S", "B"):
        return declared.deserialize(value)
    return value


def plaintext_to_dynamodb(attribute: Attribute[Any], value: Any) -> Dict[str, Any]:
    if isinstance(attribute, EncryptedAttribute):
        if attribute.type_ is str:
            return {"S": value}
        if isinstance(attribute.type_, Attribute):
            return {attribute.type_.attr_type: attribute.type_.serialize(value)}
        if isinstance(value, (datetime, date)):
            return {"S": value.isoformat()}
        return to_dynamodb(value)
    map_class = map_list(attribute)
    if map_class is not None:
        return {"L": [plaintext_to_dynamodb(map_class(), element) for element in value]}
    if isinstance(attribute, EncryptedMapAttribute):
        out = {}
        for name, child in map_fields(type(attribute)):
            element = value.attribute_values.get(name)
            if element is not None:
                out[plaintext_name(child)] = plaintext_to_dynamodb(child, element)
        return {"M": out}
    return {attribute.attr_type: attribute.serialize(value)}


# -- shapes -------------------------------------------------------------------------------------


def as_dynamodb_json(item: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """``item`` normalized as botocore's DynamoDB JSON (a new dict), or None if it is not DynamoDB JSON."""
    as_botocore = split_botocore(item, _NO_NAMES) if type(item) is dict else None
    if as_botocore is not None:
        return as_botocore
    out: Dict[str, Any] = {}
    for name, value in item.items():
        if not (type(value) is dict or isinstance(value, abc.Mapping)) or len(value) != 1:
            return None
        kind = next(iter(value))
        if kind in _SCALARS or (kind == "B" and type(value[kind]) is bytes):
            out[str(name)] = value
        elif kind in _TYPES:
            out[str(name)] = normalize(value)
        else:
            return None
    return out if out else None


_NO_NAMES: frozenset[str] = frozenset()


def split_botocore(
    item: Dict[Any, Any], names: frozenset[str], named: Optional[Dict[str, Any]] = None
) -> Optional[Dict[str, Any]]:
    """``item``'s attributes not named in ``names``, as a new dict, when ``item`` is DynamoDB JSON exactly
    as botocore returns it (str names, scalar values, bytes for ``B``: what boto3 and Streams hold, which
    :func:`as_dynamodb_json` would keep as they are); those named go into ``named``, if given. None if
    ``item`` is not so, or is empty. One pass, no value copied: the common case of every raw-item call."""
    scalars = _SCALARS
    rest: Dict[str, Any] = {}
    for name, value in item.items():
        if type(value) is dict and len(value) == 1 and type(name) is str:
            kind, = value
            if kind in scalars or (kind == "B" and type(value[kind]) is bytes):
                if name not in names:
                    rest[name] = value
                elif named is not None:
                    named[name] = value
                continue
        return None
    return rest if item else None


def to_dynamodb_item(
    item: Any, shape: Shape, where: str, error: type[StashError]
) -> Tuple[Dict[str, Any], bool]:
    if type(item) is not dict and not isinstance(item, abc.Mapping):
        raise error(f"{where}: an item is a mapping of attribute names, not a {type(item).__name__}")
    try:
        if shape != "document":
            as_json = as_dynamodb_json(item)
            if as_json is not None:
                return as_json, True
            if shape == "dynamodb" and item:
                raise TypeError("not DynamoDB JSON")
            if shape == "dynamodb":
                return {}, True
        return {str(name): to_dynamodb(value) for name, value in item.items()}, False
    except (TypeError, ValueError):
        kind = "DynamoDB JSON" if shape == "dynamodb" else "item"
        raise error(f"{where}: the item is not valid {kind} data") from None


def normalize(av: Mapping[str, Any]) -> Dict[str, Any]:
    """DynamoDB JSON as botocore has it: bytes for B/BS (base64 text from JSON exports is decoded)."""
    if (type(av) is not dict and not isinstance(av, abc.Mapping)) or len(av) != 1:
        raise TypeError("not an attribute value")
    (kind, value), = av.items()
    if kind in _SCALARS or (kind == "B" and type(value) is bytes):
        return av  # type: ignore[return-value]
    if kind == "B":
        return {kind: _bytes(value)}
    if kind == "BS":
        return {kind: [_bytes(v) for v in value]}
    if kind == "M":
        if not isinstance(value, abc.Mapping):
            raise TypeError("M is not a map")
        return {kind: {k: normalize(v) for k, v in value.items()}}
    if kind == "L":
        if not isinstance(value, list):
            raise TypeError("L is not a list")
        return {kind: [normalize(v) for v in value]}
    return {kind: value}


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return base64.b64decode(value, validate=True)
    inner = getattr(value, "value", None)  # boto3.dynamodb.types.Binary
    if isinstance(inner, (bytes, bytearray)):
        return bytes(inner)
    raise TypeError("a binary value is not bytes")


def to_dynamodb(value: Any) -> Dict[str, Any]:
    """A document value (boto3 resource style) as DynamoDB JSON."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, Decimal)):
        return {"N": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("DynamoDB numbers are finite")
        return {"N": repr(value)}
    if isinstance(value, abc.Mapping):
        return {"M": {str(k): to_dynamodb(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [to_dynamodb(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        if all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        if all(isinstance(v, (int, Decimal, float)) and not isinstance(v, bool) for v in value):
            return {"NS": [str(v) for v in value]}
        return {"BS": [_bytes(v) for v in value]}
    if isinstance(value, (datetime, date)):
        return {"S": value.isoformat()}
    return {"B": _bytes(value)}


def from_dynamodb(av: Mapping[str, Any]) -> Any:
    (kind, value), = av.items()
    if kind in ("S", "BOOL"):
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "B":
        return _bytes(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_dynamodb(v) for k, v in value.items()}
    if kind == "L":
        return [from_dynamodb(v) for v in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {Decimal(v) for v in value}
    if kind == "BS":
        return {_bytes(v) for v in value}
    raise TypeError(f"unknown DynamoDB type {kind!r}")


def to_document_item(item: Dict[str, Any]) -> Dict[str, Any]:
    return {name: from_dynamodb(value) for name, value in item.items()}

