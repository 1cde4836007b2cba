"""Encrypt and decrypt raw items, for code that reads the table without PynamoDB.

A Lambda consuming DynamoDB Streams, a boto3 script or an S3 export job holds items in one of two
shapes, and every function here accepts and returns both:

- DynamoDB JSON, as ``boto3.client("dynamodb")``, Streams images and exports have it:
  ``{"pk": {"S": "user#1"}, "age": {"N": "42"}}``;
- document values, as the boto3 resource (``Table``) has it: ``{"pk": "user#1", "age": Decimal(42)}``.

A plaintext item names encrypted attributes by their base name (``email``); the stored item holds
``email__source`` and ``email__hmac`` instead. Attributes the model does not encrypt pass through
unchanged, declared or not.
"""

from __future__ import annotations

import base64
import math
from collections import abc
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Dict, Generic, Iterable, List, Literal, Mapping, Optional, Tuple, TypeVar

from pynamodb.attributes import Attribute, NumberAttribute

from . import _pynamodb
from ._attributes import (
    HMAC_SUFFIX,
    RESERVED_SUFFIXES,
    EncryptedAttribute,
    EncryptedMapAttribute,
    HmacAttribute,
)
from ._codecs import WrongType, safe_reason
from ._model import EncryptedModel, _map_list, _nested_kind, _seal_nested
from .exceptions import DecryptionError, EncryptionError, StashError, reporting

Shape = Literal["auto", "dynamodb", "document"]
_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})
_SCALARS = frozenset({"S", "N", "BOOL", "NULL", "SS", "NS"})
_M = TypeVar("_M", bound=EncryptedModel)
_V = TypeVar("_V")


@dataclass(frozen=True)
class ItemResult(Generic[_V]):
    """One item of a bulk operation: its value, or the error that item alone raised."""

    value: Optional[_V] = None
    error: Optional[StashError] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> _V:
        """The value; the item's error if it has none."""
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


@reporting
def encrypt_item(model: type[EncryptedModel], item: Mapping[str, Any], *, shape: Shape = "auto") -> Dict[str, Any]:
    """The item as it is stored: encrypted attributes sealed to the item and hashed, the rest unchanged.

    :param item: a plaintext item, in DynamoDB JSON or as document values (``shape="auto"`` tells them
        apart; the result has the same shape). Encrypted attributes take their declared Python type;
        from DynamoDB JSON or boto3, numbers arrive as ``N``/``Decimal``, datetimes and dates as ISO
        8601 strings, sets of str as ``SS``, and are converted.
    :raises EncryptionError: if the item is not a mapping, lacks its primary key, or a value does not
        fit its attribute. The message names the attribute, never the value.
    """
    where = f"encrypt_item({model.__name__})"
    raw, as_json = _to_dynamodb_item(item, shape, where, EncryptionError)
    model = _stored_class(model, raw, where, EncryptionError)
    fields = _top_level_encrypted(model)
    aliases = _python_aliases(model)
    for name in raw:
        if name in aliases:  # it would pass through, in plaintext, beside the real name
            raise EncryptionError(f"{where}: {name!r} is stored under another name; use that name in items")
        if name.endswith(RESERVED_SUFFIXES):  # it would be stored as given: an HMAC answers lookups
            raise EncryptionError(
                f"{where}: {name!r} ends in a reserved suffix (__source, __hmac); a plaintext item names "
                "encrypted attributes by their base name, and encryption writes their stored form",
                code="reserved_name",
            )
    runtime = model._stash_runtime(model._stash_raw_keyring(raw, EncryptionError))
    stored = {name: value for name, value in raw.items() if name not in fields}
    try:
        pending: List[Tuple[Attribute[Any], Any, Any]] = []
        for name, (_, attribute) in fields.items():
            value = raw.get(name)
            if value is None or "NULL" in value:
                continue
            if isinstance(attribute, EncryptedAttribute):
                field = runtime.by_path[attribute.logical_name]
                # A document value keeps its Python type, so the model's type rules apply to it (a float
                # is no Decimal); only the wire forms (Decimal numbers, ISO text, Binary) are converted.
                try:
                    plaintext = _plaintext(attribute, value) if as_json else _document_plaintext(attribute, item[name])
                except Exception as exc:  # the same words as the model's refusal, naming the attribute
                    raise EncryptionError(f"{field.where}: encrypting failed: {safe_reason(exc)}") from None
                if field.is_absent(plaintext):
                    continue
                encoded = field.encode(plaintext)
                field.write_key(stored, encoded)
                pending.append((attribute, field, encoded))
            else:
                pending.append((attribute, None, _plaintext(attribute, value)))
        item_key = model._stash_plan().item_key(stored)
        if item_key is None:
            raise EncryptionError(f"{where}: the item lacks its primary key, which encryption binds to")
        for attribute, field, value in pending:  # value: a field's encode() result, or a map's plaintext
            if field is not None:
                field.write(stored, value, item_key)
            else:
                map_class, is_list = _nested(attribute)
                stored[attribute.attr_name] = _seal_nested(
                    runtime, map_class, is_list, value, attribute.attr_name, item_key, True
                )
    except StashError:
        raise
    except Exception as exc:  # PynamoDB's and the codecs' messages may quote values
        raise EncryptionError(f"{where}: the item does not fit the model ({type(exc).__name__})") from None
    return stored if as_json else _to_document_item(stored)


