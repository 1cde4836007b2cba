"""Encrypt and decrypt raw items, for code that reads the table without PynamoDB.

A Lambda consuming DynamoDB Streams, a boto3 script or an S3 export job holds items in one of two
shapes, and every function here accepts and returns both:

- DynamoDB JSON, as ``boto3.client("dynamodb")``, Streams images and exports have it:
  ``{"pk": {"S": "user#1"}, "age": {"N": "42"}}``;
- document values, as the boto3 resource (``Table``) has it: ``{"pk": "user#1", "age": Decimal(42)}``.

A plaintext item names encrypted attributes by their base name (``email``); the stored item holds
``email__source`` and ``email__hmac`` instead. Attributes the model does not encrypt pass through
unchanged, declared or not.

The single-item functions and the bulk ones run the same code (:class:`_Encrypter`, :class:`_Decrypter`):
a bulk call looks up once what does not depend on the item (the schema view, the bound fields), and is
one audit operation, whose events count all its items.
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
from ._binding import audit_operation, raw_keyring, tenant_attribute
from ._codecs import safe_reason
from ._fields import FieldRuntime, Runtime, runtime
from ._item_codec import load_whole_item, seal_nested
from ._layout import Layout, layout, map_list, nested_kind
from ._model import EncryptedModel
from ._plain_values import (
    Shape,
    document_plaintext,
    plaintext,
    plaintext_to_dynamodb,
    split_botocore,
    to_document_item,
    to_dynamodb_item,
)
from .exceptions import DecryptionError, EncryptionError, StashError, report_error, reporting

_M = TypeVar("_M", bound=EncryptedModel)
_V = TypeVar("_V")
assert all("__" in suffix for suffix in RESERVED_SUFFIXES), "_check_names looks for __ before endswith()"


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


def _result(value: Optional[Dict[str, Any]], error: Optional[StashError]) -> ItemResult[Dict[str, Any]]:
    """``ItemResult(value=value, error=error)``, built without the frozen dataclass's ``__init__`` (two
    ``object.__setattr__`` calls behind a keyword call: half the cost, once per item of a bulk call)."""
    result: ItemResult[Dict[str, Any]] = object.__new__(ItemResult)
    fields = vars(result)
    fields["value"] = value
    fields["error"] = error
    return result


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
    return _Encrypter(model, shape)(item)


@reporting
def decrypt_item(model: type[EncryptedModel], item: Mapping[str, Any], *, shape: Shape = "auto") -> Dict[str, Any]:
    """The plaintext item: encrypted attributes decrypted, verified and under their base names.

    The inverse of :func:`encrypt_item`, in the shape given. In DynamoDB JSON, decrypted values are
    written as ``encrypt_item`` reads them (datetimes and dates as ISO 8601 ``S``).

    :raises DecryptionError: if a value does not verify, the primary key is missing, or a stored value
        has the wrong type. :raises KeyNotFoundError: for an unknown key id.
    """
    return _Decrypter(model, shape)(item)


@reporting
def bulk_encrypt_items(
    model: type[EncryptedModel], items: Iterable[Mapping[str, Any]], *, shape: Shape = "auto"
) -> List[ItemResult[Dict[str, Any]]]:
    """:func:`encrypt_item` for each item; one result per item, in order, each a value or its own error."""
    return _each(model, _Encrypter(model, shape), items, EncryptionError)


def bulk_decrypt_items(
    model: type[EncryptedModel], items: Iterable[Mapping[str, Any]], *, shape: Shape = "auto"
) -> List[ItemResult[Dict[str, Any]]]:
    """:func:`decrypt_item` for each item; one result per item, in order, each a value or its own error.

    One audit operation: its items' decryptions are one ``decrypt`` event (see docs/audit.md)."""
    return _each(model, _Decrypter(model, shape), items, DecryptionError)


def _each(
    model: type[EncryptedModel],
    operation: Callable[[Any], Dict[str, Any]],
    items: Iterable[Mapping[str, Any]],
    unexpected: type[StashError],
) -> List[ItemResult[Dict[str, Any]]]:
    """``operation`` on each item, as one audit operation; an item's error is its result (reported to the
    error handler once, as the single-item function would), and never stops the others."""
    results: List[ItemResult[Dict[str, Any]]] = []
    append = results.append
    with audit_operation(model):
        for item in items:
            try:
                append(_result(operation(item), None))
            except StashError as error:
                report_error(error)
                append(_result(None, error))
            except Exception as exc:  # never expected; one item's failure must not lose the others
                name = "encrypt_item" if unexpected is EncryptionError else "decrypt_item"
                append(_result(None, unexpected(f"{name}({model.__name__}): unexpected {type(exc).__name__}")))
    return results


# -- one item -----------------------------------------------------------------------------------------


