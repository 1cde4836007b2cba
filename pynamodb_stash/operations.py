"""Operations on live tables: encrypt legacy plaintext, re-encrypt after a rotation, verify, inspect.

Each function here is also a ``pynamodb-stash`` command. They scan the table through the model's own
connection, in parallel segments if asked, and rewrite items with conditional ``UpdateItem`` calls that
touch only the attributes being migrated: an application writing to the table meanwhile loses nothing
(an item changed since it was read is read again and retried), and running a command twice rewrites
nothing the first run finished. A checkpoint file makes a long run resumable after it is stopped.
"""

from __future__ import annotations

import contextvars
import json
import os
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path as FilePath
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from pynamodb.attributes import ListAttribute
from pynamodb.constants import BINARY, ITEM, KEY, NULL, STRING
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action, RemoveAction, SetAction

from . import _crypto, _pynamodb
from ._attributes import HMAC_SUFFIX, SOURCE_SUFFIX, EncryptedAttribute, EncryptedMapAttribute, HmacAttribute
from ._codecs import _from_json, _to_json
from ._model import EncryptedModel, _nested_kind, _seal_nested
from .exceptions import ConfigurationError, StashError

__all__ = [
    "EncryptedField", "FailedItem", "Report", "encrypt_existing", "encrypted_fields", "rotate", "status", "verify",
]

_RETRIES_PER_ITEM = 5


MAX_FAILED_ITEMS = 100
"""How many failed items a :class:`Report` names (``failed_items``); ``failures`` counts them all."""


@dataclass(frozen=True)
class FailedItem:
    """An item a run could not read or rewrite: where it is, and why.

    :ivar key: the item's primary key as it may be printed: the stored value of a plain key attribute
        (``pk='user#12'``); an HMAC key is never shown, the item is then named by its scan position
        (``item with HMAC key email__hmac, scan position 17``).
    :ivar code: the error code, as counted in :attr:`Report.failures`.
    """

    key: str
    code: str


@dataclass
class Report:
    """What a run did, by outcome, with no value, ciphertext or HMAC in it.

    :ivar operation: ``"verify"``, ``"encrypt-existing"`` or ``"rotate"``.
    :ivar dry_run: the run wrote nothing; ``rewritten`` counts what it would have rewritten.
    :ivar scanned: items read.
    :ivar rewritten: items rewritten (or, in a dry run, to rewrite).
    :ivar unchanged: items that needed nothing: read and authenticated (verify), already encrypted
        (encrypt-existing), already under the primary key (rotate).
    :ivar plaintext: items read with a value still stored in plaintext under its plain name, left as they
        are (verify, rotate): ``encrypt-existing`` encrypts them.
    :ivar retried: items read again after a concurrent write changed them.
    :ivar failures: items that failed, by error code.
    :ivar failed_items: the first :data:`MAX_FAILED_ITEMS` of them, by primary key.
    :ivar key_ids: values read, by the id of the key they are encrypted under (verify).
    :ivar stored_key_ids: values scanned, by the key id their ciphertext names, readable or not: when
        none is a key of the keyring, the keyring is the wrong one.
    """

    operation: str = "verify"
    dry_run: bool = False
    scanned: int = 0
    rewritten: int = 0
    unchanged: int = 0
    plaintext: int = 0
    retried: int = 0
    failures: Counter[str] = dataclass_field(default_factory=Counter)
    failed_items: List[FailedItem] = dataclass_field(default_factory=list)
    key_ids: Counter[str] = dataclass_field(default_factory=Counter)
    stored_key_ids: Counter[str] = dataclass_field(default_factory=Counter)
    _lock: threading.Lock = dataclass_field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.failures

    def add(self, other: Report) -> None:
        with self._lock:
            self.scanned += other.scanned
            self.rewritten += other.rewritten
            self.unchanged += other.unchanged
            self.plaintext += other.plaintext
            self.retried += other.retried
            self.failures.update(other.failures)
            self.failed_items.extend(other.failed_items[: max(0, MAX_FAILED_ITEMS - len(self.failed_items))])
            self.key_ids.update(other.key_ids)
            self.stored_key_ids.update(other.stored_key_ids)

    def summary(self) -> str:
        """One line: what the run did, in the words of its operation (``would rewrite`` in a dry run)."""
        failed = ", ".join(f"{code}: {count}" for code, count in sorted(self.failures.items())) or "none"
        if self.operation == "verify":
            done = [f"{self.unchanged} read and authenticated"]
        else:
            done = [f"{'would rewrite' if self.dry_run else 'rewritten'} {self.rewritten}"]
            done.append(
                f"already encrypted {self.unchanged}" if self.operation == "encrypt-existing"
                else f"already under the primary key {self.unchanged}"
            )
        if self.plaintext or self.operation != "encrypt-existing":
            done.append(f"still in plaintext {self.plaintext}" + (" (run encrypt-existing)" if self.plaintext else ""))
        if self.operation != "verify":
            done.append(f"retried after a concurrent write {self.retried}")
        return f"scanned {self.scanned}: " + ", ".join(done) + f"; failed: {failed}"


