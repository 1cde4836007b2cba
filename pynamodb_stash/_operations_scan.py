"""What the operations read: the scan of a table (segments, pages, checkpoints), the :class:`Report`
it fills item by item, and what a stored item holds (the key ids it names, plaintext left from before).

The public names are re-exported by :mod:`pynamodb_stash.operations`; ``_operations_rewrite`` and the
operations themselves are built on this module.
"""

from __future__ import annotations

import contextvars
import json
import os
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path as FilePath
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from pynamodb.constants import BINARY, NULL, STRING

from . import _crypto, _pynamodb
from ._attributes import SOURCE_SUFFIX
from ._binding import instance_keyring
from ._codecs import _from_json, _to_json
from ._fields import runtime
from ._hmac_attributes import HmacAttribute
from ._layout import layout
from ._model import EncryptedModel
from .exceptions import ConfigurationError, StashError

PUBLIC_MODULE = "pynamodb_stash.operations"


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


FailedItem.__module__ = PUBLIC_MODULE


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
            if other.failures:  # Counter.update costs even when empty, and this runs once an item
                self.failures.update(other.failures)
            if other.failed_items:
                self.failed_items.extend(other.failed_items[: max(0, MAX_FAILED_ITEMS - len(self.failed_items))])
            if other.key_ids:
                self.key_ids.update(other.key_ids)
            if other.stored_key_ids:
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


Report.__module__ = PUBLIC_MODULE


# -- what a stored item holds -------------------------------------------------------------------------


def holds_plaintext(instance: EncryptedModel, raw: Dict[str, Any]) -> bool:
    """Whether a stored item holds a field's value in plaintext under its plain name, without its
    ``x__source`` (what ``encrypt-existing`` encrypts)."""
    return any(
        field.legacy in raw and field.source not in raw and NULL not in raw[field.legacy]
        for field in runtime_of(instance).fields
    )


def _readable_key_ids(raw: Dict[str, Any]) -> Iterator[str]:
    """The key ids every ciphertext of a stored item names, skipping what is not a ciphertext."""
    for _, blob in stored_values(raw, SOURCE_SUFFIX, BINARY):
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
    plan = layout(model)
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


def runtime_of(instance: EncryptedModel) -> Any:
    """The runtime of the item's own class (subclass fields included), under its keyring (tenant's)."""
    return runtime(type(instance), instance_keyring(instance, StashError))


def stored_values(value: Any, suffix: str, kind: str) -> Iterator[Tuple[str, Any]]:
    """``(name, value)`` of every attribute named ``*suffix`` holding a ``kind`` value, in a stored item,
    map or list, at any depth."""
    if isinstance(value, dict):
        for name, inner in value.items():
            if name.endswith(suffix) and isinstance(inner, dict) and kind in inner:
                yield name, inner[kind]
            elif isinstance(inner, (dict, list)):  # nothing else holds a value to find
                yield from stored_values(inner, suffix, kind)
    elif isinstance(value, list):
        for inner in value:
            if isinstance(inner, (dict, list)):
                yield from stored_values(inner, suffix, kind)


def ciphertext_key_ids(stored: Any) -> Iterator[str]:
    """Key ids of every encrypted value in a stored item, map or list (nested and subclass fields too)."""
    return (_crypto.read_key_id(blob) for _, blob in stored_values(stored, SOURCE_SUFFIX, BINARY))


# -- scanning -----------------------------------------------------------------------------------------


def run(
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
