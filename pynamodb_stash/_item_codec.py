"""Whole items: a model instance sealed into a stored item (:func:`serialize_item`), and a stored item
opened into an instance (:func:`fill`, :func:`load`), nested maps and lists of maps included, every
encrypted value through :class:`~pynamodb_stash._fields.FieldRuntime`'s one seal and one open.

PynamoDB's generic loops would call ``EncryptedAttribute.serialize``/``deserialize``, which see only the
value. These replace them for encrypted models (installed through ``_pynamodb``), with the same
semantics for plain attributes, and seal each encrypted value to the item's primary key (read back
from the serialized item, so the reader binds exactly what the writer bound).
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
)

from pynamodb.attributes import Attribute, ListAttribute, MapAttribute
from pynamodb.constants import BINARY, NULL, STRING
from pynamodb.exceptions import AttributeNullError
from pynamodb.models import Model

from . import _audit, _crypto, _pynamodb
from ._attributes import EncryptedAttribute, EncryptedMapAttribute, HmacAttribute
from ._binding import instance_keyring, raw_keyring
from ._fields import MODEL_READ, ReadMode, Runtime, runtime
from ._layout import Layout, layout, nested_kind
from ._plain_values import to_dynamodb_item
from ._wire import MAX_ITEM_SIZE, item_size, list_positions
from .exceptions import DecryptionError, EncryptionError, StashError, report_error, reporting

if TYPE_CHECKING:
    from ._model import EncryptedModel

_M = TypeVar("_M", bound="EncryptedModel")


def serialize_plain(
    attribute: Attribute[Any], name: str, value: Any, container: bool, null_check: bool
) -> Optional[Dict[str, Any]]:
    """One plain attribute as PynamoDB's container serialization writes it (None: not stored)."""
    try:
        if isinstance(value, MapAttribute) and not value.validate(null_check=null_check):
            raise ValueError(f"Attribute '{name}' is not correctly typed")
        if value is None:
            serialized = None
        elif container:
            serialized = attribute.serialize(value, null_check=null_check)  # type: ignore[call-arg]
        else:
            serialized = attribute.serialize(value)
    except AttributeNullError as exc:
        exc.prepend_path(name)
        raise
    if serialized is None:
        if null_check and not attribute.null:
            raise AttributeNullError(name)
        return None
    return {attribute.attr_type: serialized}


def seal_nested(
    runtime: Runtime,
    map_class: type[EncryptedMapAttribute],
    is_list: bool,
    value: Any,
    path: str,
    item_key: bytes,
    null_check: bool,
    indices: Tuple[int, ...] = (),
) -> Dict[str, Any]:
    """A map (or a list of maps) of ``map_class`` as stored, its encrypted fields sealed to ``path``."""
    if is_list:
        if not isinstance(value, (list, tuple)):
            raise EncryptionError(f"{path}: expected a list of {map_class.__name__}")
        return {"L": [
            seal_nested(runtime, map_class, False, element, path + "[]", item_key, null_check, (*indices, i))
            for i, element in enumerate(value)
        ]}
    if isinstance(value, Mapping) and not isinstance(value, MapAttribute):
        value = map_class(**value)
    if not isinstance(value, map_class):
        raise EncryptionError(f"{path}: expected {map_class.__name__}, got {type(value).__name__}")
    values = value.attribute_values
    out: Dict[str, Any] = {}
    for name, attribute in map_class.get_attributes().items():
        if isinstance(attribute, HmacAttribute) and attribute.is_companion:
            continue
        element = values.get(name)
        if isinstance(attribute, EncryptedAttribute):
            field = runtime.by_path[f"{path}.{attribute.logical_name}"]
            if field.is_absent(element):
                if null_check and not attribute.null:
                    raise AttributeNullError(f"{path}.{name}")
                continue
            field.write(out, field.encode(element), item_key, list_positions(indices))
            continue
        inner = nested_kind(attribute)
        if inner is not None:
            if element is None:
                if null_check and not attribute.null:
                    raise AttributeNullError(f"{path}.{name}")
                continue
            is_inner_list = isinstance(attribute, ListAttribute)
            out[attribute.attr_name] = seal_nested(
                runtime, inner, is_inner_list, element, f"{path}.{attribute.attr_name}", item_key, null_check, indices
            )
            continue
        serialized = serialize_plain(
            attribute, name, element, isinstance(attribute, (ListAttribute, MapAttribute)), null_check
        )
        if serialized is not None:
            out[attribute.attr_name] = serialized
    return {"M": out}


