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

from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, Iterable, List, Mapping, Optional, Tuple, TypeVar

from pynamodb.attributes import Attribute

from . import _pynamodb
from ._attributes import (
    HMAC_SUFFIX,
    RESERVED_SUFFIXES,
    EncryptedAttribute,
    EncryptedMapAttribute,
)
from ._binding import raw_keyring
from ._codecs import safe_reason
from ._fields import runtime
from ._item_codec import load_whole_item, seal_nested
from ._layout import layout, map_list, nested_kind
from ._model import EncryptedModel
from ._plain_values import (
    Shape,
    document_plaintext,
    plaintext,
    plaintext_to_dynamodb,
    to_document_item,
    to_dynamodb_item,
)
from .exceptions import DecryptionError, EncryptionError, StashError, reporting

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
    raw, as_json = to_dynamodb_item(item, shape, where, EncryptionError)
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
    bound = runtime(model, raw_keyring(model, raw, EncryptionError))
    stored = {name: value for name, value in raw.items() if name not in fields}
    try:
        pending: List[Tuple[Attribute[Any], Any, Any]] = []
        for name, (_, attribute) in fields.items():
            value = raw.get(name)
            if value is None or "NULL" in value:
                continue
            if isinstance(attribute, EncryptedAttribute):
                field = bound.by_path[attribute.logical_name]
                # A document value keeps its Python type, so the model's type rules apply to it (a float
                # is no Decimal); only the wire forms (Decimal numbers, ISO text, Binary) are converted.
                try:
                    value_in = plaintext(attribute, value) if as_json else document_plaintext(attribute, item[name])
                except Exception as exc:  # the same words as the model's refusal, naming the attribute
                    raise EncryptionError(f"{field.where}: encrypting failed: {safe_reason(exc)}") from None
                if field.is_absent(value_in):
                    continue
                encoded = field.encode(value_in)
                field.write_key(stored, encoded)
                pending.append((attribute, field, encoded))
            else:
                pending.append((attribute, None, plaintext(attribute, value)))
        item_key = layout(model).item_key(stored)
        if item_key is None:
            raise EncryptionError(f"{where}: the item lacks its primary key, which encryption binds to")
        for attribute, field, value in pending:  # value: a field's encode() result, or a map's plaintext
            if field is not None:
                field.write(stored, value, item_key)
            else:
                map_class, is_list = _nested(attribute)
                stored[attribute.attr_name] = seal_nested(
                    bound, map_class, is_list, value, attribute.attr_name, item_key, True
                )
    except StashError:
        raise
    except Exception as exc:  # PynamoDB's and the codecs' messages may quote values
        raise EncryptionError(f"{where}: the item does not fit the model ({type(exc).__name__})") from None
    return stored if as_json else to_document_item(stored)


@reporting
def decrypt_item(model: type[EncryptedModel], item: Mapping[str, Any], *, shape: Shape = "auto") -> Dict[str, Any]:
    """The plaintext item: encrypted attributes decrypted, verified and under their base names.

    The inverse of :func:`encrypt_item`, in the shape given. In DynamoDB JSON, decrypted values are
    written as ``encrypt_item`` reads them (datetimes and dates as ISO 8601 ``S``).

    :raises DecryptionError: if a value does not verify, the primary key is missing, or a stored value
        has the wrong type. :raises KeyNotFoundError: for an unknown key id.
    """
    where = f"decrypt_item({model.__name__})"
    raw, as_json = to_dynamodb_item(item, shape, where, DecryptionError)
    model = _stored_class(model, raw, where, DecryptionError)
    instance = load_whole_item(model, raw, where, plain=False)  # the model's read of a whole item
    values = instance.attribute_values
    encrypted_names = _stored_names(model)
    plain = {name: value for name, value in raw.items() if name not in encrypted_names}
    try:
        for name, (python_name, attribute) in _top_level_encrypted(model).items():
            value = values.get(python_name)
            if value is not None:
                plain[name] = plaintext_to_dynamodb(attribute, value)
    except StashError:
        raise
    except Exception as exc:
        raise DecryptionError(f"{where}: the item does not fit the model ({type(exc).__name__})") from None
    return plain if as_json else to_document_item(plain)


@reporting
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
        name for name, field in model._stash.fields.items() if name != field.logical_name
    )


_Schema = Tuple[Dict[str, Tuple[str, Attribute[Any]]], frozenset[str]]


def _item_schema(model: type[EncryptedModel]) -> _Schema:
    cached: Optional[_Schema] = model._stash.item_schema
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
        elif nested_kind(attribute) is not None:
            found[attribute.attr_name] = (python_name, attribute)
            names.add(attribute.attr_name)
    cached = (found, frozenset(names))
    model._stash.item_schema = cached
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


def _nested(attribute: Attribute[Any]) -> Tuple[type[EncryptedMapAttribute], bool]:
    map_class = map_list(attribute)
    if map_class is not None:
        return map_class, True
    assert isinstance(attribute, EncryptedMapAttribute)
    return type(attribute), False