# -- inspection -----------------------------------------------------------------------------------


def status(model: type[EncryptedModel]) -> List[Dict[str, str]]:
    """The model's encryption schema, one row per attribute and one per encrypted field inside an
    ``EncryptedMapAttribute`` (at any depth, in lists of them too: ``history[].street``).

    Columns: ``attribute`` (Python names), ``type`` (the declared type), ``encrypted``, ``stored as``,
    ``equality``, ``options`` (HMAC bits when truncated, normalization, prefix, ``hmac_scope``,
    ``identity_bound``), ``keys`` and ``logical table``. Names and options only: no values, no key
    material. Reads nothing: no table, no keyring.
    """
    table = model._stash_table()
    nested: Dict[str, List[EncryptedField]] = {}
    for name, _, stored, map_class, is_list in model._stash_plan().nested:
        suffix = "[]" if is_list else ""
        nested[name] = list(_map_fields(map_class, name + suffix, stored + suffix))
    rows = []
    for name, attribute in sorted(model.get_attributes().items()):
        if getattr(attribute, "is_companion", False):
            continue
        field = model._stash_fields.get(name)
        hmac = field.hmac_attribute if field is not None else None
        keys = []
        if hmac is not None and (hmac.is_hash_key or hmac.is_range_key):
            keys.append("table hash key" if hmac.is_hash_key else "table range key")
        elif attribute.is_hash_key or attribute.is_range_key:
            keys.append("table hash key" if attribute.is_hash_key else "table range key")
        keys += [
            f"{index_name} key" for index_name, index in _pynamodb.indexes(model).items()
            if field is not None and any(getattr(a, "field", None) is field for a in index.Meta.attributes.values())
        ]
        rows.append({
            "attribute": name,
            "type": field.codec.name if field is not None else type(attribute).__name__,
            "encrypted": "yes" if field is not None else ("fields" if name in nested else "no"),
            "stored as": attribute.attr_name + (f", {hmac.attr_name}" if hmac is not None else ""),
            "equality": "yes" if hmac is not None else "",
            "options": _options(field) if field is not None else "",
            "keys": ", ".join(keys),
            "logical table": table if field is not None or name in nested else "",
        })
        for inner in nested.get(name, ()):
            rows.append({
                "attribute": inner.path,
                "type": inner.field.codec.name,
                "encrypted": "yes",
                "stored as": inner.stored + SOURCE_SUFFIX
                + (f", {inner.stored}{HMAC_SUFFIX}" if inner.field.equality else ""),
                "equality": "yes" if inner.field.equality else "",
                "options": _options(inner.field),
                "keys": "",
                "logical table": table,
            })
    return rows