def open_nested(
    runtime: Runtime,
    map_class: type[EncryptedMapAttribute],
    is_list: bool,
    stored: Dict[str, Any],
    path: str,
    item_key: Optional[bytes],
    read: ReadMode,
    indices: Tuple[int, ...] = (),
) -> Any:
    """The inverse of :func:`seal_nested`: map instances with their fields opened by
    :meth:`FieldRuntime.read`."""
    if is_list:
        elements = stored.get("L")
        if not isinstance(elements, list):
            raise DecryptionError(f"{path}: the stored value is not a list")
        return [
            open_nested(runtime, map_class, False, element, path + "[]", item_key, read, (*indices, i))
            for i, element in enumerate(elements)
        ]
    raw = stored.get("M")
    if not isinstance(raw, dict):
        raise DecryptionError(f"{path}: the stored value is not a map")
    instance = _pynamodb.new_map_instance(map_class)
    values = instance.attribute_values
    for name, attribute in map_class.get_attributes().items():
        if isinstance(attribute, HmacAttribute) and attribute.is_companion:
            continue
        if isinstance(attribute, EncryptedAttribute):
            field = runtime.by_path[f"{path}.{attribute.logical_name}"]
            field.read(raw, item_key, read, values, list_positions(indices))
            continue
        element = raw.get(attribute.attr_name)
        if not element or NULL in element:
            continue
        inner = nested_kind(attribute)
        if inner is not None:
            values[name] = open_nested(
                runtime, inner, isinstance(attribute, ListAttribute), element,
                f"{path}.{attribute.attr_name}", item_key, read, indices,
            )
        else:
            setattr(instance, name, attribute.deserialize(attribute.get_value(element)))
    return instance


@reporting
def serialize_item(instance: EncryptedModel, null_check: bool = True) -> Dict[str, Dict[str, Any]]:
    """The stored item of ``instance`` (PynamoDB's ``serialize``): plain attributes as PynamoDB writes
    them, encrypted ones sealed to the item's primary key.

    :raises EncryptionError: for a value that is not of its declared type, an item without its primary
        key, or one over 400 KB once encrypted (code ``item_too_large``).
    :raises AttributeNullError: (PynamoDB's) for a missing required value.
    """
    plan = layout(type(instance))
    values = instance.attribute_values
    item: Dict[str, Dict[str, Any]] = {}
    for name, attribute, stored, attr_type, direct, container in plan.plain:
        value = values.get(name) if direct else getattr(instance, name)
        if value is None or container or type(value) is MapAttribute:
            serialized = serialize_plain(attribute, name, value, container, null_check)
            if serialized is not None:
                item[stored] = serialized
            continue
        attr_value = attribute.serialize(value)  # the common case of serialize_plain, inline: it is hot
        if attr_value is not None:
            item[stored] = {attr_type: attr_value}
        elif null_check and not attribute.null:
            raise AttributeNullError(name)
    if not plan.fields and not plan.nested:
        return item

    bound = runtime(type(instance), instance_keyring(instance, EncryptionError))
    pending = []
    encrypted = 0
    for field in bound.fields:
        value = values.get(field.name)
        if value is None or (field.absent is not None and field.absent(value)):  # nothing to store
            if null_check and not field.null:
                raise AttributeNullError(field.name)
            digest = values.get(field.hmac_python) if field.is_key and field.hmac_python else None
            if digest is not None:  # a key read back as a bare HMAC (a KEYS_ONLY index result)
                item[field.hmac] = {STRING: digest}  # type: ignore[index]
            continue
        encoded = field.encode(value)
        field.write_key(item, encoded)
        pending.append((field, encoded))
        encrypted += len(encoded[0])
    nested = [(stored, cls, is_list, getattr(instance, name)) for name, _, stored, cls, is_list in plan.nested]
    if not pending and all(value is None for *_, value in nested):
        return item
    item_key = plan.item_key(item)
    if item_key is None:
        raise EncryptionError(f"{type(instance).__name__}: an item needs its primary key to be encrypted")
    nonces = _crypto.Nonces(len(pending))
    for field, encoded in pending:
        field.write(item, encoded, item_key, nonces=nonces)
    if _audit.wanted():
        written = [field.name for field, _ in pending]
        written += [name for name, *_ in plan.nested if values.get(name) is not None]
        _audit.record("encrypt", type(instance).__name__, bound.table, written, (bound.keyring.primary_key_id,))
    for (name, attribute, *_), (stored, map_class, is_list, value) in zip(plan.nested, nested):
        if value is None:
            if null_check and not attribute.null:
                raise AttributeNullError(name)
            continue
        item[stored] = seal_nested(bound, map_class, is_list, value, stored, item_key, null_check)
    # Encryption adds ~41 bytes a value; the size is worth counting only when encrypted values are
    # large (counting costs ~5% of a small item's round trip). Otherwise DynamoDB's own check applies.
    size = item_size(item) if encrypted > 32 * 1024 or (plan.nested and nested) else 0
    if size > MAX_ITEM_SIZE:
        sizes = {field.name: item_size({field.source: item[field.source]}) for field, _ in pending}
        largest = max(sizes, key=sizes.__getitem__) if sizes else "none"
        growth = sum(sizes.values()) - encrypted
        raise EncryptionError(
            f"{type(instance).__name__}: the item would be {size} bytes once encrypted (encryption adds "
            f"{growth}), over DynamoDB's {MAX_ITEM_SIZE} (400 KB); its largest encrypted attribute is "
            f"{largest} ({sizes.get(largest, 0)} bytes)",
            code="item_too_large",
        )
    return item


