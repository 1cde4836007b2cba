"""Update actions on encrypted models: ``x.set(v)``/``x.remove()`` of an encrypted attribute (or map)
expanded into actions on its stored attributes, sealed to the item; plain actions that would touch
encrypted data refused; compound HMACs kept in step; and the 400 KB check of what an update sets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional

from pynamodb.attributes import Attribute
from pynamodb.constants import STRING
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action, RemoveAction, SetAction

from . import _audit, _pynamodb
from ._attributes import (
    HMAC_SUFFIX,
    RESERVED_SUFFIXES,
    SOURCE_SUFFIX,
    EncryptedAttribute,
    EncryptedMapAttribute,
    HmacAttribute,
    PendingEncryptedAction,
    contains_encrypted,
)
from ._binding import instance_keyring
from ._fields import plaintext_policy, runtime
from ._item_codec import seal_nested
from ._keyring import Keyring
from ._layout import layout
from ._wire import MAX_ITEM_SIZE, item_size
from .exceptions import EncryptionError, UnsupportedQueryError

if TYPE_CHECKING:
    from ._model import EncryptedModel


def update(instance: EncryptedModel, actions: List[Action], send: Callable[[List[Action]], Any]) -> Any:
    """Send ``actions``, expanded by :func:`expand`, with ``send`` (PynamoDB's own ``update``).

    :raises UnsupportedQueryError: as :func:`expand` says.
    :raises EncryptionError: with code ``item_too_large`` when the encrypted values the update sets would
        pass 400 KB on their own (before any request), or when DynamoDB refuses the update because the
        item would: the message gives what encryption adds to the values it sets and the largest of them.
    """
    expanded = expand(instance, actions)
    sealed = sealed_sizes(expanded, (entry.stored for entry in layout(type(instance)).nested))
    if sum(sealed.values()) > MAX_ITEM_SIZE:
        raise too_large(instance, actions, sealed, "its encrypted values alone would be")
    try:
        return send(expanded)
    except UpdateError as error:
        if not sealed or "item size" not in (error.cause_response_message or "").lower():
            raise
        raise too_large(instance, actions, sealed, "DynamoDB refused it: the item would be") from None


def sealed_sizes(actions: List[Action], maps: Iterable[str]) -> Dict[str, int]:
    """The stored size of each encrypted value an expanded update sets, by its path (DynamoDB's count):
    ``x__source`` values, and the encrypted maps (top-level names in ``maps``) set whole."""
    sizes: Dict[str, int] = {}
    maps = set(maps)
    for action in actions:
        if not isinstance(action, SetAction) or len(action.values) != 2:
            continue
        path, operand = action.values
        if isinstance(path, Path) and isinstance(operand, Value):
            name = ".".join(path.path)
            if name.endswith(SOURCE_SUFFIX) or name in maps:
                sizes[name] = item_size({name: operand.value})
    return sizes


def too_large(instance: EncryptedModel, actions: List[Action], sealed: Dict[str, int], what: str) -> EncryptionError:
    plaintext = sum(
        len(action.attribute.codec.encode(action.value)) for action in actions
        if isinstance(action, PendingEncryptedAction) and isinstance(action.attribute, EncryptedAttribute)
        and action.value is not None
    )
    largest = max(sealed, key=sealed.__getitem__)
    return EncryptionError(
        f"{type(instance).__name__}: update: {what} over DynamoDB's {MAX_ITEM_SIZE} (400 KB); the encrypted "
        f"values it sets take {sum(sealed.values())} bytes stored (encryption adds about "
        f"{max(sum(sealed.values()) - plaintext, 0)}), the largest {largest} ({sealed[largest]} bytes)",
        code="item_too_large",
    )


def expand(instance: EncryptedModel, actions: List[Action]) -> List[Action]:
    """``actions`` as sent for ``instance``: each ``x.set(v)``/``x.remove()`` of an encrypted attribute or
    map becomes actions on its stored attributes, its value sealed to the item; plain actions pass as
    they are, and compound HMACs follow their parts.

    :raises UnsupportedQueryError: for a plain action on encrypted data (a stored ``__source``/``__hmac``
        name, an encrypted attribute's base name, inside an encrypted map), or an action that belongs to
        another model.
    :raises EncryptionError: for a value that is not of its attribute's declared type.
    """
    if not isinstance(actions, list):
        return actions  # PynamoDB raises its own TypeError
    plan = layout(type(instance))
    if not (plan.fields or plan.nested or instance._stash.compounds) and not any(
        isinstance(action, PendingEncryptedAction) for action in actions
    ):
        return actions  # nothing encrypted: as PynamoDB sends them, and no keyring needed
    bound = runtime(type(instance), instance_keyring(instance, EncryptionError))
    expanded: List[Action] = []
    item_key: Optional[bytes] = None
    for action in actions:
        if not isinstance(action, PendingEncryptedAction):
            target = action.values[0] if getattr(action, "values", None) else None
            if isinstance(target, Path) and not plain_target(instance, target, action):
                raise UnsupportedQueryError(
                    f"{type(instance).__name__}: {'.'.join(target.path)!r} holds encrypted data; update it "
                    "through its EncryptedAttribute's or EncryptedMapAttribute's set()/remove()"
                )
            expanded.append(action)
            continue
        declared = action.attribute
        root = declared.model if isinstance(declared, EncryptedAttribute) else None
        root = root or getattr(declared, "stash_root", None) or getattr(declared, "_stash_root", None)
        if root is None or not isinstance(instance, root):
            # A base model's attribute is fine on a subclass instance (which copies its fields).
            raise UnsupportedQueryError(f"{declared._describe()}: this action belongs to another model")
        path = list(declared.attr_path)
        codec = getattr(declared, "codec", None)
        if action.value is None or (codec is not None and codec.absent is not None and codec.absent(action.value)):
            # set(None), or a value its PynamoDB attribute stores as nothing (an empty set): REMOVE
            expanded.append(RemoveAction(Path(path)))
            if getattr(declared, "equality", False):
                expanded.append(RemoveAction(Path([*path[:-1], declared.logical_name + HMAC_SUFFIX])))
            continue
        if item_key is None:
            item_key = item_key_of(instance)
        if isinstance(declared, EncryptedMapAttribute):
            stored = seal_nested(bound, type(declared), False, action.value, ".".join(path), item_key, True)
            expanded.append(SetAction(Path(path), Value(stored)))
            continue
        legacy = RemoveAction(Path([declared.logical_name]))
        if len(path) == 1 and plaintext_policy(type(instance)) == "read_plaintext" and legacy not in actions:
            # During a migration, a new value also drops the stale plaintext beside it.
            expanded.append(legacy)
        field = bound.by_path[declared.template_path()]
        sealed: Dict[str, Any] = {}
        field.write(sealed, field.encode(action.value), item_key)
        expanded += [SetAction(Path([*path[:-1], name]), Value(stored)) for name, stored in sealed.items()]
    if instance._stash.compounds:
        expanded += compound_actions(instance, actions, bound.keyring)
    written = [
        ".".join(action.attribute.attr_path).replace(SOURCE_SUFFIX, "") for action in actions
        if isinstance(action, PendingEncryptedAction) and action.value is not None
    ]
    if written and _audit.wanted():
        _audit.record("encrypt", type(instance).__name__, bound.table, written, (bound.keyring.primary_key_id,))
    return expanded


def compound_actions(instance: EncryptedModel, actions: List[Action], keyring: Keyring) -> List[Action]:
    """Keep compound HMACs in step with an update of their parts (from this instance's values), under
    the item's ``keyring``."""
    updated: Dict[str, Any] = {}
    unknown: set[str] = set()
    attributes = instance.get_attributes()
    # An encrypted attribute's base name holds only a stale plaintext (removing it is allowed): no part.
    stale_plaintext = {field.logical_name for field in layout(type(instance)).fields}
    for action in actions:
        if isinstance(action, PendingEncryptedAction):
            if isinstance(action.attribute, EncryptedAttribute) and len(action.attribute.attr_path) == 1:
                updated[action.attribute.python_name] = action.value
            continue
        target = action.values[0] if getattr(action, "values", None) else None
        if not isinstance(target, Path) or len(target.path) != 1 or target.path[0] in stale_plaintext:
            continue
        name = _pynamodb.python_name(instance, target.path[0])
        operand = action.values[1] if len(action.values) > 1 else None
        if isinstance(action, RemoveAction):
            updated[name] = None
        elif isinstance(action, SetAction) and isinstance(operand, Value) and name in attributes:
            attribute = attributes[name]
            updated[name] = attribute.deserialize(attribute.get_value(operand.value))
        else:
            unknown.add(name)
    compound_actions: List[Action] = []
    for compound in instance._stash.compounds.values():
        touched = set(compound.parts)
        if touched & unknown:
            raise UnsupportedQueryError(
                f"{compound._describe()}: update its parts with set() or remove(), so that it can follow"
            )
        if not touched & set(updated):
            continue
        parts = tuple(updated[p] if p in updated else getattr(instance, p) for p in compound.parts)
        if any(part is None for part in parts):
            compound_actions.append(RemoveAction(Path([compound.attr_name])))
        else:
            digest = Value({STRING: compound.digest(parts, keyring)})
            compound_actions.append(SetAction(Path([compound.attr_name]), digest))
    return compound_actions


def plain_target(instance: EncryptedModel, target: Path, action: Action) -> bool:
    """Whether a plain update action on ``target`` leaves every encrypted value as it is.

    Refused: paths to ``__source``/``__hmac`` values, to an encrypted attribute's base name (which
    would store a plaintext beside it; removing it is fine), and anything inside an encrypted map
    other than its typed
    plain fields and removing it whole; list positions of encrypted maps are bound into their
    ciphertexts, so no path into such a list is allowed.
    """
    segments = [segment.split("[", 1)[0] for segment in target.path]
    if any(segment.endswith(RESERVED_SUFFIXES) for segment in segments):
        return False
    plan = layout(type(instance))
    if segments[0] in {field.logical_name for field in plan.fields}:
        # Only removing a stale plaintext left from before the attribute was encrypted.
        return isinstance(action, RemoveAction) and len(target.path) == 1
    if segments[0] not in {stored for _, _, stored, _, _ in plan.nested}:
        return True
    if target.path == segments[:1] and isinstance(action, RemoveAction):  # the whole map or list
        return True
    attribute = target.attribute
    return (
        len(segments) > 1
        and "[" not in "".join(target.path)
        and isinstance(attribute, Attribute)
        and not isinstance(attribute, (EncryptedAttribute, EncryptedMapAttribute, HmacAttribute))
        and not contains_encrypted(attribute)
    )


def item_key_of(instance: EncryptedModel) -> bytes:
    """The encoded primary key of ``instance``, which its values are sealed to.

    :raises EncryptionError: if the instance has no primary key yet.
    """
    hash_value, range_value = _pynamodb.serialized_keys(instance)
    plan = layout(type(instance))
    item: Dict[str, Dict[str, Any]] = {}
    for key, value in ((plan.hash_key, hash_value), (plan.range_key, range_value)):
        if key is not None and value is not None:
            item[key[0]] = {key[1]: value}
    item_key = plan.item_key(item)
    if item_key is None:
        raise EncryptionError(f"{type(instance).__name__}: an item needs its primary key to be encrypted")
    return item_key