@dataclass(frozen=True)
class EncryptedField:
    """An encrypted field of a model, at the top level or inside an ``EncryptedMapAttribute``.

    :ivar path: by Python names, ``[]`` marking a list of maps: ``email``, ``address.street``,
        ``history[].street``.
    :ivar stored: by stored names, as the field's ciphertexts and HMACs are bound to it.
    :ivar field: the declared attribute.
    """

    path: str
    stored: str
    field: EncryptedAttribute[Any]

    @property
    def in_list(self) -> bool:
        return "[]" in self.path


def encrypted_fields(model: type[EncryptedModel]) -> Iterator[EncryptedField]:
    """Every encrypted field of ``model``: its own, then those of its encrypted maps, at any depth."""
    for name, field in model._stash_fields.items():
        yield EncryptedField(name, field.logical_name, field)
    for name, _, stored, map_class, is_list in model._stash_plan().nested:
        suffix = "[]" if is_list else ""
        yield from _map_fields(map_class, name + suffix, stored + suffix)


def _map_fields(map_class: type[EncryptedMapAttribute], path: str, stored: str) -> Iterator[EncryptedField]:
    for name, attribute in map_class.get_attributes().items():
        if isinstance(attribute, EncryptedAttribute):
            yield EncryptedField(f"{path}.{name}", f"{stored}.{attribute.logical_name}", attribute)
            continue
        inner = _nested_kind(attribute)
        if inner is not None:
            suffix = "[]" if isinstance(attribute, ListAttribute) else ""
            yield from _map_fields(inner, f"{path}.{name}{suffix}", f"{stored}.{attribute.attr_name}{suffix}")


def _options(field: EncryptedAttribute[Any]) -> str:
    """A field's options, as declared: names and numbers, never a key."""
    options = []
    if field.equality:
        equality = field.equality_options
        if equality.hmac_bits < 128:
            options.append(f"hmac_bits={equality.hmac_bits}")
        steps = equality.normalize if isinstance(equality.normalize, tuple) else (equality.normalize,)
        if steps:
            names = [step if isinstance(step, str) else getattr(step, "__name__", "function") for step in steps]
            options.append("normalize=" + "+".join(names))
        if equality.prefix:
            options.append(f"prefix={equality.prefix!r}")
        if field.hmac_scope is not None:
            options.append(f"hmac_scope={field.hmac_scope!r}")
    if field.identity_bound:
        options.append("identity_bound")
    return ", ".join(options)


def verify(
    model: type[EncryptedModel],
    *,
    segments: int = 1,
    progress: Optional[Callable[[Report], None]] = None,
    page_size: Optional[int] = None,
) -> Report:
    """Read and decrypt every item; count successes by key id and failures by error code.

    An item read with a value still in plaintext (under ``plaintext_policy="read_plaintext"``) counts as
    ``plaintext``; under the default policy it fails (``plaintext_found``).

    :param progress: called with the report so far after each item, from the scanning threads: keep it
        quick (store it, print it now and then).
    """

    def check(raw: Dict[str, Any], part: Report) -> None:
        try:
            instance = model._stash_load(raw, whole_item=True, plain=False)
            key_ids = list(_key_ids(raw))
            plaintext = _holds_plaintext(instance, raw)
        except StashError as error:
            part.failures[error.code] += 1
            return
        except _crypto.InvalidCiphertext:  # an undeclared x__source that is not a ciphertext at all
            part.failures["malformed_ciphertext"] += 1
            return
        part.key_ids.update(key_ids)
        if plaintext:
            part.plaintext += 1
        else:
            part.unchanged += 1

    return _run(model, check, Report("verify"), segments=segments, progress=progress, page_size=page_size)


# -- migrations -----------------------------------------------------------------------------------