def fill(instance: EncryptedModel, attribute_values: Dict[str, Dict[str, Any]], read: ReadMode) -> None:
    """Set the instance's values from a stored item, its encrypted fields opened as ``read`` says."""
    plan = layout(type(instance))
    instance.attribute_values = values = {}
    _pynamodb.set_discriminator_and_defaults(instance, defaults=plan.has_defaults)
    for name, attribute, stored, _, direct, _ in plan.plain if read.plain else plan.compound_parts:
        stored_value = attribute_values.get(stored)
        if stored_value and NULL not in stored_value:
            value = attribute.deserialize(attribute.get_value(stored_value))
            if direct:
                values[name] = value
            else:
                setattr(instance, name, value)
    if not plan.fields and not plan.nested:
        return
    bound = runtime(type(instance), raw_keyring(type(instance), attribute_values))
    names: Optional[List[str]] = [] if _audit.wanted() else None
    keys: List[str] = []
    try:
        decrypt_into(instance, plan, bound, attribute_values, values, names, keys, read)
    except StashError as error:
        if names is not None:
            _audit.record("decrypt", type(instance).__name__, bound.table, names, keys, outcome=error.code)
        raise
    if names:
        _audit.record("decrypt", type(instance).__name__, bound.table, names, keys)


@reporting
def deserialize_item(instance: EncryptedModel, attribute_values: Dict[str, Dict[str, Any]]) -> None:
    """PynamoDB's ``_container_deserialize`` for encrypted models (a refresh, ``from_dynamodb_dict``):
    :func:`fill` as the model's own reads do.

    :raises DecryptionError: as :meth:`FieldRuntime.read` says.
    """
    fill(instance, attribute_values, MODEL_READ)


def decrypt_into(
    instance: EncryptedModel, plan: Layout, bound: Runtime, attribute_values: Dict[str, Dict[str, Any]],
    values: Dict[str, Any], names: Optional[List[str]], keys: List[str], read: ReadMode,
) -> None:
    """Open the item's encrypted values into ``values``; name them in ``names`` when auditing."""
    item_key = plan.item_key(attribute_values, DecryptionError)
    for name, _, stored, map_class, is_list in plan.nested:
        stored_value = attribute_values.get(stored)
        if not stored_value or NULL in stored_value:
            continue
        values[name] = open_nested(bound, map_class, is_list, stored_value, stored, item_key, read)
        if names is not None:
            names.append(name)
    for field in bound.fields:
        if field.read(attribute_values, item_key, read, values) and names is not None:
            names.append(field.name)
            keys.append(field.key_id(attribute_values[field.source][BINARY]))
    for name, compound in instance._stash.compounds.items():
        stored_compound = values.get(name)
        if stored_compound is None or all(getattr(instance, part) is None for part in compound.parts):
            continue  # none of its parts read (a KEYS_ONLY index): nothing to check it against
        try:
            computed = getattr(instance, name)
        except EncryptionError:  # a part with no equality form (a NaN): it cannot match either
            computed = None
        if computed is None or not _crypto.digests_equal(computed, stored_compound):
            raise DecryptionError(
                f"{type(instance).__name__}.{name}: the stored compound HMAC does not match the item "
                "(read a compound with all its parts)",
                code="hmac_mismatch",
            )


