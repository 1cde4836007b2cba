"""The lifecycle of a KMS key store's keysets: create, add, promote, retire, reinstate, rewrap, destroy,
upgrade.

Each function here is the body of the :class:`pynamodb_stash.kms.KeyStore` method of the same name,
whose docstring is the contract. Every change goes through :meth:`KeysetRecords.mutate` (read and
authenticate, change, seal, conditional write) or, for a new record, :meth:`KeysetRecords.write`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Set, Tuple

from ._crypto import Key
from ._keystore_aws import aws_code
from ._keystore_format import (
    ACTIVE,
    DECRYPT_ONLY,
    ENCRYPTION,
    INDEX,
    RETIRED,
    Entry,
    KeyInfo,
    State,
    check_keyset,
    is_record,
    is_tombstone,
    new_id,
    now,
    stored_key_ids,
    tombstone,
)
from ._keystore_legacy import legacy_rows, state_of_legacy, unwrap_legacy
from ._keystore_records import KeysetRecords
from .exceptions import ConfigurationError, KeyProviderError

_Changed = Optional[Tuple[State, Dict[str, Key]]]


@dataclass(frozen=True)
class Destruction:
    """What :meth:`KeyStore.destroy_keyset` did, and what it could not undo.

    :ivar key_ids: the keys whose sealed copies were deleted from the key store table (as the deleted rows
        named them: they are not authenticated first unless the KMS key's deletion was scheduled).
    :ivar rows_deleted: items of the keyset deleted or replaced by the tombstone.
    :ivar kms_key_id: the KMS key that sealed the keyset (as authenticated when its deletion was
        scheduled, else as stored), or None if the table named none.
    :ivar kms_key_deletion: when AWS KMS deletes that key, if :meth:`KeyStore.destroy_keyset` scheduled it.
    :ivar remains: each place the keyset's keys (or what they protect) survive, in words.

    Holds ids, names and dates only; its ``str()`` is what ``keystore destroy-keyset`` prints.
    """


    keyset: str
    key_ids: Tuple[str, ...]
    rows_deleted: int
    kms_key_id: Optional[str]
    kms_key_deletion: Optional[datetime]
    remains: Tuple[str, ...]

    def __str__(self) -> str:
        did = (
            f"keyset {self.keyset!r}: deleted the sealed copies of {len(self.key_ids)} keys "
            f"({', '.join(self.key_ids) or 'none'}) in {self.rows_deleted} rows"
        )
        if self.kms_key_deletion is not None:
            did += f"; KMS key {self.kms_key_id} is scheduled for deletion on {self.kms_key_deletion.isoformat()}"
        else:
            did += "; no KMS key deletion was scheduled"
        return "\n".join([did, "what remains:", *(f"  - {line}" for line in self.remains)])


@dataclass(frozen=True)
class Upgrade:
    """What :meth:`KeyStore.upgrade` found and did for one keyset.

    :ivar keys: the keys of the authenticated record (for a dry run: the record it would write).
    :ivar upgraded: True if this call wrote the authenticated record.
    :ivar legacy_rows: rows in the earlier format still in the table (readers of this version ignore them).
    :ivar removed_legacy_rows: rows in the earlier format this call deleted (or, in a dry run, would).
    :ivar dry_run: True if this call was told to write nothing.
    """


    keyset: str
    keys: Tuple[KeyInfo, ...]
    upgraded: bool
    legacy_rows: int
    removed_legacy_rows: int
    dry_run: bool = False

    def __str__(self) -> str:
        what = "upgraded" if self.upgraded else "dry run, nothing written" if self.dry_run else "already upgraded"
        lines = [f"keyset {self.keyset!r}: {what}; rows of the earlier format: {self.removed_legacy_rows} "
                 f"removed, {self.legacy_rows} remain"]
        lines += [f"  {k.key_id:<14} {k.kind:<10} {k.status:<12} {k.created_at}  {k.kms_key_id}" for k in self.keys]
        return "\n".join(lines)


# -- creating and changing a keyset -------------------------------------------------------------------


def create_keyset(records: KeysetRecords, keyset: str, kms_key_id: str) -> Tuple[str, str]:
    check_keyset(keyset)
    kms_key_id = records.permit(kms_key_id)
    item = records.get(keyset)
    if (item is not None and not is_tombstone(item)) or (item is None and legacy_rows(records.aws, keyset)):
        raise ConfigurationError(f"keyset {keyset!r} already exists in key store {records.table_name!r}")
    created = now()
    encryption, index = Key.generate(new_id(ENCRYPTION, ())), Key.generate(new_id(INDEX, ()))
    state = State(
        keyset, secrets.token_hex(8), 1, kms_key_id,
        (Entry(encryption.id, ENCRYPTION, ACTIVE, created), Entry(index.id, INDEX, ACTIVE, created)),
    )
    records.write(state, {encryption.id: encryption, index.id: index}, previous=item)
    records.learn(kms_key_id)
    return encryption.id, index.id


def add_key(records: KeysetRecords, keyset: str) -> str:
    added: List[str] = []

    def change(state: State, keys: Dict[str, Key]) -> _Changed:
        key = Key.generate(new_id(ENCRYPTION, keys))
        added[:] = [key.id]
        entry = Entry(key.id, ENCRYPTION, DECRYPT_ONLY, now())
        return replace(state, entries=state.entries + (entry,)), {**keys, key.id: key}

    records.mutate(keyset, change)
    return added[0]


def promote(records: KeysetRecords, keyset: str, key_id: str) -> None:
    def change(state: State, keys: Dict[str, Key]) -> _Changed:
        entry = _encryption_key(state, key_id)
        if entry.status == ACTIVE:
            return None
        state = state.with_status(state.the(ENCRYPTION).key_id, DECRYPT_ONLY)
        return state.with_status(key_id, ACTIVE), keys

    records.mutate(keyset, change)


def retire(records: KeysetRecords, keyset: str, key_id: str) -> None:
    def change(state: State, keys: Dict[str, Key]) -> _Changed:
        entry = _encryption_key(state, key_id)
        if entry.status == ACTIVE:
            raise ConfigurationError(
                f"key {key_id!r} of keyset {keyset!r} is active; promote another first"
            )
        return None if entry.status == RETIRED else (state.with_status(key_id, RETIRED), keys)

    records.mutate(keyset, change)


def reinstate(records: KeysetRecords, keyset: str, key_id: str) -> None:
    def change(state: State, keys: Dict[str, Key]) -> _Changed:
        entry = _encryption_key(state, key_id)
        return (state.with_status(key_id, DECRYPT_ONLY), keys) if entry.status == RETIRED else None

    records.mutate(keyset, change)


def rewrap(records: KeysetRecords, keyset: str, kms_key_id: str) -> None:
    kms_key_id = records.permit(kms_key_id)

    def change(state: State, keys: Dict[str, Key]) -> _Changed:
        return None if state.kms_key_id == kms_key_id else (replace(state, kms_key_id=kms_key_id), keys)

    records.mutate(keyset, change)
    records.learn(kms_key_id)


def _encryption_key(state: State, key_id: str) -> Entry:
    entry = state.entry(key_id)
    if entry is None or entry.kind != ENCRYPTION:
        raise ConfigurationError(f"keyset {state.keyset!r} has no encryption key {key_id!r}")
    return entry


# -- destroying a keyset ------------------------------------------------------------------------------


def destroy_keyset(records: KeysetRecords, keyset: str, schedule_kms_key_deletion: bool,
                   pending_window_days: int) -> Destruction:
    check_keyset(keyset)
    if schedule_kms_key_deletion and not (
        isinstance(pending_window_days, int) and 7 <= pending_window_days <= 30
    ):
        raise ConfigurationError("pending_window_days is 7 to 30 (AWS KMS's limits)")
    store = records.table_name
    rows = records.aws.rows(keyset)
    record = next((row for row in rows if is_record(row)), None)
    legacy = [row for row in rows if row is not record]
    if not legacy and (record is None or is_tombstone(record)):
        raise ConfigurationError(f"key store {store!r} has no keyset {keyset!r} to destroy")
    key_ids, kms_key_id = stored_key_ids(record, legacy)
    deletion: Optional[datetime] = None
    if schedule_kms_key_deletion:
        kms_key_id, deletion = _schedule_deletion(records, keyset, record, pending_window_days)
    records.aws.put(keyset, tombstone(keyset, kms_key_id))
    records.aws.delete_rows(keyset, [row["key_id"]["S"] for row in legacy])
    remains = [
        "processes that loaded the keyset keep its keys in memory until their next refresh (their "
        "keyring's ttl_seconds, 300 s by default, or max_uses), then drop them",
    ]
    if deletion is not None:
        remains.insert(0, (
            f"KMS key {kms_key_id} is pending deletion until {deletion.isoformat()}: until then a KMS "
            "administrator can cancel it (CancelKeyDeletion), and a restored backup of the key store "
            "would be readable again; after it, no copy of the keyset's keys can be unsealed, backups "
            "included"
        ))
    else:
        remains.insert(0, (
            f"backups and exports of key store {store!r} taken before now still hold the "
            f"keyset's keys, sealed under KMS key {kms_key_id or '(unknown)'}: whoever restores one and "
            "may call kms:Decrypt on that key can read the keyset's values. To shred those copies too, "
            "seal the keyset under a KMS key of its own (create_keyset or rewrap) and destroy it with "
            "schedule_kms_key_deletion=True"
        ))
    remains.append(
        "the keyset's items in your tables stay, unreadable; their HMACs still show which of them "
        "share a value: delete the items to remove that"
    )
    return Destruction(keyset, key_ids, len(rows), kms_key_id, deletion, tuple(remains))


def _schedule_deletion(
    records: KeysetRecords, keyset: str, record: Optional[Dict[str, Any]], days: int
) -> Tuple[str, datetime]:
    """Authenticate the record, check its KMS key seals no other keyset here, schedule its deletion."""
    aws = records.aws
    if record is None or is_tombstone(record):
        raise ConfigurationError(
            f"keyset {keyset!r} has no authenticated record to learn its KMS key from "
            "(upgrade it first, or destroy it without scheduling)"
        )
    try:
        kms_key_id = records.read(keyset)[0].kms_key_id
    except KeyProviderError as exc:
        # Scheduled by an earlier, interrupted call? Then KMS refuses with KMSInvalidStateException.
        stored = record.get("kms_key_id", {}).get("S")
        if aws_code(exc.__cause__) != "KMSInvalidStateException" or not isinstance(stored, str):
            raise
        kms_key_id = stored
        meta = aws.kms("describe_key", keyset, stored, KeyId=stored)["KeyMetadata"]
        if meta.get("KeyState") != "PendingDeletion":
            raise
        return kms_key_id, meta["DeletionDate"]
    # ScheduleKeyDeletion takes a key id or ARN, not an alias: resolve it, and see if it is scheduled.
    meta = aws.kms("describe_key", keyset, kms_key_id, KeyId=kms_key_id)["KeyMetadata"]
    own = str(meta["KeyId"])
    others: Set[str] = set()
    for item in aws.scan(ProjectionExpression="keyset, kms_key_id, #s", ExpressionAttributeNames={
        "#s": "status"
    }):
        name, other = item.get("keyset", {}).get("S"), item.get("kms_key_id", {}).get("S")
        if name == keyset or not isinstance(other, str) or is_tombstone(item):
            continue
        if "alias/" in other:  # the same key under another name: ask KMS which key it is
            other = str(aws.kms("describe_key", str(name), other, KeyId=other)["KeyMetadata"]["KeyId"])
        if other.rsplit(":key/", 1)[-1] == own:
            others.add(str(name))
    if others:
        raise ConfigurationError(
            f"KMS key {kms_key_id!r} also seals keysets {', '.join(map(repr, sorted(others)[:5]))} of key "
            f"store {records.table_name!r}: deleting it would shred them too; nothing was done"
        )
    if meta.get("KeyState") == "PendingDeletion":  # by an earlier, interrupted call
        when = meta["DeletionDate"]
    else:
        when = aws.kms(
            "schedule_key_deletion", keyset, kms_key_id, KeyId=own, PendingWindowInDays=days
        )["DeletionDate"]
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(float(when), timezone.utc)
    return kms_key_id, when


# -- upgrading a keyset of the earlier format ---------------------------------------------------------


def upgrade(records: KeysetRecords, keyset: str, kms_key_id: Optional[str], dry_run: bool,
            remove_legacy: bool) -> Upgrade:
    check_keyset(keyset)
    sealing = None if kms_key_id is None else records.permit(kms_key_id)
    record = records.get(keyset)
    legacy = legacy_rows(records.aws, keyset)
    if record is not None:
        state, _ = records.read(keyset)
        removed = 0
        if remove_legacy and legacy:
            unknown = sorted({info.key_id for info, _ in legacy} - {e.key_id for e in state.entries})
            if unknown:
                raise ConfigurationError(
                    f"keyset {keyset!r}: rows of the earlier format hold keys that its authenticated "
                    f"record does not ({', '.join(map(repr, unknown[:5]))}): written after the upgrade "
                    "by an earlier version, or planted; nothing was deleted"
                )
            if not dry_run:
                records.aws.delete_rows(keyset, [info.key_id for info, _ in legacy])
            removed = len(legacy)
        remaining = len(legacy) - (0 if dry_run else removed)
        return Upgrade(keyset, tuple(state.infos()), False, remaining, removed, dry_run)
    if not legacy:
        records.missing(keyset)
    for info, _ in legacy:
        records.check_allowed(keyset, info.kms_key_id, f" (key {info.key_id!r})")
    state = state_of_legacy(records.table_name, keyset, legacy, sealing)
    if sealing is None:
        records.check_allowed(keyset, state.kms_key_id)
    keys = {info.key_id: unwrap_legacy(records.aws, info, wrapped) for info, wrapped in legacy}
    if dry_run:
        return Upgrade(keyset, tuple(state.infos()), False, len(legacy), len(legacy) if remove_legacy else 0, True)
    records.write(state, keys, previous=None)
    if sealing is not None:
        records.learn(sealing)
    removed = 0
    if remove_legacy:
        records.aws.delete_rows(keyset, list(keys))
        removed = len(legacy)
    return Upgrade(keyset, tuple(state.infos()), True, len(legacy) - removed, removed)

Destruction.__module__ = "pynamodb_stash.kms"  # shown where it is public
Upgrade.__module__ = "pynamodb_stash.kms"  # shown where it is public
