"""Reads of encrypted models: projections completed with what decryption needs, results whose false
positives (truncated HMACs) are dropped after decryption, audited result iterators, and batches
(``batch_get`` paging and backoff, ``batch_write`` at commit)."""

from __future__ import annotations

import contextlib
import random
import time
from collections import deque
from typing import (
    TYPE_CHECKING,
    Any,
    Deque,
    Dict,
    Generic,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
)

from pynamodb.attributes import Attribute
from pynamodb.constants import (
    BATCH_GET_PAGE_LIMIT,
    DELETE_REQUEST,
    ITEM,
    KEY,
    NUMBER,
    PUT_REQUEST,
    UNPROCESSED_ITEMS,
)
from pynamodb.exceptions import GetError, PutError
from pynamodb.expressions.condition import And, Condition
from pynamodb.models import BatchWrite
from pynamodb.pagination import ResultIterator

from . import _audit, _pynamodb
from ._attributes import EncryptedAttribute, ExactComparison, ExactIn, filtering_reads
from ._binding import audit_operation, audit_scope, tenant_attribute
from ._codecs import canonical_number
from ._layout import ModelState, index_projects, layout
from .exceptions import StashError, UnsupportedQueryError, report_error

if TYPE_CHECKING:
    from ._model import EncryptedModel

_M = TypeVar("_M", bound="EncryptedModel")


class AuditedResults(ResultIterator[_M]):
    """PynamoDB's query/scan results, counting their decryption into one audit event at the end."""

    _stash_reads: _audit.Scope

    def __next__(self) -> _M:
        token = _audit.current_scope.set(self._stash_reads)
        try:
            return super().__next__()
        except StopIteration:
            self._stash_reads.close()
            raise
        except StashError as error:
            self._stash_reads.outcome = error.code
            self._stash_reads.close()
            report_error(error)
            raise
        finally:
            _audit.current_scope.reset(token)


def from_raw_data_counted(model: type[_M], raw: Dict[str, Any], reads: _audit.Scope) -> _M:
    """``model.from_raw_data(raw)``, its decryption counted into ``reads``.

    The scope is current only during the call, never across a ``yield``: a generator shares its caller's context.
    """
    token = _audit.current_scope.set(reads)
    try:
        return model.from_raw_data(raw)
    finally:
        _audit.current_scope.reset(token)


class ExactResults(Generic[_M]):
    """Query or scan results with the false positives of truncated HMACs dropped after decryption.

    Iterates like PynamoDB's ``ResultIterator`` and has its ``last_evaluated_key`` and ``total_count``;
    ``limit`` counts exact matches, and ``last_evaluated_key`` resumes after the last one returned.
    """

    def __init__(
        self,
        model: type[_M],
        results: ResultIterator[_M],
        constraints: List[Tuple[EncryptedAttribute[Any], Any]],
        limit: Optional[int],
    ) -> None:
        self._result_model = model
        self._pages = results.page_iter
        self._wanted = [
            (field.python_name, {field.hmac_input(value) for value in expected}, field)
            for field, expected in constraints
        ]
        self._limit = limit
        self._buffer: Deque[Dict[str, Any]] = deque()
        self._reads = audit_scope(model)
        self._last: Optional[Dict[str, Any]] = None
        self._total = 0

    def __iter__(self) -> ExactResults[_M]:
        return self

    def __next__(self) -> _M:
        if self._limit is not None and self._total >= self._limit:
            raise StopIteration
        while True:
            if not self._buffer:
                token = filtering_reads.set(True)
                try:
                    page = next(self._pages)
                except StopIteration:
                    self._reads.close()
                    raise
                finally:
                    filtering_reads.reset(token)
                self._buffer.extend(page.get("Items", []))
                continue
            raw = self._buffer.popleft()
            item = from_raw_data_counted(self._result_model, raw, self._reads)
            if self._matches(item):
                self._total += 1
                self._last = raw
                return item

    def _matches(self, item: EncryptedModel) -> bool:
        for name, expected, field in self._wanted:
            value = item.attribute_values.get(name)
            if value is None or field.hmac_input(value) not in expected:
                return False
        return True

    @property
    def last_evaluated_key(self) -> Optional[Dict[str, Dict[str, Any]]]:
        if self._buffer and self._last is not None:  # stopped by the limit within a page
            return {key: self._last[key] for key in self._pages.key_names}
        return self._pages.last_evaluated_key

    @property
    def total_count(self) -> int:
        return self._total


