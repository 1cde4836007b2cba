"""What the migrations write: each item rewritten with one conditional ``UpdateItem`` (or moved, when its
key is an HMAC that changes), read again and retried after a concurrent write, at a bounded rate.

:func:`legacy_actions` plans ``encrypt-existing`` and :func:`rotation_actions` plans ``rotate``;
:func:`rewrite` carries out either plan for one item and counts the outcome in its :class:`Report`.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple

from pynamodb.constants import BINARY, ITEM, KEY, NULL, STRING
from pynamodb.exceptions import PynamoDBException, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action, RemoveAction, SetAction

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


Planner = Callable[[type[EncryptedModel], Dict[str, Any], EncryptedModel], Tuple[List[Action], Optional[Condition]]]


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
            actions, condition = plan(model, raw, instance)
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
        if not actions:
            part.unchanged += 1
            return
        if dry_run:
            part.rewritten += 1
            return
        limiter.wait()
        try:
            update = partial(_update, model, instance, actions, condition)
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


def _update(
    model: type[EncryptedModel], instance: EncryptedModel, actions: List[Action], condition: Optional[Condition]
) -> None:
    # Not instance.update(): its ALL_NEW response would be read back and decrypted for nothing.
    hash_key, range_key = _pynamodb.serialized_keys(instance)
    presealed: List[Action] = [action for action in actions if isinstance(action, PresealedSet)]
    expanded = expand(instance, [action for action in actions if not isinstance(action, PresealedSet)])
    _pynamodb.connection(model).update_item(
        hash_key, range_key=range_key, actions=expanded + presealed, condition=condition
    )


def legacy_actions(
    model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel, *, trust_suspicious: bool = False
) -> Tuple[List[Action], Optional[Condition]]:
    actions: List[Action] = []
    condition: Optional[Condition] = None
    runtime = runtime_of(instance)
    for runtime_field in runtime.fields:
        name = runtime_field.field.logical_name
        legacy = raw.get(name)
        if not legacy or NULL in legacy:
            continue
        unchanged = Path([name]) == Value(legacy)
        if runtime_field.source in raw:  # written encrypted meanwhile: only the stale plaintext is left
            unchanged &= Path([runtime_field.source]) == Value(raw[runtime_field.source])
        else:
            if not trust_suspicious and _holds_encrypted_forms(type(instance), raw):
                raise StashError(
                    f"{runtime_field.where}: a plaintext value stands beside encrypted ones; it is encrypted "
                    "only with --trust-suspicious-plaintext",
                    code="suspicious_plaintext",
                )
            actions.append(runtime_field.field.set(instance.attribute_values[runtime_field.name]))
            unchanged &= Path([runtime_field.source]).does_not_exist()
        actions.append(RemoveAction(Path([name])))
        condition = unchanged if condition is None else condition & unchanged
    return actions, condition


def rotation_actions(
    model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel, *, rehash: bool = False
) -> Tuple[List[Action], Optional[Condition]]:
    runtime = runtime_of(instance)
    primary = runtime.keyring.primary_key_id
    actions: List[Action] = []
    condition: Optional[Condition] = None
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
        actions.append(field.field.set(value))  # re-encrypted under the primary key, with a fresh HMAC
        unchanged = Path([field.source]) == Value({BINARY: stored[BINARY]})
        condition = unchanged if condition is None else condition & unchanged
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
        actions.append(PresealedSet(Path([stored_name]), Value(fresh)))  # the whole map or list, re-sealed
        unchanged = Path([stored_name]) == Value(stored)
        condition = unchanged if condition is None else condition & unchanged
    return actions, condition


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


class PresealedSet(SetAction):
    """A value sealed here already (a re-encrypted map or list): sent as it is, past the model's checks."""


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