def encrypt_existing(
    model: type[EncryptedModel],
    *,
    segments: int = 1,
    segment: Optional[int] = None,
    total_segments: Optional[int] = None,
    checkpoint: Optional[str] = None,
    max_write_rate: Optional[float] = None,
    dry_run: bool = False,
    progress: Optional[Callable[[Report], None]] = None,
    page_size: Optional[int] = None,
    trust_suspicious: bool = False,
) -> Report:
    """Encrypt every attribute still stored in plaintext under its plain name, in place.

    Each item is rewritten with one ``UpdateItem`` that sets ``x__source``/``x__hmac`` and removes ``x``,
    on condition that ``x`` still holds the value read: a concurrent change makes it read the item again
    and retry. Items already encrypted are not written. Items whose key is an encrypted attribute's HMAC
    cannot be in a plaintext table and are not handled.

    :param segments: parallel scan segments in this process.
    :param segment: with ``total_segments``, the one segment this worker scans (for N workers).
    :param checkpoint: a file recording each segment's progress; a run given the same file resumes.
    :param max_write_rate: rewrites per second, at most (across segments).
    :param dry_run: count what would be rewritten, write nothing.
    :param page_size: items per scan request (default: DynamoDB's 1 MB pages).
    :param progress: called with the report so far after each item, from the scanning threads.
    :param trust_suspicious: also encrypt suspicious plaintext (below). Without it such an item is left
        as it is and counted as a ``suspicious_plaintext`` failure.

    A plaintext value is suspicious when the item also holds any encrypted form written by the model (an
    ``x__source``, an ``x__hmac`` or an encrypted map): a table writer without keys can delete a
    ciphertext and write a plaintext of their choice in its place, and encrypting it would make their
    value authentic. A legitimate item is in that state only if the application ``update()``-d some of
    its encrypted attributes during the migration (with ``plaintext_policy="read_plaintext"``). An
    ``x__hmac`` without ``x__source``, or beside a plaintext ``x``, is never written by the library and
    is always refused (``hmac_without_value``, ``plaintext_beside_hmac``).
    """
    limiter = _RateLimiter(max_write_rate)

    def plan(model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel) -> Any:
        return _legacy_actions(model, raw, instance, trust_suspicious=trust_suspicious)

    def migrate(raw: Dict[str, Any], part: Report) -> None:
        _rewrite(model, raw, part, dry_run, limiter, plan)

    return _run(
        model, migrate, Report("encrypt-existing", dry_run), segments=segments, segment=segment,
        total_segments=total_segments, checkpoint=checkpoint, progress=progress, page_size=page_size,
    )


def rotate(
    model: type[EncryptedModel],
    *,
    segments: int = 1,
    segment: Optional[int] = None,
    total_segments: Optional[int] = None,
    checkpoint: Optional[str] = None,
    max_write_rate: Optional[float] = None,
    dry_run: bool = False,
    progress: Optional[Callable[[Report], None]] = None,
    page_size: Optional[int] = None,
    rehash: bool = False,
) -> Report:
    """Re-encrypt, under the keyring's primary key, every value written under another key.

    Same guarantees and parameters as :func:`encrypt_existing`: conditional on ``x__source`` being
    unchanged. HMACs do not change (they use the index key). An item with nothing to re-encrypt that
    holds a value still in plaintext counts as ``plaintext``, not ``unchanged``.

    :param rehash: also rewrite every value whose stored HMAC is not the one the keyring's index key
        gives: the index-key migration. Decrypting needs only the stored HMAC, so the old index key is
        not needed. Queries by value miss the items not yet rehashed until it finishes. An item whose
        table key is an HMAC moves to its new key: one transaction puts it there and deletes the old.
    """
    limiter = _RateLimiter(max_write_rate)

    def reencrypt(raw: Dict[str, Any], part: Report) -> None:
        plaintext = [False]

        def plan(model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel) -> Any:
            plaintext[0] = _holds_plaintext(instance, raw)
            return _rotation_actions(model, raw, instance, rehash=rehash)

        _rewrite(model, raw, part, dry_run, limiter, plan)
        if plaintext[0] and part.unchanged:
            part.unchanged, part.plaintext = part.unchanged - 1, part.plaintext + 1

    return _run(
        model, reencrypt, Report("rotate", dry_run), segments=segments, segment=segment,
        total_segments=total_segments, checkpoint=checkpoint, progress=progress, page_size=page_size,
    )


# -- one item ---------------------------------------------------------------------------------------

class _MoveItem(Exception):
    """The item's key is an HMAC that changes: it must move to its new key."""