_BACKOFF_BASE_SECONDS = 0.05
_BACKOFF_CAP_SECONDS = 5.0


def backoff(attempt: int) -> None:
    """Sleep before retry ``attempt`` (1, 2, ...): exponential with full jitter, capped."""
    time.sleep(random.uniform(0, min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2**attempt)))


class EncryptedBatchWrite(BatchWrite[_M]):
    """PynamoDB's ``BatchWrite``, retrying unprocessed items with exponential backoff and full jitter.

    As in PynamoDB, items are serialized (encrypted) when the batch commits, so an item changed after
    ``save()`` is written as it is at the commit. Every item of a commit is encrypted before anything is
    sent: an item that cannot be encrypted raises from ``commit()`` (or from leaving the ``with`` block),
    none of the batch is written, and the batch is emptied. Batches hold at most 25 requests
    (DynamoDB's limit; 25 items of at most 400 KB stay below its 16 MB request limit).

    :raises PutError: when items are still unprocessed after ``Meta.max_retry_attempts`` attempts; they
        are left in ``failed_operations``.
    """

    def save(self, put_item: _M) -> None:
        self._stash_add(PUT_REQUEST, put_item)

    def delete(self, del_item: _M) -> None:
        self._stash_add(DELETE_REQUEST, del_item)

    def _stash_add(self, action: str, item: _M) -> None:
        if len(self.pending_operations) == self.max_operations:
            if not self.auto_commit:
                raise ValueError("DynamoDB allows a maximum of 25 batch operations")
            self.commit()
        self.pending_operations.append({"action": action, "item": item})

    def commit(self) -> None:
        try:  # every item is encrypted before anything is sent; a failure drops the whole batch
            puts = [op["item"].serialize() for op in self.pending_operations if op["action"] == PUT_REQUEST]
            deletes = [
                _pynamodb.key_item(op["item"]) for op in self.pending_operations if op["action"] == DELETE_REQUEST
            ]
        finally:
            self.pending_operations = []
        attempts = 0
        while puts or deletes:
            data = _pynamodb.connection(self.model).batch_write_item(put_items=puts, delete_items=deletes)
            unprocessed = (data or {}).get(UNPROCESSED_ITEMS, {}).get(self.model.Meta.table_name)
            if not unprocessed:
                return
            attempts += 1
            if attempts >= self.model.Meta.max_retry_attempts:
                self.failed_operations = unprocessed
                raise PutError("Failed to batch write items: max_retry_attempts exceeded")
            puts = [request[PUT_REQUEST][ITEM] for request in unprocessed if PUT_REQUEST in request]
            deletes = [request[DELETE_REQUEST][KEY] for request in unprocessed if DELETE_REQUEST in request]
            backoff(attempts)


def audited(cls: type[_M], results: ResultIterator[_M]) -> ResultIterator[_M]:
    """The same results, whose decryption becomes one audit event when the iteration ends."""
    results.__class__ = AuditedResults
    results._stash_reads = audit_scope(cls)  # type: ignore[attr-defined]
    return results