@reporting
def decrypt_item(model: type[EncryptedModel], item: Mapping[str, Any], *, shape: Shape = "auto") -> Dict[str, Any]:
    """The plaintext item: encrypted attributes decrypted, verified and under their base names.

    The inverse of :func:`encrypt_item`, in the shape given. In DynamoDB JSON, decrypted values are
    written as ``encrypt_item`` reads them (datetimes and dates as ISO 8601 ``S``).

    :raises DecryptionError: if a value does not verify, the primary key is missing, or a stored value
        has the wrong type. :raises KeyNotFoundError: for an unknown key id.
    """
    where = f"decrypt_item({model.__name__})"
    raw, as_json = _to_dynamodb_item(item, shape, where, DecryptionError)
    model = _stored_class(model, raw, where, DecryptionError)
    instance = _instance_from_raw(model, raw, where, plain=False)  # the model's read of a whole item
    values = instance.attribute_values
    encrypted_names = _stored_names(model)
    plain = {name: value for name, value in raw.items() if name not in encrypted_names}
    try:
        for name, (python_name, attribute) in _top_level_encrypted(model).items():
            value = values.get(python_name)
            if value is not None:
                plain[name] = _plaintext_to_dynamodb(attribute, value)
    except StashError:
        raise
    except Exception as exc:
        raise DecryptionError(f"{where}: the item does not fit the model ({type(exc).__name__})") from None
    return plain if as_json else _to_document_item(plain)


@reporting
def from_stream_image(model: type[_M], image: Mapping[str, Any]) -> _M:
    """A model instance from a DynamoDB Streams ``NewImage`` or ``OldImage`` (DynamoDB JSON), read as a
    whole item (as :func:`decrypt_item` reads one).

    :raises DecryptionError: if the image is not DynamoDB JSON, lacks the primary key, or does not
        verify.
    """
    raw, _ = _to_dynamodb_item(image, "dynamodb", f"from_stream_image({model.__name__})", DecryptionError)
    return _instance_from_raw(model, raw, f"from_stream_image({model.__name__})")


def bulk_encrypt_items(
    model: type[EncryptedModel], items: Iterable[Mapping[str, Any]], *, shape: Shape = "auto"
) -> List[ItemResult[Dict[str, Any]]]:
    """:func:`encrypt_item` for each item; one result per item, in order, each a value or its own error."""
    return [_attempt(encrypt_item, model, item, shape) for item in items]


def bulk_decrypt_items(
    model: type[EncryptedModel], items: Iterable[Mapping[str, Any]], *, shape: Shape = "auto"
) -> List[ItemResult[Dict[str, Any]]]:
    """:func:`decrypt_item` for each item; one result per item, in order, each a value or its own error."""
    return [_attempt(decrypt_item, model, item, shape) for item in items]


def _attempt(
    operation: Callable[..., Dict[str, Any]], model: type[EncryptedModel], item: Mapping[str, Any], shape: Shape
) -> ItemResult[Dict[str, Any]]:
    try:
        return ItemResult(value=operation(model, item, shape=shape))
    except StashError as error:
        return ItemResult(error=error)
    except Exception as exc:  # never expected; one item's failure must not lose the others
        kind = EncryptionError if operation is encrypt_item else DecryptionError
        return ItemResult(error=kind(f"{operation.__name__}({model.__name__}): unexpected {type(exc).__name__}"))


# -- the model's encrypted attributes ---------------------------------------------------------------


def _top_level_encrypted(model: type[EncryptedModel]) -> Dict[str, Tuple[str, Attribute[Any]]]:
    """Encrypted attributes and encrypted maps (or lists of them), with their Python names, by the name a
    plaintext item uses."""
    return _item_schema(model)[0]