Planner = Callable[[type[EncryptedModel], Dict[str, Any], EncryptedModel], Tuple[List[Action], Optional[Condition]]]


def _rewrite(
    model: type[EncryptedModel],
    raw: Dict[str, Any],
    part: Report,
    dry_run: bool,
    limiter: _RateLimiter,
    plan: Planner,
) -> None:
    for _ in range(_RETRIES_PER_ITEM):
        try:
            instance = model._stash_load(raw, whole_item=True, policy="read_plaintext")
            actions, condition = plan(model, raw, instance)
        except _MoveItem:
            if dry_run:
                part.rewritten += 1
                return
            limiter.wait()
            try:
                _move(model, raw, instance)
                part.rewritten += 1
                return
            except TransactWriteError as error:
                if error.cause_response_code != "TransactionCanceledException":
                    part.failures["move_failed"] += 1
                    return
                part.retried += 1
                fresh = _read_again(model, raw)
                if fresh is None:
                    part.unchanged += 1
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
            # Not instance.update(): its ALL_NEW response would be read back and decrypted for nothing.
            hash_key, range_key = _pynamodb.serialized_keys(instance)
            presealed: List[Action] = [action for action in actions if isinstance(action, PresealedSet)]
            expanded = instance._stash_expand([action for action in actions if not isinstance(action, PresealedSet)])
            _pynamodb.connection(model).update_item(
                hash_key, range_key=range_key, actions=expanded + presealed, condition=condition
            )
            part.rewritten += 1
            return
        except UpdateError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                part.failures["update_failed"] += 1
                return
            part.retried += 1
            fresh = _read_again(model, raw)
            if fresh is None:  # deleted meanwhile: nothing left to migrate
                part.unchanged += 1
                return
            raw = fresh
        except StashError as error:
            part.failures[error.code] += 1
            return
    part.failures["too_many_conflicts"] += 1


def _legacy_actions(
    model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel, *, trust_suspicious: bool = False
) -> Tuple[List[Action], Optional[Condition]]:
    actions: List[Action] = []
    condition: Optional[Condition] = None
    runtime = _runtime_of(instance)
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


def _rotation_actions(
    model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel, *, rehash: bool = False
) -> Tuple[List[Action], Optional[Condition]]:
    runtime = _runtime_of(instance)
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
    for name, _, stored_name, map_class, is_list in type(instance)._stash_plan().nested:
        stored = raw.get(stored_name)
        value = instance.attribute_values.get(name)
        if not stored or value is None:
            continue
        current = set(_key_ids(stored)) <= {primary}
        if current and not rehash:
            continue
        if item_key is None:
            item_key = instance._stash_item_key()
        fresh = _seal_nested(runtime, map_class, is_list, value, stored_name, item_key, True)
        if current and _hmacs(stored) == _hmacs(fresh):
            continue
        actions.append(PresealedSet(Path([stored_name]), Value(fresh)))  # the whole map or list, re-sealed
        unchanged = Path([stored_name]) == Value(stored)
        condition = unchanged if condition is None else condition & unchanged
    return actions, condition


def _holds_encrypted_forms(model: type[EncryptedModel], raw: Dict[str, Any]) -> bool:
    """Whether a stored item holds anything the model writes encrypted: a field's ``x__source`` or
    ``x__hmac``, or an encrypted map (or list of them)."""
    plan = model._stash_plan()
    names = {stored for _, _, stored, _, _ in plan.nested}
    for field in plan.fields:
        names.add(field.attr_name)
        if field.hmac_attribute is not None:
            names.add(field.hmac_attribute.attr_name)
    return not names.isdisjoint(raw)


def _holds_plaintext(instance: EncryptedModel, raw: Dict[str, Any]) -> bool:
    """Whether a stored item holds a field's value in plaintext under its plain name, without its
    ``x__source`` (what ``encrypt-existing`` encrypts)."""
    return any(
        field.legacy in raw and field.source not in raw and NULL not in raw[field.legacy]
        for field in _runtime_of(instance).fields
    )