class _Encrypter:
    """:func:`encrypt_item` of one model and shape, for one item or many: the fields bound to the model's
    keyring are looked up once (an item naming a tenant's keyring binds its own)."""

    __slots__ = ("model", "shape", "where", "view", "_bound")

    def __init__(self, model: type[EncryptedModel], shape: Shape) -> None:
        self.model = model
        self.shape = shape
        self.where = f"encrypt_item({model.__name__})"
        self.view = _botocore_view(model, shape)
        self._bound: Dict[type[EncryptedModel], Tuple[Runtime, Tuple[_Step, ...]]] = {}

    def __call__(self, item: Mapping[str, Any]) -> Dict[str, Any]:
        where = self.where
        model, fast = self.model, self.view
        given: Dict[str, Any] = {}
        # The common case, in one pass: the plain attributes (the stored item to be), the values to encrypt.
        botocore = split_botocore(item, fast.field_names, given) if fast is not None and type(item) is dict else None
        if fast is not None and botocore is not None:
            view = fast
            _check_names(where, view, item)
            stored, as_json = botocore, True
        else:
            raw, as_json = to_dynamodb_item(item, self.shape, where, EncryptionError)
            model = _stored_class(model, raw, where, EncryptionError)
            view = _view(model)
            _check_names(where, view, raw)
            # raw is this call's own copy: it becomes the stored item, its encrypted attributes taken out.
            given = {name: raw.pop(name) for name in view.field_names.intersection(raw)}
            stored = raw
        bound, steps = self._bound.get(model) or self._bind(model, view, stored)  # a tenant is a plain attribute
        try:
            pending: List[Tuple[Optional[FieldRuntime], Attribute[Any], Any]] = []
            for name, attribute, field, is_str in steps:
                value = given.get(name)
                if value is None or "NULL" in value:
                    continue
                if field is None:  # an encrypted map, or a list of them
                    pending.append((None, attribute, plaintext(attribute, value)))
                    continue
                if as_json and is_str and "S" in value:
                    value_in = value["S"]  # plaintext()'s first case, inline: it is the common one
                else:
                    # A document value keeps its Python type, so the model's type rules apply to it (a
                    # float is no Decimal); only the wire forms (Decimal numbers, ISO text, Binary) are
                    # converted.
                    try:
                        value_in = plaintext(attribute, value) if as_json else document_plaintext(
                            attribute, item[name]  # type: ignore[arg-type]
                        )
                    except Exception as exc:  # the same words as the model's refusal, naming the attribute
                        raise EncryptionError(f"{field.where}: encrypting failed: {safe_reason(exc)}") from None
                if field.is_absent(value_in):
                    continue
                encoded = field.encode(value_in)
                field.write_key(stored, encoded)
                pending.append((field, attribute, encoded))
            item_key = view.layout.item_key(stored)
            if item_key is None:
                raise EncryptionError(f"{where}: the item lacks its primary key, which encryption binds to")
            for field, attribute, value in pending:  # value: a field's encode() result, or a map's plaintext
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

    def _bind(
        self, model: type[EncryptedModel], view: _View, raw: Dict[str, Any]
    ) -> Tuple[Runtime, Tuple[_Step, ...]]:
        if tenant_attribute(model) is not None:  # the item names its tenant, whose keyring it is sealed with
            bound = runtime(model, raw_keyring(model, raw, EncryptionError))
            return bound, view.steps(bound)
        bound = runtime(model)
        self._bound[model] = found = (bound, view.steps(bound))
        return found


def _check_names(where: str, view: _View, names: Iterable[str]) -> None:
    """Refuse a plaintext item's names that encryption would store as given, beside what it writes.

    :raises EncryptionError: for a Python name stored under another name, or a reserved suffix.
    """
    aliases = view.aliases
    for name in names:
        if aliases and name in aliases:  # it would pass through, in plaintext, beside the real name
            raise EncryptionError(f"{where}: {name!r} is stored under another name; use that name in items")
        if "__" in name and name.endswith(RESERVED_SUFFIXES):  # stored as given: an HMAC answers lookups
            raise EncryptionError(
                f"{where}: {name!r} ends in a reserved suffix (__source, __hmac); a plaintext item names "
                "encrypted attributes by their base name, and encryption writes their stored form",
                code="reserved_name",
            )


class _Decrypter:
    """:func:`decrypt_item` of one model and shape, for one item or many."""

    __slots__ = ("model", "shape", "where", "view")

    def __init__(self, model: type[EncryptedModel], shape: Shape) -> None:
        self.model = model
        self.shape = shape
        self.where = f"decrypt_item({model.__name__})"
        self.view = _botocore_view(model, shape)

    def __call__(self, item: Mapping[str, Any]) -> Dict[str, Any]:
        where = self.where
        model, fast = self.model, self.view
        # The common case: the item read as it is, its plain attributes copied in the same pass.
        botocore = split_botocore(item, fast.stored_names) if fast is not None and type(item) is dict else None
        if fast is not None and botocore is not None:
            plain, as_json, view = botocore, True, fast
            instance = load_whole_item(model, item, where, plain=False)  # type: ignore[arg-type]
        else:
            raw, as_json = to_dynamodb_item(item, self.shape, where, DecryptionError)
            model = _stored_class(model, raw, where, DecryptionError)
            instance = load_whole_item(model, raw, where, plain=False)  # the model's read of a whole item
            view = _view(model)
            plain = {name: value for name, value in raw.items() if name not in view.stored_names}
        values = instance.attribute_values
        try:
            for name, python_name, attribute in view.decrypted:
                value = values.get(python_name)
                if value is not None:  # attribute None: a str, plaintext_to_dynamodb()'s first case, inline
                    plain[name] = {"S": value} if attribute is None else plaintext_to_dynamodb(attribute, value)
        except StashError:
            raise
        except Exception as exc:
            raise DecryptionError(f"{where}: the item does not fit the model ({type(exc).__name__})") from None
        return plain if as_json else to_document_item(plain)


