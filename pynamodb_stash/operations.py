"""Operations on live tables: encrypt legacy plaintext, re-encrypt after a rotation, verify, inspect.

Each function here is also a ``pynamodb-stash`` command. They scan the table through the model's own
connection, in parallel segments if asked, and rewrite items with conditional ``UpdateItem`` calls that
touch only the attributes being migrated: an application writing to the table meanwhile loses nothing
(an item changed since it was read is read again and retried), and running a command twice rewrites
nothing the first run finished. A checkpoint file makes a long run resumable after it is stopped.

This module is the public front: the scan, its checkpoints and the :class:`Report` live in
``_operations_scan``, the conditional rewriting of one item in ``_operations_rewrite``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional

from pynamodb.attributes import ListAttribute

from . import _crypto, _pynamodb
from ._attributes import SOURCE_SUFFIX, EncryptedAttribute, EncryptedMapAttribute
from ._binding import table_of
from ._hmac_attributes import HMAC_SUFFIX
from ._item_codec import load
from ._layout import layout, nested_kind
from ._model import EncryptedModel
from ._operations_rewrite import RateLimiter, legacy_actions, rewrite, rotation_actions
from ._operations_scan import MAX_FAILED_ITEMS as MAX_FAILED_ITEMS
from ._operations_scan import FailedItem, Report, ciphertext_key_ids, holds_plaintext, run
from ._public import show_as_public as _show_as_public
from .exceptions import StashError

__all__ = [
    "EncryptedField", "FailedItem", "Report", "encrypt_existing", "encrypted_fields", "rotate", "status", "verify",
]


# -- inspection -----------------------------------------------------------------------------------


def status(model: type[EncryptedModel]) -> List[Dict[str, str]]:
    """The model's encryption schema, one row per attribute and one per encrypted field inside an
    ``EncryptedMapAttribute`` (at any depth, in lists of them too: ``history[].street``).

    Columns: ``attribute`` (Python names), ``type`` (the declared type), ``encrypted``, ``stored as``,
    ``equality``, ``options`` (HMAC bits when truncated, normalization, prefix, ``hmac_scope``,
    ``identity_bound``), ``keys`` and ``logical table``. Names and options only: no values, no key
    material. Reads nothing: no table, no keyring.
    """
    table = table_of(model)
    nested: Dict[str, List[EncryptedField]] = {}
    for name, _, stored, map_class, is_list in layout(model).nested:
        suffix = "[]" if is_list else ""
        nested[name] = list(_map_fields(map_class, name + suffix, stored + suffix))
    rows = []
    for name, attribute in sorted(model.get_attributes().items()):
        if getattr(attribute, "is_companion", False):
            continue
        field = model._stash.fields.get(name)
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
    for name, field in model._stash.fields.items():
        yield EncryptedField(name, field.logical_name, field)
    for name, _, stored, map_class, is_list in layout(model).nested:
        suffix = "[]" if is_list else ""
        yield from _map_fields(map_class, name + suffix, stored + suffix)


def _map_fields(map_class: type[EncryptedMapAttribute], path: str, stored: str) -> Iterator[EncryptedField]:
    for name, attribute in map_class.get_attributes().items():
        if isinstance(attribute, EncryptedAttribute):
            yield EncryptedField(f"{path}.{name}", f"{stored}.{attribute.logical_name}", attribute)
            continue
        inner = nested_kind(attribute)
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
            instance = load(model, raw, whole_item=True, plain=False)
            key_ids = list(ciphertext_key_ids(raw))
            plaintext = holds_plaintext(instance, raw)
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

    return run(model, check, Report("verify"), segments=segments, progress=progress, page_size=page_size)


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
    limiter = RateLimiter(max_write_rate)

    def plan(model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel) -> Any:
        return legacy_actions(model, raw, instance, trust_suspicious=trust_suspicious)

    def migrate(raw: Dict[str, Any], part: Report) -> None:
        rewrite(model, raw, part, dry_run, limiter, plan)

    return run(
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
    limiter = RateLimiter(max_write_rate)

    def reencrypt(raw: Dict[str, Any], part: Report) -> None:
        plaintext = [False]

        def plan(model: type[EncryptedModel], raw: Dict[str, Any], instance: EncryptedModel) -> Any:
            plaintext[0] = holds_plaintext(instance, raw)
            return rotation_actions(model, raw, instance, rehash=rehash)

        rewrite(model, raw, part, dry_run, limiter, plan)
        if plaintext[0] and part.unchanged:
            part.unchanged, part.plaintext = part.unchanged - 1, part.plaintext + 1

    return run(
        model, reencrypt, Report("rotate", dry_run), segments=segments, segment=segment,
        total_segments=total_segments, checkpoint=checkpoint, progress=progress, page_size=page_size,
    )

_show_as_public(__name__, globals(), __all__)