def projection(
    cls: type[EncryptedModel], attributes_to_get: Optional[Iterable[Any]], index_name: Optional[str] = None
) -> Optional[List[str]]:
    """The names to project: encrypted fields by their stored names, plus what decryption needs (the
    key, and the discriminator and tenant attribute where the index read projects them)."""
    if attributes_to_get is None:
        return None
    models: List[type[EncryptedModel]] = [cls]
    discriminator = _pynamodb.discriminator_attribute(cls)
    if discriminator is not None:  # a query on a base model returns its subclasses' fields too
        subclasses = discriminator.get_registered_subclasses(cls)
        models += [m for m in subclasses if isinstance(getattr(m, "_stash", None), ModelState)]
    if not any(model._stash.fields or layout(model).nested for model in models):
        return attributes_to_get  # type: ignore[return-value]  # nothing to decrypt: as PynamoDB sends it
    if isinstance(attributes_to_get, str):
        attributes_to_get = [attributes_to_get]
    fields_by_name: Dict[str, EncryptedAttribute[Any]] = {}
    for model in reversed(models):
        for name, f in model._stash.fields.items():
            fields_by_name.update(dict.fromkeys((name, f.logical_name, f.attr_name), f))
            if f.hmac_attribute is not None:
                fields_by_name[f.hmac_attribute.attr_name] = f
    projected = index_projects(cls, index_name)
    names: List[str] = []
    for entry in attributes_to_get:
        if isinstance(entry, Attribute):
            entry = entry.attr_name if not isinstance(entry, EncryptedAttribute) else entry.python_name
        field = fields_by_name.get(entry) if isinstance(entry, str) else None
        if field is None:
            names.append(entry)
            continue
        # What the index holds of it: on an index keyed on its HMAC that does not project the value,
        # the HMAC alone (the attribute reads None, as the index has no value to give).
        stored = [field.attr_name] + ([field.hmac_attribute.attr_name] if field.hmac_attribute else [])
        names += [name for name in stored if projected(name)] or stored
    names += [attribute.attr_name for attribute in _pynamodb.key_attributes(cls) if attribute is not None]
    tenant = tenant_attribute(cls)
    for attribute in (_pynamodb.discriminator_attribute(cls), tenant[1] if tenant else None):
        # Not projected by the index: asking for it is an error; the items are read as ``cls``.
        if attribute is not None and projected(attribute.attr_name):
            names.append(attribute.attr_name)
    return list(dict.fromkeys(names))


def exact_constraints(
    cls: type[EncryptedModel], *conditions: Optional[Condition]
) -> List[Tuple[EncryptedAttribute[Any], Any]]:
    """The truncated-HMAC comparisons of read conditions, each an obligation every result must meet.

    :raises UnsupportedQueryError: if one sits under ``|`` or ``~``, where the results could not be
        checked exactly.
    """
    found: List[Tuple[EncryptedAttribute[Any], Any]] = []

    def visit(condition: Any, exact_allowed: bool) -> None:
        if isinstance(condition, (ExactComparison, ExactIn)):
            if not exact_allowed:
                raise UnsupportedQueryError(
                    f"{condition.field._describe()}: a truncated HMAC can only be combined with &"
                )
            found.append((condition.field, condition.expected))
        elif isinstance(condition, Condition):
            inner_allowed = exact_allowed and isinstance(condition, And)
            for value in condition.values:
                visit(value, inner_allowed)

    for condition in conditions:
        visit(condition, True)
    return found


def batch_get(
    cls: type[_M],
    items: Iterable[Any],
    consistent_read: Optional[bool] = None,
    attributes_to_get: Optional[Sequence[str]] = None,
) -> Iterator[_M]:
    """PynamoDB's ``batch_get``, taking plaintext keys, with backoff on unprocessed keys.

    Keys go in pages of 100 (DynamoDB's limit); duplicates are fetched once. Keys DynamoDB leaves
    unprocessed are requested again after an exponential, jittered delay.

    :raises ValueError: for a key that is not a hash key (or a (hash, range) pair); the message
        does not quote it.
    :raises GetError: when ``Meta.max_retry_attempts`` rounds in a row return none of the keys still
        unprocessed (a round that makes progress resets the count, as PynamoDB keeps going then).
    """
    names = projection(cls, attributes_to_get)
    unique: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
    with audit_operation(cls):
        for item in items:  # once per stored key: two spellings may normalize to one HMAC
            key = batch_key(cls, item)
            unique.setdefault(key_identity(cls, key), key)
    keys = list(unique.values())
    reads = audit_scope(cls)
    try:
        yield from batch_pages(cls, keys, consistent_read, names, reads)
    finally:
        reads.close()


def batch_pages(
    cls: type[_M], keys: List[Dict[str, Any]], consistent_read: Optional[bool], names: Any, reads: _audit.Scope,
) -> Iterator[_M]:
    """The items of ``keys``, in pages of 100, retrying unprocessed keys (see :func:`batch_get`)."""
    for start in range(0, len(keys), BATCH_GET_PAGE_LIMIT):
        pending = keys[start : start + BATCH_GET_PAGE_LIMIT]
        stalled = 0  # rounds in a row that returned nothing: only those count against max_retry_attempts
        while pending:
            page, unprocessed = _pynamodb.batch_get_page(cls, pending, consistent_read, names)
            for raw in page:
                yield from_raw_data_counted(cls, raw, reads)
            if not unprocessed:
                break
            stalled = 0 if len(unprocessed) < len(pending) else stalled + 1
            if stalled >= cls.Meta.max_retry_attempts:
                raise GetError("Failed to batch get items: max_retry_attempts exceeded")
            backoff(stalled + 1)
            pending = unprocessed


