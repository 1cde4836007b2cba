"""What the migrations write: each item rewritten with one conditional ``UpdateItem`` (or moved, when its
key is an HMAC that changes), read again and retried after a concurrent write, at a bounded rate.

:func:`legacy_actions` plans ``encrypt-existing`` and :func:`rotation_actions` plans ``rotate``;
:func:`rewrite` carries out either plan for one item and counts the outcome in its :class:`Report`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple

from pynamodb.connection.base import BOTOCORE_EXCEPTIONS
from pynamodb.constants import BINARY, ITEM, KEY, NULL, STRING
from pynamodb.exceptions import PynamoDBException, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action, RemoveAction, SetAction
from pynamodb.expressions.util import substitute_names

from . import _crypto, _pynamodb
from ._attributes import SOURCE_SUFFIX
from ._hmac_attributes import HMAC_SUFFIX
from ._item_codec import load, seal_nested
from ._layout import layout
from ._model import EncryptedModel
from ._operations_scan import Report, ciphertext_key_ids, runtime_of, stored_values
from ._updates import expand, item_key_of
from .exceptions import ConfigurationError, StashError

_RETRIES_PER_ITEM = 5


class _MoveItem(Exception):
    """The item's key is an HMAC that changes: it must move to its new key."""


Guard = Tuple[str, Optional[Dict[str, Any]]]
"""A condition on one top-level attribute: it still holds this value (as read), or (None) it is still absent."""


@dataclass
class Rewrite:
    """One item's rewrite, as planned from the item read: one conditional ``UpdateItem``.

    :ivar actions: ``set()`` actions of encrypted attributes, sealed to the item by ``_updates.expand``
        (which also keeps compound HMACs in step and records the audit event).
    :ivar sealed: values sealed here already (a re-encrypted map or list of maps), by top-level name.
    :ivar removed: top-level attributes removed (a stale plaintext).
    :ivar guards: what the update is conditional on: each attribute the rewrite replaces still as read.
    """

    actions: List[Action] = dataclass_field(default_factory=list)
    sealed: Dict[str, Dict[str, Any]] = dataclass_field(default_factory=dict)
    removed: List[str] = dataclass_field(default_factory=list)
    guards: List[Guard] = dataclass_field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.actions or self.sealed or self.removed)


Planner = Callable[[type[EncryptedModel], Dict[str, Any], EncryptedModel], Rewrite]


def rewrite(
    model: type[EncryptedModel],
    raw: Dict[str, Any],
    part: Report,
    dry_run: bool,
    limiter: RateLimiter,
    plan: Planner,
) -> None:
    for _ in range(_RETRIES_PER_ITEM):
        try:
            instance = load(model, raw, whole_item=True, policy="read_plaintext")
            planned = plan(model, raw, instance)
        except _MoveItem:
            if dry_run:
                part.rewritten += 1
                return
            limiter.wait()
            move = partial(_move, model, raw, instance)
            fresh = _send(move, model, raw, part, TransactWriteError, "TransactionCanceledException", "move_failed")
            if fresh is None:
                return
            raw = fresh
            continue
        except StashError as error:
            part.failures[error.code] += 1
            return
        if not planned:
            part.unchanged += 1
            return
        if dry_run:
            part.rewritten += 1
            return
        limiter.wait()
        try:
            update = partial(_update, model, raw, instance, planned)
            fresh = _send(update, model, raw, part, UpdateError, "ConditionalCheckFailedException", "update_failed")
        except StashError as error:
            part.failures[error.code] += 1
            return
        if fresh is None:  # written, failed, or deleted meanwhile: nothing left to migrate
            return
        raw = fresh
    part.failures["too_many_conflicts"] += 1


def _send(
    write: Callable[[], None],
    model: type[EncryptedModel],
    raw: Dict[str, Any],
    part: Report,
    refused: type[PynamoDBException],
    conflict: str,
    failure: str,
) -> Optional[Dict[str, Any]]:
    """Make one conditional ``write`` of the item ``raw`` and count its outcome in ``part``.

    :returns: the item read again when the write was refused with ``conflict`` (a concurrent write
        changed it: counted as retried); else None: written, refused for another reason (counted as
        ``failure``), or deleted meanwhile (counted as unchanged).
    """
    try:
        write()
    except refused as error:
        if error.cause_response_code != conflict:
            part.failures[failure] += 1
            return None
        part.retried += 1
        fresh = _read_again(model, raw)
        if fresh is None:
            part.unchanged += 1
        return fresh
    part.rewritten += 1
    return None