def _readable_key_ids(raw: Dict[str, Any]) -> Iterator[str]:
    """The key ids every ciphertext of a stored item names, skipping what is not a ciphertext."""
    for _, blob in _stored_values(raw, SOURCE_SUFFIX, BINARY):
        try:
            yield _crypto.read_key_id(blob)
        except _crypto.InvalidCiphertext:
            continue


def _hmac_names(model: type[EncryptedModel]) -> set[str]:
    """The stored names of the model's HMAC attributes (companions, index and compound HMACs)."""
    return {a.attr_name for a in model.get_attributes().values() if isinstance(a, HmacAttribute)}


def _item_label(
    model: type[EncryptedModel], raw: Dict[str, Any], hmacs: set[str], position: int, segment: Optional[int]
) -> str:
    """An item's primary key as it may be printed: plain key values as stored; never an HMAC, for which
    the item is named by its position in the scan (of its segment)."""
    plan = model._stash_plan()
    parts, hidden = [], []
    for key in (plan.hash_key, plan.range_key):
        if key is None:
            continue
        name, kind = key
        if name in hmacs:
            hidden.append(name)
            continue
        value = raw.get(name, {}).get(kind)
        if isinstance(value, (bytes, bytearray)):
            parts.append(f"{name}=<{len(value)} bytes>")
        elif isinstance(value, str) and kind == STRING:
            parts.append(f"{name}={value[:80]!r}" + ("..." if len(value) > 80 else ""))
        else:
            parts.append(f"{name}={value}")
    if hidden:
        where = f"scan position {position}" + (f" of segment {segment}" if segment is not None else "")
        parts.insert(0, f"item with HMAC key {'+'.join(hidden)}, {where}")
    return ", ".join(parts)


class PresealedSet(SetAction):
    """A value sealed here already (a re-encrypted map or list): sent as it is, past the model's checks."""


def _runtime_of(instance: EncryptedModel) -> Any:
    """The runtime of the item's own class (subclass fields included), under its keyring (tenant's)."""
    return type(instance)._stash_runtime(instance._stash_instance_keyring(StashError))


def _stored_values(value: Any, suffix: str, kind: str) -> Iterator[Tuple[str, Any]]:
    """``(name, value)`` of every attribute named ``*suffix`` holding a ``kind`` value, in a stored item,
    map or list, at any depth."""
    if isinstance(value, dict):
        for name, inner in value.items():
            if name.endswith(suffix) and isinstance(inner, dict) and kind in inner:
                yield name, inner[kind]
            else:
                yield from _stored_values(inner, suffix, kind)
    elif isinstance(value, list):
        for inner in value:
            yield from _stored_values(inner, suffix, kind)


def _key_ids(stored: Any) -> Iterator[str]:
    """Key ids of every encrypted value in a stored item, map or list (nested and subclass fields too)."""
    return (_crypto.read_key_id(blob) for _, blob in _stored_values(stored, SOURCE_SUFFIX, BINARY))


def _hmacs(stored: Any) -> set[Tuple[str, str]]:
    return set(_stored_values(stored, HMAC_SUFFIX, STRING))


def _move(model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel) -> None:
    """Put the item under its new key (an HMAC under the new index key) and delete the old, in one
    transaction: on condition that nothing is at the new key and the old item is unchanged."""
    plan = model._stash_plan()
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
    plan = model._stash_plan()
    hash_name, hash_type = plan.hash_key  # type: ignore[misc]
    range_key = plan.range_key
    data = _pynamodb.connection(model).get_item(
        raw[hash_name][hash_type],
        range_key=raw[range_key[0]][range_key[1]] if range_key else None,
        consistent_read=True,
    )
    item: Optional[Dict[str, Any]] = data.get("Item")
    return item


# -- scanning -----------------------------------------------------------------------------------------