# -- the model's encrypted attributes ---------------------------------------------------------------

_Step = Tuple[str, Attribute[Any], Optional[FieldRuntime], bool]
"""An encrypted attribute as :class:`_Encrypter` writes it: its plaintext name, the attribute, its bound
field (None for an encrypted map or a list of them) and whether its declared type is str."""


class _View:
    """The raw-item API's view of one model class, computed once (kept in its ``_stash.item_schema``)."""

    __slots__ = (
        "layout", "fields", "field_names", "stored_names", "aliases", "decrypted",
        "discriminated", "_steps",
    )

    def __init__(self, model: type[EncryptedModel]) -> None:
        self.layout: Layout = layout(model)
        fields: Dict[str, Tuple[str, Attribute[Any]]] = {}
        names: set[str] = set()
        for python_name, attribute in model.get_attributes().items():
            if isinstance(attribute, EncryptedAttribute):
                fields[attribute.logical_name] = (python_name, attribute)
                names.update((attribute.attr_name, attribute.logical_name))
                if attribute.equality:
                    names.add(attribute.logical_name + HMAC_SUFFIX)
            elif nested_kind(attribute) is not None:
                fields[attribute.attr_name] = (python_name, attribute)
                names.add(attribute.attr_name)
        self.fields = fields
        """Encrypted attributes and encrypted maps (or lists of them), with their Python names, by the name
        a plaintext item uses."""
        self.field_names = frozenset(fields)
        self.stored_names = frozenset(names)
        """The names an encrypted attribute may be stored under: ``x__source``, ``x__hmac``, encrypted maps,
        and ``x`` (a plaintext left from before encryption, which only the model's plaintext policy reads)."""
        self.aliases = frozenset(name for name, field in model._stash.fields.items() if name != field.logical_name)
        """Python names of encrypted attributes that differ from their stored base name (``attr_name=``)."""
        self.decrypted: Tuple[Tuple[str, str, Optional[Attribute[Any]]], ...] = tuple(
            (name, python_name, None if _is_str(attribute) else attribute)
            for name, (python_name, attribute) in fields.items()
        )
        """What a decrypted item holds, by plaintext and Python name, and the attribute that converts its
        value (None for a str, written back as ``S``)."""
        self.discriminated = _pynamodb.discriminator_attribute(model) is not None
        self._steps: Dict[int, Tuple[Runtime, Tuple[_Step, ...]]] = {}

    def steps(self, bound: Runtime) -> Tuple[_Step, ...]:
        """The encrypted attributes with their fields bound as ``bound`` binds them, in declaration order."""
        cached = self._steps.get(id(bound))
        if cached is not None and cached[0] is bound:
            return cached[1]
        steps = tuple(
            (name, attribute, bound.by_path[attribute.logical_name] if isinstance(attribute, EncryptedAttribute)
             else None, _is_str(attribute))
            for name, (_, attribute) in self.fields.items()
        )
        if len(self._steps) >= 256:  # as many as the model keeps runtimes (tenants' keyrings)
            self._steps.clear()
        self._steps[id(bound)] = (bound, steps)
        return steps


def _view(model: type[EncryptedModel]) -> _View:
    view: Optional[_View] = model._stash.item_schema
    if view is None:
        view = model._stash.item_schema = _View(model)
    return view


def _botocore_view(model: type[EncryptedModel], shape: Shape) -> Optional[_View]:
    """The model's view when its items are first read as botocore's DynamoDB JSON (:func:`split_botocore`,
    one pass): their shape may be DynamoDB JSON, and the model has no discriminator, so that their class is
    known. None: the general path, for every item."""
    if shape == "document" or not (isinstance(model, type) and issubclass(model, EncryptedModel)):
        return None
    view = _view(model)
    return None if view.discriminated else view


def _is_str(attribute: Attribute[Any]) -> bool:
    return isinstance(attribute, EncryptedAttribute) and attribute.type_ is str


def _stored_class(
    model: type[EncryptedModel], raw: Dict[str, Any], where: str, error: type[StashError]
) -> type[EncryptedModel]:
    """The polymorphic subclass an item's discriminator names, whose fields it must encrypt too."""
    if not _view(model).discriminated:
        return model
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