def _update(model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel, planned: Rewrite) -> None:
    """Send ``planned`` as one conditional ``UpdateItem`` of the item ``raw``, keyed by its key as read.

    Not ``instance.update()`` (whose ALL_NEW response would be read back and decrypted for nothing), nor
    PynamoDB's expression objects: the request is written here, one placeholder per name and value, as
    PynamoDB writes it (its objects cost more than the rest of a rewrite together).

    :raises UpdateError: as PynamoDB's ``update_item`` raises it.
    """
    names: Dict[str, str] = {}
    values: Dict[str, Any] = {}
    sets: List[str] = []
    removes: List[str] = []
    for action in expand(instance, planned.actions):  # SET path = value, or REMOVE path: nothing else
        path, *operand = action.values
        if isinstance(action, RemoveAction) and isinstance(path, Path) and not operand:
            removes.append(substitute_names(path.path, names))
        elif isinstance(action, SetAction) and isinstance(path, Path) and isinstance(operand[0], Value):
            sets.append(f"{substitute_names(path.path, names)} = {_value(operand[0].value, values)}")
        else:
            raise TypeError(f"a migration does not write {type(action).__name__} actions")
    for name, sealed in planned.sealed.items():
        sets.append(f"{_name(name, names)} = {_value(sealed, values)}")
    removed = set(removes)
    for name in planned.removed:
        placeholder = _name(name, names)
        if placeholder not in removed:  # expand() drops a stale plaintext too, under read_plaintext
            removes.append(placeholder)
    clauses = [
        f"{_name(name, names)} = {_value(value, values)}" if value is not None
        else f"attribute_not_exists({_name(name, names)})"
        for name, value in planned.guards
    ]
    expression = " ".join(
        (f"SET {', '.join(sets)}" if sets else "", f"REMOVE {', '.join(removes)}" if removes else "")
    ).strip()
    request: Dict[str, Any] = {
        "TableName": _pynamodb.connection(model).table_name,
        "Key": _key(model, raw),
        "UpdateExpression": expression,
        "ExpressionAttributeNames": {placeholder: name for name, placeholder in names.items()},
    }
    if clauses:
        request["ConditionExpression"] = " AND ".join(clauses)
    if values:
        request["ExpressionAttributeValues"] = values
    try:
        _pynamodb.base_connection(model).dispatch("UpdateItem", request)
    except BOTOCORE_EXCEPTIONS as error:
        raise UpdateError(f"Failed to update item: {error}", error) from error


def _name(name: str, names: Dict[str, str]) -> str:
    """The placeholder of a top-level attribute name (PynamoDB's numbering: ``#0``, ``#1``...)."""
    placeholder = names.get(name)
    if placeholder is None:
        placeholder = names[name] = f"#{len(names)}"
    return placeholder


def _value(value: Dict[str, Any], values: Dict[str, Any]) -> str:
    placeholder = f":{len(values)}"
    values[placeholder] = value
    return placeholder


def _key(model: type[EncryptedModel], raw: Dict[str, Any]) -> Dict[str, Any]:
    """The item's primary key as it was read (DynamoDB JSON)."""
    plan = layout(model)
    return {key[0]: raw[key[0]] for key in (plan.hash_key, plan.range_key) if key is not None}


def legacy_actions(
    model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel, *, trust_suspicious: bool = False
) -> Rewrite:
    planned = Rewrite()
    suspicious: Optional[bool] = None  # whether the item holds encrypted forms, looked at once
    for runtime_field in runtime_of(instance).fields:
        name = runtime_field.field.logical_name
        legacy = raw.get(name)
        if not legacy or NULL in legacy:
            continue
        planned.guards.append((name, legacy))
        source = runtime_field.source
        if source in raw:  # written encrypted meanwhile: only the stale plaintext is left
            planned.guards.append((source, raw[source]))
        else:
            if suspicious is None:
                suspicious = not trust_suspicious and _holds_encrypted_forms(type(instance), raw)
            if suspicious:
                raise StashError(
                    f"{runtime_field.where}: a plaintext value stands beside encrypted ones; it is encrypted "
                    "only with --trust-suspicious-plaintext",
                    code="suspicious_plaintext",
                )
            planned.actions.append(runtime_field.field.set(instance.attribute_values[runtime_field.name]))
            planned.guards.append((source, None))
        planned.removed.append(name)
    return planned