def _stored_names(model: type[EncryptedModel]) -> frozenset[str]:
    """The names an encrypted attribute may be stored under: ``x__source``, ``x__hmac``, encrypted maps,
    and ``x`` (a plaintext left from before encryption, which only the model's plaintext policy reads)."""
    return _item_schema(model)[1]


def _python_aliases(model: type[EncryptedModel]) -> frozenset[str]:
    """Python names of encrypted attributes that differ from their stored base name (``attr_name=``)."""
    return frozenset(
        name for name, field in model._stash_fields.items() if name != field.logical_name
    )


_Schema = Tuple[Dict[str, Tuple[str, Attribute[Any]]], frozenset[str]]


def _item_schema(model: type[EncryptedModel]) -> _Schema:
    cached: Optional[_Schema] = model.__dict__.get("_stash_item_schema")
    if cached is not None:
        return cached
    found: Dict[str, Tuple[str, Attribute[Any]]] = {}
    names: set[str] = set()
    for python_name, attribute in model.get_attributes().items():
        if isinstance(attribute, EncryptedAttribute):
            found[attribute.logical_name] = (python_name, attribute)
            names.update((attribute.attr_name, attribute.logical_name))
            if attribute.equality:
                names.add(attribute.logical_name + HMAC_SUFFIX)
        elif _nested_kind(attribute) is not None:
            found[attribute.attr_name] = (python_name, attribute)
            names.add(attribute.attr_name)
    cached = (found, frozenset(names))
    model._stash_item_schema = cached  # type: ignore[attr-defined]
    return cached


def _stored_class(
    model: type[EncryptedModel], raw: Dict[str, Any], where: str, error: type[StashError]
) -> type[EncryptedModel]:
    """The polymorphic subclass an item's discriminator names, whose fields it must encrypt too."""
    try:
        stored = _pynamodb.discriminator_class(model, raw)
    except Exception as exc:
        raise error(f"{where}: the item's discriminator is not valid ({type(exc).__name__})") from None
    if stored is None:
        return model
    if not (isinstance(stored, type) and issubclass(stored, model)):
        raise error(f"{where}: the item's discriminator names a class that is not a {model.__name__}")
    return stored


def _require_key(model: type[EncryptedModel], raw: Dict[str, Any], where: str) -> None:
    plan = model._stash_plan()
    for key in (plan.hash_key, plan.range_key):
        if key is not None and key[0] not in raw:
            raise DecryptionError(f"{where}: the item has no {key[0]!r}, part of its primary key")


def _nested(attribute: Attribute[Any]) -> Tuple[type[EncryptedMapAttribute], bool]:
    map_class = _map_list(attribute)
    if map_class is not None:
        return map_class, True
    assert isinstance(attribute, EncryptedMapAttribute)
    return type(attribute), False


def _instance_from_raw(model: type[_M], raw: Dict[str, Any], where: str, *, plain: bool = True) -> _M:
    _require_key(model, raw, where)
    try:
        return model._stash_load(raw, whole_item=True, plain=plain)
    except StashError:
        raise
    except Exception as exc:
        raise DecryptionError(f"{where}: the item does not fit the model ({type(exc).__name__})") from None


# -- plaintext values: DynamoDB JSON <-> declared types ---------------------------------------------


def _plaintext(attribute: Attribute[Any], av: Dict[str, Any]) -> Any:
    """The Python value of a plaintext attribute value, converted to what ``attribute`` declares."""
    if isinstance(attribute, EncryptedAttribute):
        if attribute.type_ is str and "S" in av:
            return av["S"]
        return _coerce(attribute, _from_dynamodb(av))
    map_class = _map_list(attribute)
    if map_class is not None:
        return [_plaintext(map_class(), element) for element in _expect(av, "L", attribute)]
    if isinstance(attribute, EncryptedMapAttribute):
        children = {_plaintext_name(child): (name, child) for name, child in _map_fields(type(attribute))}
        values = {}
        for stored, value in _expect(av, "M", attribute).items():
            if stored not in children:
                raise TypeError(f"{type(attribute).__name__} has no attribute {stored!r}")
            name, child = children[stored]
            if "NULL" not in value:
                values[name] = _plaintext(child, value)
        return type(attribute)(**values)
    return attribute.deserialize(attribute.get_value(av))