def _run(
    model: type[EncryptedModel],
    visit: Callable[[Dict[str, Any], Report], None],
    report: Report,
    *,
    segments: int = 1,
    segment: Optional[int] = None,
    total_segments: Optional[int] = None,
    checkpoint: Optional[str] = None,
    progress: Optional[Callable[[Report], None]] = None,
    page_size: Optional[int] = None,
) -> Report:
    if (segment is None) != (total_segments is None):
        raise ConfigurationError("--segment and --total-segments go together")
    if segment is not None and total_segments is not None:
        if not 0 <= segment < total_segments:
            raise ConfigurationError("--segment must be in [0, --total-segments)")
        mine: Sequence[int] = [segment]
        total = total_segments
    else:
        if segments < 1:
            raise ConfigurationError("--segments must be at least 1")
        mine, total = range(segments), segments
    state = _Checkpoint.open(checkpoint, model, total)
    hmacs = _hmac_names(model)

    def scan_segment(number: int) -> None:
        position = 0
        for page in _pages(model, number, total, state, page_size):
            for raw in page:
                position += 1
                part = Report(report.operation, report.dry_run, scanned=1)
                part.stored_key_ids.update(_readable_key_ids(raw))
                visit(raw, part)
                for code in part.failures:
                    label = _item_label(model, raw, hmacs, position, number if total > 1 else None)
                    part.failed_items.append(FailedItem(label, code))
                report.add(part)  # item by item: a progress display shows live counts, whatever the page size
                if progress is not None:
                    progress(report)

    with ThreadPoolExecutor(max_workers=len(mine)) as pool:
        # Each worker runs in a copy of this context: tenant() and lock_context() hold there too.
        futures = [pool.submit(contextvars.copy_context().run, scan_segment, number) for number in mine]
        for future in futures:
            future.result()
    return report


def _pages(
    model: type[EncryptedModel], number: int, total: int, state: _Checkpoint, page_size: Optional[int]
) -> Iterator[List[Dict[str, Any]]]:
    start, done = state.position(number)
    if done:
        return
    connection = _pynamodb.connection(model)
    while True:
        data = connection.scan(
            segment=number if total > 1 else None,
            total_segments=total if total > 1 else None,
            exclusive_start_key=start,  # type: ignore[arg-type]
            consistent_read=True,
            limit=page_size,
        )
        yield data.get("Items", [])
        start = data.get("LastEvaluatedKey")
        state.record(number, start)
        if not start:
            return


class _Checkpoint:
    """Each segment's last evaluated key, in a JSON file replaced atomically after every page."""

    def __init__(self, path: Optional[FilePath], data: Dict[str, Any]) -> None:
        self._path = path
        self._data = data
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Optional[str], model: type[EncryptedModel], total: int) -> _Checkpoint:
        identity = {"table": model.Meta.table_name, "total_segments": total}
        if path is None:
            return cls(None, {**identity, "segments": {}})
        file = FilePath(path)
        if not file.exists():
            return cls(file, {**identity, "segments": {}})
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ConfigurationError(f"checkpoint {path}: not a pynamodb-stash checkpoint") from None
        if not isinstance(data, dict) or {k: data.get(k) for k in identity} != identity:
            raise ConfigurationError(
                f"checkpoint {path} is for another table or segment count; use a new file"
            )
        return cls(file, data)

    def position(self, number: int) -> Tuple[Optional[Dict[str, Any]], bool]:
        entry = self._data["segments"].get(str(number))
        if entry is None:
            return None, False
        return _decode_key(entry["last_key"]), bool(entry["done"])

    def record(self, number: int, last_key: Optional[Dict[str, Any]]) -> None:
        if self._path is None:
            return
        with self._lock:
            self._data["segments"][str(number)] = {"last_key": _encode_key(last_key), "done": last_key is None}
            handle, temporary = tempfile.mkstemp(dir=self._path.parent, prefix=".checkpoint-")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(self._data, out)
            os.replace(temporary, self._path)


def _encode_key(key: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    return None if key is None else {name: _to_json(av) for name, av in key.items()}


def _decode_key(key: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    return None if key is None else {name: _from_json(av) for name, av in key.items()}


class _RateLimiter:
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