def rotation_actions(
    model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel, *, rehash: bool = False
) -> Rewrite:
    runtime = runtime_of(instance)
    primary = runtime.keyring.primary_key_id
    planned = Rewrite()
    for field in runtime.fields:
        stored = raw.get(field.source)
        if not stored or BINARY not in stored:
            continue
        value = instance.attribute_values[field.name]
        stale_hmac = rehash and field.hmac is not None and raw.get(field.hmac, {}).get("S") != field.digest(value)
        if _crypto.read_key_id(stored[BINARY]) == primary and not stale_hmac:
            continue
        if stale_hmac and field.is_key:
            raise _MoveItem
        planned.actions.append(field.field.set(value))  # re-encrypted under the primary key, with a fresh HMAC
        planned.guards.append((field.source, {BINARY: stored[BINARY]}))
    item_key: Optional[bytes] = None
    for name, _, stored_name, map_class, is_list in layout(type(instance)).nested:
        stored = raw.get(stored_name)
        value = instance.attribute_values.get(name)
        if not stored or value is None:
            continue
        current = set(ciphertext_key_ids(stored)) <= {primary}
        if current and not rehash:
            continue
        if item_key is None:
            item_key = item_key_of(instance)
        fresh = seal_nested(runtime, map_class, is_list, value, stored_name, item_key, True)
        if current and _hmacs(stored) == _hmacs(fresh):
            continue
        planned.sealed[stored_name] = fresh  # the whole map or list, re-sealed
        planned.guards.append((stored_name, stored))
    return planned


def _holds_encrypted_forms(model: type[EncryptedModel], raw: Dict[str, Any]) -> bool:
    """Whether a stored item holds anything the model writes encrypted: a field's ``x__source`` or
    ``x__hmac``, or an encrypted map (or list of them)."""
    plan = layout(model)
    names = {stored for _, _, stored, _, _ in plan.nested}
    for field in plan.fields:
        names.add(field.attr_name)
        if field.hmac_attribute is not None:
            names.add(field.hmac_attribute.attr_name)
    return not names.isdisjoint(raw)


def _hmacs(stored: Any) -> set[Tuple[str, str]]:
    return set(stored_values(stored, HMAC_SUFFIX, STRING))


def _move(model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel) -> None:
    """Put the item under its new key (an HMAC under the new index key) and delete the old, in one
    transaction: on condition that nothing is at the new key and the old item is unchanged."""
    plan = layout(model)
    assert plan.hash_key is not None
    connection = _pynamodb.connection(model)
    hash_name, hash_type = plan.hash_key
    args, save = _pynamodb.save_arguments(
        instance, condition=Path([hash_name]).does_not_exist(), add_version_condition=False
    )
    save["key"] = ITEM
    put = connection.get_operation_kwargs(*args, **save)
    unchanged: Optional[Condition] = None
    for name, value in raw.items():
        if name.endswith(SOURCE_SUFFIX):
            same = Path([name]) == Value(value)
            unchanged = same if unchanged is None else unchanged & same
    range_key = raw[plan.range_key[0]][plan.range_key[1]] if plan.range_key else None
    delete = connection.get_operation_kwargs(
        raw[hash_name][hash_type], range_key=range_key, key=KEY, condition=unchanged
    )
    _pynamodb.base_connection(model).transact_write_items(
        condition_check_items=[], delete_items=[delete], put_items=[put], update_items=[]
    )


def _read_again(model: type[EncryptedModel], raw: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    plan = layout(model)
    hash_name, hash_type = plan.hash_key  # type: ignore[misc]
    range_key = plan.range_key
    data = _pynamodb.connection(model).get_item(
        raw[hash_name][hash_type],
        range_key=raw[range_key[0]][range_key[1]] if range_key else None,
        consistent_read=True,
    )
    item: Optional[Dict[str, Any]] = data.get("Item")
    return item


class RateLimiter:
    """At most ``rate`` calls to ``wait()`` per second, across threads."""

    def __init__(self, rate: Optional[float]) -> None:
        if rate is not None and rate <= 0:
            raise ConfigurationError("--max-write-rate must be positive")
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            time.sleep(delay)