def _document_plaintext(field: EncryptedAttribute[Any], value: Any) -> Any:
    """The Python value of a document-shaped plaintext value (boto3 resource style), as ``field`` declares."""
    inner = getattr(value, "value", None)  # boto3.dynamodb.types.Binary
    if not isinstance(value, (bytes, bytearray)) and isinstance(inner, (bytes, bytearray)):
        value = bytes(inner)
    if field.type_ is set and isinstance(value, (set, frozenset)):
        return set(value)
    return _coerce(field, value)


def _map_fields(map_class: type[EncryptedMapAttribute]) -> List[Tuple[str, Attribute[Any]]]:
    """A map's attributes by Python name, without the HMAC companions."""
    return [
        (name, child) for name, child in map_class.get_attributes().items()
        if not (isinstance(child, HmacAttribute) and child.is_companion)
    ]


def _plaintext_name(attribute: Attribute[Any]) -> str:
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


def _plaintext_to_dynamodb(attribute: Attribute[Any], value: Any) -> Dict[str, Any]:
    if isinstance(attribute, EncryptedAttribute):
        if attribute.type_ is str:
            return {"S": value}
        if isinstance(attribute.type_, Attribute):
            return {attribute.type_.attr_type: attribute.type_.serialize(value)}
        if isinstance(value, (datetime, date)):
            return {"S": value.isoformat()}
        return _to_dynamodb(value)
    map_class = _map_list(attribute)
    if map_class is not None:
        return {"L": [_plaintext_to_dynamodb(map_class(), element) for element in value]}
    if isinstance(attribute, EncryptedMapAttribute):
        out = {}
        for name, child in _map_fields(type(attribute)):
            element = value.attribute_values.get(name)
            if element is not None:
                out[_plaintext_name(child)] = _plaintext_to_dynamodb(child, element)
        return {"M": out}
    return {attribute.attr_type: attribute.serialize(value)}


# -- shapes -------------------------------------------------------------------------------------


def _as_dynamodb_json(item: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """``item`` normalized as botocore's DynamoDB JSON, or None if it is not DynamoDB JSON."""
    out: Dict[str, Any] = {}
    for name, value in item.items():
        if not (type(value) is dict or isinstance(value, abc.Mapping)) or len(value) != 1:
            return None
        kind = next(iter(value))
        if kind in _SCALARS or (kind == "B" and type(value[kind]) is bytes):
            out[str(name)] = value
        elif kind in _TYPES:
            out[str(name)] = _normalize(value)
        else:
            return None
    return out if out else None


def _to_dynamodb_item(
    item: Any, shape: Shape, where: str, error: type[StashError]
) -> Tuple[Dict[str, Any], bool]:
    if not isinstance(item, abc.Mapping):
        raise error(f"{where}: an item is a mapping of attribute names, not a {type(item).__name__}")
    try:
        if shape != "document":
            as_json = _as_dynamodb_json(item)
            if as_json is not None:
                return as_json, True
            if shape == "dynamodb" and item:
                raise TypeError("not DynamoDB JSON")
            if shape == "dynamodb":
                return {}, True
        return {str(name): _to_dynamodb(value) for name, value in item.items()}, False
    except (TypeError, ValueError):
        kind = "DynamoDB JSON" if shape == "dynamodb" else "item"
        raise error(f"{where}: the item is not valid {kind} data") from None


def _normalize(av: Mapping[str, Any]) -> Dict[str, Any]:
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
        return {kind: {k: _normalize(v) for k, v in value.items()}}
    if kind == "L":
        if not isinstance(value, list):
            raise TypeError("L is not a list")
        return {kind: [_normalize(v) for v in value]}
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


def _to_dynamodb(value: Any) -> Dict[str, Any]:
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
        return {"M": {str(k): _to_dynamodb(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [_to_dynamodb(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        if all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        if all(isinstance(v, (int, Decimal, float)) and not isinstance(v, bool) for v in value):
            return {"NS": [str(v) for v in value]}
        return {"BS": [_bytes(v) for v in value]}
    if isinstance(value, (datetime, date)):
        return {"S": value.isoformat()}
    return {"B": _bytes(value)}


def _from_dynamodb(av: Mapping[str, Any]) -> Any:
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
        return {k: _from_dynamodb(v) for k, v in value.items()}
    if kind == "L":
        return [_from_dynamodb(v) for v in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {Decimal(v) for v in value}
    if kind == "BS":
        return {_bytes(v) for v in value}
    raise TypeError(f"unknown DynamoDB type {kind!r}")


def _to_document_item(item: Dict[str, Any]) -> Dict[str, Any]:
    return {name: _from_dynamodb(value) for name, value in item.items()}