def key_identity(cls: type[EncryptedModel], key: Dict[str, Any]) -> Tuple[Tuple[str, str], ...]:
    """What makes two serialized keys the same stored key: DynamoDB compares numbers by value (as
    PynamoDB's set of keys does: ``2`` and ``2.0`` are one key)."""
    identity = []
    for attribute in _pynamodb.key_attributes(cls):
        if attribute is None:
            continue
        value = key[attribute.attr_name]
        if attribute.attr_type == NUMBER and isinstance(value, str):
            with contextlib.suppress(ValueError):  # not a number DynamoDB stores: it will say so
                value = canonical_number(value)
        identity.append((attribute.attr_name, repr(value)))
    return tuple(identity)


def batch_key(cls: type[EncryptedModel], item: Any) -> Dict[str, Any]:
    """The serialized key of one ``batch_get`` item (a hash key, or a (hash, range) pair).

    :raises ValueError: for an item that is not a key of the model; the message does not quote it.
    """
    hash_attribute, range_attribute = _pynamodb.key_attributes(cls)
    if range_attribute is None:
        return {hash_attribute.attr_name: hash_attribute.serialize(item)}
    if isinstance(item, (str, bytes)) or not isinstance(item, Iterable):
        raise ValueError(f"{cls.__name__}.batch_get: each key is a (hash key, range key) pair")
    pair = tuple(item)
    if len(pair) != 2:
        raise ValueError(f"{cls.__name__}.batch_get: each key is a (hash key, range key) pair")
    return {
        hash_attribute.attr_name: hash_attribute.serialize(pair[0]),
        range_attribute.attr_name: range_attribute.serialize(pair[1]),
    }


def exact_index_key(
    cls: type[EncryptedModel], index_name: Optional[str], hash_key: Any
) -> List[Tuple[EncryptedAttribute[Any], Any]]:
    """The obligation a query's hash key puts on its results, on an index keyed on a truncated HMAC."""
    if not index_name:
        return []
    field = getattr(_pynamodb.index_hash_key_attribute(_pynamodb.indexes(cls)[index_name]), "field", None)
    return [(field, (hash_key,))] if field is not None and field.truncated else []


def results(
    cls: type[_M], found: ResultIterator[_M], exact: List[Tuple[EncryptedAttribute[Any], Any]], limit: Optional[int]
) -> ResultIterator[_M]:
    """What a query or scan returns: ``found`` checked for ``exact`` matches, or audited as read."""
    if exact:
        return ExactResults(cls, found, exact, limit)  # type: ignore[return-value]
    return audited(cls, found) if _audit.settings.enabled else found


def exact_projection(
    cls: type[EncryptedModel],
    exact: List[Tuple[EncryptedAttribute[Any], Any]],
    index_name: Optional[str],
    attributes_to_get: Optional[Iterable[Any]],
) -> Optional[Iterable[Any]]:
    """What a query or scan with exact-match obligations reads: ``attributes_to_get`` plus the constrained
    attributes, whose values are checked after decryption.

    :raises UnsupportedQueryError: if the index read does not hold a constrained attribute's value (a
        KEYS_ONLY or INCLUDE global index): its false positives could not be told from its matches.
    """
    if not exact:
        return attributes_to_get
    projected = index_projects(cls, index_name)
    for field, _ in exact:
        if not projected(field.attr_name):
            raise UnsupportedQueryError(
                f"{field._describe()}: index {index_name!r} does not project its value, which a truncated HMAC "
                "needs to drop false positives; project the attribute in the index (INCLUDE or ALL)"
            )
    if attributes_to_get is None:
        return None
    names = [attributes_to_get] if isinstance(attributes_to_get, str) else list(attributes_to_get)
    return names + [field.python_name for field, _ in exact]