def instantiate(cls: type[_M], attribute_values: Dict[str, Dict[str, Any]]) -> _M:
    """An instance from a stored item, as read by the model's own operations (PynamoDB's
    ``_instantiate``: from_raw_data for get, query, scan, batch_get, TransactGet, which would otherwise
    build it with the base class's deserializer, past the model's).

    :raises DecryptionError: as :meth:`FieldRuntime.read` says (reported to the error handler).
    """
    try:
        instance = new_instance(cls, attribute_values)
        fill(instance, attribute_values, MODEL_READ)
    except StashError as error:
        report_error(error)
        raise
    return instance


@reporting
def load(
    cls: type[_M],
    attribute_values: Dict[str, Dict[str, Any]],
    *,
    whole_item: bool,
    policy: Optional[str] = None,
    plain: bool = True,
) -> _M:
    """An instance from a stored item, as :meth:`from_raw_data` makes it, read as the caller says.

    :param whole_item: the item was read whole (a stream image, a raw item, a full scan): an HMAC
        without its value is then always refused.
    :param policy: a plaintext policy other than ``Meta.plaintext_policy`` (the migration tools).
    :param plain: also read the plain attributes (else only those a compound HMAC needs: for readers
        of the encrypted values alone, which pass the plain ones through as stored).
    :raises ValueError: (PynamoDB's) for a discriminator naming a class that is not a ``cls``.
    :raises DecryptionError: as :meth:`FieldRuntime.read` says.
    """
    instance = new_instance(cls, attribute_values)
    fill(instance, attribute_values, ReadMode(policy, whole_item, plain))
    return instance


def new_instance(cls: type[_M], attribute_values: Dict[str, Dict[str, Any]]) -> _M:
    """An empty instance of the class the item's discriminator names (``cls`` without one).

    :raises ValueError: (PynamoDB's) for a discriminator naming a class that is not a ``cls``.
    """
    stored_cls = _pynamodb.discriminator_class(cls, attribute_values)
    if stored_cls and not issubclass(stored_cls, cls):
        raise ValueError(f"Cannot instantiate a {cls.__name__} from the returned class: {stored_cls.__name__}")
    model = stored_cls or cls
    # Model.__init__ only fills attribute_values, which fill() starts afresh.
    instance: _M = object.__new__(model) if model.__init__ is Model.__init__ else model(_user_instantiated=False)
    return instance


def load_whole_item(model: type[_M], raw: Dict[str, Any], where: str, *, plain: bool = True) -> _M:
    """:func:`load` of an item read whole (a raw item, a stream image), which must hold its primary key.

    :raises DecryptionError: if it lacks its primary key, does not fit the model or does not verify; the
        message names ``where`` and the attribute, never a value.
    """
    plan = layout(model)
    for key in (plan.hash_key, plan.range_key):
        if key is not None and key[0] not in raw:
            raise DecryptionError(f"{where}: the item has no {key[0]!r}, part of its primary key")
    try:
        return load(model, raw, whole_item=True, plain=plain)
    except StashError:
        raise
    except Exception as exc:
        raise DecryptionError(f"{where}: the item does not fit the model ({type(exc).__name__})") from None


@reporting
def from_stream_image(model: type[_M], image: Mapping[str, Any]) -> _M:
    """A model instance from a DynamoDB Streams ``NewImage`` or ``OldImage`` (DynamoDB JSON), read as a
    whole item (as ``decrypt_item`` reads one).

    :raises DecryptionError: if the image is not DynamoDB JSON, lacks the primary key, or does not
        verify.
    """
    where = f"from_stream_image({model.__name__})"
    raw, _ = to_dynamodb_item(image, "dynamodb", where, DecryptionError)
    return load_whole_item(model, raw, where)
