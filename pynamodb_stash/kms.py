"""Keys for production: keysets sealed by AWS KMS in a DynamoDB table, authenticated as a whole.

Needs the ``[kms]`` extra: ``pip install 'pynamodb-stash[kms]'``.

A *key store* is a small DynamoDB table (hash key ``keyset``, range key ``key_id``). Each *keyset* (an
application, a tenant) is **one item**, ``key_id = "#keyset"`` (no key id can start with ``#``):

``body``
    canonical JSON, in plain sight: record format (2), key store, keyset, incarnation (random, new for
    each ``create_keyset``), version (1, then +1 for every change), the KMS key that seals it, and each
    key's id, kind (``encryption`` or ``index``), status (``active``, ``decrypt_only``, ``retired``)
    and creation time. Exactly one encryption key and one index key are ``active``.
``attest``
    AWS KMS ``Encrypt`` of ``SHA-256("pynamodb-stash/keyset/v2" | body)`` followed by a one-use 32-byte
    sealing key, under the body's KMS key, with the encryption context ``pynamodb-stash:key-store``,
    ``pynamodb-stash:keyset``, ``pynamodb-stash:record = keyset-v2`` and ``pynamodb-stash:version``.
``material``
    the 32-byte secret of every key in the body (retired ones included, so retiring can be undone), in
    the body's order, AES-256-GCM-SIV-sealed under the sealing key with the digest as associated data.
``version``, ``kms_key_id``, ``format``
    plain copies of the body's fields, for conditional writes and for finding a KMS key's keysets.

A reader makes one ``GetItem`` and **one** KMS ``Decrypt``, whatever the number of keys. It checks, in
this order: the body parses and names this key store and keyset; the KMS key is in the allow-list
(``kms_key_ids``) - else nothing is sent to KMS; ``Decrypt`` succeeds with the expected encryption
context; the digest in the plaintext is the body's; the material opens. Anything else raises
:class:`~pynamodb_stash.KeyProviderError` naming the keyset and the key store, and no key of the keyset is
used: there is no fallback.

What this buys: a change to any field (a status, a creation time, which key is primary, the KMS key, a
key's material) changes the digest; forging a record that verifies needs ``kms:Encrypt`` on an allowed
KMS key with a plaintext of the forger's choice. A principal holding only ``kms:GenerateDataKey`` gets
random plaintexts from KMS and cannot. A table writer can still delete a record, or put back an earlier
authentic one (as restoring a backup does): a :class:`KeyStore` refuses a version older than the newest
it has seen of a keyset, a fresh process cannot tell. ``docs/security.md`` has the table, principal by
principal.

Every change (``add_key``, ``promote``, ``retire``, ``reinstate``, ``rewrap``) reads and verifies the
record (one KMS ``Decrypt``), seals the new one (one KMS ``Encrypt``) and writes it on condition that the
record has not changed meanwhile, retrying from a fresh read otherwise: changes are atomic, and every
version a reader can see has exactly one primary key.

Key stores written before this format (one unauthenticated item per key) are read after
:meth:`KeyStore.upgrade` (``pynamodb-stash keystore upgrade``); until then a reader refuses the keyset.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, NoReturn, Optional, Set, Tuple, Union

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as exc:  # pragma: no cover - exercised by a test that hides boto3
    raise ImportError(
        "pynamodb_stash.kms needs the [kms] extra: pip install 'pynamodb-stash[kms]'"
    ) from exc

from ._crypto import FieldCipher, InvalidCiphertext, Key, check_key_id
from ._keyring import Keyring, TenantKeyrings
from .exceptions import ConfigurationError, KeyProviderError

__all__ = ["Destruction", "KeyInfo", "KeyStore", "KmsKeyringSource", "Upgrade"]

ENCRYPTION = "encryption"
INDEX = "index"
ACTIVE = "active"
DECRYPT_ONLY = "decrypt_only"
RETIRED = "retired"
DESTROYED = "destroyed"
RECORD = "#keyset"
FORMAT = 2
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})  # backs off on throttling
_DIGEST_LABEL = b"pynamodb-stash/keyset/v2"
_SEAL_KEY_ID = "keyset-seal"
_SECRET_SIZE = 32
_ATTEMPTS = 8  # conditional writes lost to concurrent changes before giving up
_BODY_FIELDS = {"format", "store", "keyset", "incarnation", "version", "kms_key_id", "keys"}
_KEY_FIELDS = {"id", "kind", "status", "created_at"}
_STATUSES = {ENCRYPTION: (ACTIVE, DECRYPT_ONLY, RETIRED), INDEX: (ACTIVE, RETIRED)}

KmsKeyIds = Union[Iterable[str], Callable[[str], bool]]


@dataclass(frozen=True)
class KeyInfo:
    """What an authenticated keyset record says of one key: never its material (nothing here is secret)."""

    keyset: str
    key_id: str
    kind: str
    status: str
    created_at: str
    kms_key_id: str


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


@dataclass(frozen=True)
class _Entry:
    key_id: str
    kind: str
    status: str
    created_at: str


@dataclass(frozen=True)
class _State:
    """A keyset record's body. Built by the store, or parsed from a record and then authenticated."""

    keyset: str
    incarnation: str
    version: int
    kms_key_id: str
    entries: Tuple[_Entry, ...]

    def the(self, kind: str) -> _Entry:
        return next(e for e in self.entries if e.kind == kind and e.status == ACTIVE)

    def entry(self, key_id: str) -> Optional[_Entry]:
        return next((e for e in self.entries if e.key_id == key_id), None)

    def with_status(self, key_id: str, status: str) -> _State:
        entries = tuple(replace(e, status=status) if e.key_id == key_id else e for e in self.entries)
        return replace(self, entries=entries)

    def check(self) -> None:
        """:raises ValueError: saying which invariant of a keyset record does not hold."""
        ids = [e.key_id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise ValueError("a key id appears twice")
        for e in self.entries:
            check_key_id(e.key_id)
            if e.status not in _STATUSES.get(e.kind, ()):
                raise ValueError(f"key {e.key_id!r} has an unknown kind, or a status its kind cannot have")
        for kind in (ENCRYPTION, INDEX):
            active = sum(1 for e in self.entries if e.kind == kind and e.status == ACTIVE)
            if active != 1:
                raise ValueError(f"it has {active} active {kind} keys")
        if self.version < 1 or not self.incarnation or not self.kms_key_id:
            raise ValueError("its version, incarnation or KMS key is missing")

    def body(self, store: str) -> bytes:
        data = {
            "format": FORMAT, "store": store, "keyset": self.keyset, "incarnation": self.incarnation,
            "version": self.version, "kms_key_id": self.kms_key_id,
            "keys": [{"id": e.key_id, "kind": e.kind, "status": e.status, "created_at": e.created_at}
                     for e in self.entries],
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    def infos(self) -> List[KeyInfo]:
        return [KeyInfo(self.keyset, e.key_id, e.kind, e.status, e.created_at, self.kms_key_id) for e in self.entries]


class KeyStore:
    """Keysets of keys sealed by AWS KMS in the DynamoDB table ``table_name``.

    :param kms_key_ids: the allow-list: the KMS keys (as spelled when the keysets were sealed: key id,
        key ARN, alias) that keysets may be sealed under, or a function of such a string that says
        whether it is allowed (e.g. an ARN prefix naming your account and region). A keyset record that
        names any other KMS key is refused before any KMS call. Default: only the KMS keys given to this
        object's :meth:`create_keyset` and :meth:`rewrap`, so a process that only reads must pass it;
        without it, its first read raises :class:`ConfigurationError`.
    :param kms_client: a boto3 KMS client (default: ``boto3.client("kms")`` with retries on throttling).
    :param dynamodb_client: a boto3 DynamoDB client for the key store table.
    :raises ConfigurationError: for an empty table name or a ``kms_key_ids`` that is a string, empty, or
        holds anything but non-empty strings.
    :raises KeyProviderError: from any method, when KMS or DynamoDB refuses or fails (the message names
        the keyset and KMS key id, and the boto3 error is chained), or when a keyset record does not
        authenticate, names a KMS key outside the allow-list, is older than one this object has seen, was
        destroyed, or is in the format before authentication (each with its own ``code``). Messages
        name key stores, keysets, key ids, KMS key ids and versions; never key material or a KMS
        ciphertext.

    Safe to share between threads. It remembers, per keyset, the newest version it has authenticated.
    """

    def __init__(
        self,
        table_name: str,
        *,
        kms_key_ids: Optional[KmsKeyIds] = None,
        kms_client: Any = None,
        dynamodb_client: Any = None,
    ) -> None:
        if not isinstance(table_name, str) or not table_name:
            raise ConfigurationError("KeyStore needs the name of its DynamoDB table")
        self.table_name = table_name
        self._explicit: Optional[Union[frozenset[str], Callable[[str], bool]]] = _allow_list(kms_key_ids)
        self._learned: Set[str] = set()
        self._seen: Dict[str, Tuple[str, int]] = {}
        self._lock = threading.Lock()
        self._kms = kms_client or boto3.client("kms", config=_RETRIES)
        self._dynamodb = dynamodb_client or boto3.client("dynamodb", config=_RETRIES)

    # -- the table ----------------------------------------------------------------------------------

    def create_table(self, *, wait: bool = True) -> None:
        """Create the key store table (on-demand capacity). Turn on point-in-time recovery only if
        :meth:`destroy_keyset` is to schedule KMS key deletions: see its "what remains"."""
        self._call_dynamodb(
            "create_table",
            None,
            TableName=self.table_name,
            AttributeDefinitions=[
                {"AttributeName": "keyset", "AttributeType": "S"},
                {"AttributeName": "key_id", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "keyset", "KeyType": "HASH"},
                {"AttributeName": "key_id", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        if wait:
            self._dynamodb.get_waiter("table_exists").wait(TableName=self.table_name)

    def keysets(self) -> List[str]:
        """The names of every keyset with a row in the table (any format, destroyed ones included), sorted.

        One ``Scan`` of the table, read as stored: the names are not authenticated.
        """
        names: Set[str] = set()
        for item in self._scan(ProjectionExpression="keyset"):
            name = item.get("keyset", {}).get("S")
            if isinstance(name, str):
                names.add(name)
        return sorted(names)

    # -- keysets and their lifecycle ------------------------------------------------------------------

    def create_keyset(self, keyset: str, kms_key_id: str) -> Tuple[str, str]:
        """A new keyset sealed under ``kms_key_id``: an active encryption key and an index key.

        The keys are 32 bytes from the operating system's CSPRNG; they leave the process only sealed.
        One KMS ``Encrypt``. A keyset that was destroyed may be created again (a new incarnation).

        :returns: the ids of the encryption key and of the index key.
        :raises ConfigurationError: if the keyset exists (in either format), or ``kms_key_id`` is not
            allowed by ``kms_key_ids``.
        """
        _check_keyset(keyset)
        kms_key_id = self._permit(kms_key_id)
        item = self._get(keyset)
        if (item is not None and not _is_tombstone(item)) or (item is None and self._legacy_rows(keyset)):
            raise ConfigurationError(f"keyset {keyset!r} already exists in key store {self.table_name!r}")
        now = _now()
        encryption, index = Key.generate(_new_id(ENCRYPTION, ())), Key.generate(_new_id(INDEX, ()))
        state = _State(
            keyset, secrets.token_hex(8), 1, kms_key_id,
            (_Entry(encryption.id, ENCRYPTION, ACTIVE, now), _Entry(index.id, INDEX, ACTIVE, now)),
        )
        self._write(state, {encryption.id: encryption, index.id: index}, previous=item)
        self._learn(kms_key_id)
        return encryption.id, index.id

    def add_key(self, keyset: str) -> str:
        """A new encryption key, decrypt-only until :meth:`promote`: readers learn it before writers use it.

        :returns: its id.
        """
        added: List[str] = []

        def change(state: _State, keys: Dict[str, Key]) -> Tuple[_State, Dict[str, Key]]:
            key = Key.generate(_new_id(ENCRYPTION, keys))
            added[:] = [key.id]
            entry = _Entry(key.id, ENCRYPTION, DECRYPT_ONLY, _now())
            return replace(state, entries=state.entries + (entry,)), {**keys, key.id: key}

        self._mutate(keyset, change)
        return added[0]

    def promote(self, keyset: str, key_id: str) -> None:
        """Make ``key_id`` the active encryption key, from decrypt-only or retired; the previous one becomes
        decrypt-only. One atomic write: every version of the keyset has exactly one active key, and of
        two concurrent promotions the later one wins.

        :raises ConfigurationError: if ``key_id`` is not an encryption key of the keyset.
        """

        def change(state: _State, keys: Dict[str, Key]) -> Optional[Tuple[_State, Dict[str, Key]]]:
            entry = self._encryption_key(state, key_id)
            if entry.status == ACTIVE:
                return None
            state = state.with_status(state.the(ENCRYPTION).key_id, DECRYPT_ONLY)
            return state.with_status(key_id, ACTIVE), keys

        self._mutate(keyset, change)

    def rotate(self, keyset: str) -> str:
        """:meth:`add_key` then :meth:`promote`, for a single process or a planned window. Returns the id."""
        key_id = self.add_key(keyset)
        self.promote(keyset, key_id)
        return key_id

    def retire(self, keyset: str, key_id: str) -> None:
        """Stop reading values under ``key_id``: they raise ``KeyNotFoundError`` naming it as retired.

        The key stays sealed in the keyset, so :meth:`reinstate` (back to decrypt-only) or
        :meth:`promote` undoes this. Retiring is not destroying: see :meth:`destroy_keyset`.

        :raises ConfigurationError: if ``key_id`` is not an encryption key of the keyset, or is active.
        """

        def change(state: _State, keys: Dict[str, Key]) -> Optional[Tuple[_State, Dict[str, Key]]]:
            entry = self._encryption_key(state, key_id)
            if entry.status == ACTIVE:
                raise ConfigurationError(
                    f"key {key_id!r} of keyset {keyset!r} is active; promote another first"
                )
            return None if entry.status == RETIRED else (state.with_status(key_id, RETIRED), keys)

        self._mutate(keyset, change)

    def reinstate(self, keyset: str, key_id: str) -> None:
        """Undo :meth:`retire`: ``key_id`` reads values again (decrypt-only).

        :raises ConfigurationError: if ``key_id`` is not an encryption key of the keyset.
        """

        def change(state: _State, keys: Dict[str, Key]) -> Optional[Tuple[_State, Dict[str, Key]]]:
            entry = self._encryption_key(state, key_id)
            return (state.with_status(key_id, DECRYPT_ONLY), keys) if entry.status == RETIRED else None

        self._mutate(keyset, change)

    def rewrap(self, keyset: str, kms_key_id: str) -> None:
        """Seal the keyset under another KMS key, e.g. one of its own so that it can be shredded.

        One ``Decrypt`` under the old KMS key, one ``Encrypt`` under the new one. Copies of the record
        sealed under the old key (backups of the key store taken before) are not affected.

        :raises ConfigurationError: if ``kms_key_id`` is not allowed by ``kms_key_ids``.
        """
        kms_key_id = self._permit(kms_key_id)

        def change(state: _State, keys: Dict[str, Key]) -> Optional[Tuple[_State, Dict[str, Key]]]:
            return None if state.kms_key_id == kms_key_id else (replace(state, kms_key_id=kms_key_id), keys)

        self._mutate(keyset, change)
        self._learn(kms_key_id)

    def destroy_keyset(
        self, keyset: str, *, schedule_kms_key_deletion: bool = False, pending_window_days: int = 30
    ) -> Destruction:
        """Crypto-shred ``keyset``: replace its record by a tombstone and delete every other row of it.

        Readers then raise ``KeyProviderError`` (code ``keyset_destroyed``); a process holding the keys
        drops them at its next refresh. What the table's backups hold is untouched: with
        ``schedule_kms_key_deletion=True`` the KMS key that seals the keyset is scheduled for deletion
        (``ScheduleKeyDeletion``), after which no copy of the keyset, backups included, can be unsealed.
        That needs the keyset to have a KMS key of its own: the record is authenticated first (one
        ``Decrypt``), and the call refuses, doing nothing, if another keyset of this table is sealed
        under the same KMS key (this table is all it can check: other uses of the KMS key are yours to
        rule out). A destroyed keyset's name may be used again by :meth:`create_keyset`.

        :param pending_window_days: AWS KMS's waiting period, 7 to 30 days, during which a KMS
            administrator can still cancel the deletion.
        :returns: a :class:`Destruction` saying what was deleted and what remains.
        :raises ConfigurationError: for a keyset with nothing to destroy, a window outside 7-30 days, or a
            KMS key that seals other keysets too.
        :raises KeyProviderError: when the record does not authenticate (with scheduling) or AWS fails;
            whatever was done before the failure (the deletion scheduled) is not undone.
        """
        _check_keyset(keyset)
        if schedule_kms_key_deletion and not (
            isinstance(pending_window_days, int) and 7 <= pending_window_days <= 30
        ):
            raise ConfigurationError("pending_window_days is 7 to 30 (AWS KMS's limits)")
        rows = self._rows(keyset)
        record = next((row for row in rows if row["key_id"].get("S") == RECORD), None)
        legacy = [row for row in rows if row is not record]
        if not legacy and (record is None or _is_tombstone(record)):
            raise ConfigurationError(f"key store {self.table_name!r} has no keyset {keyset!r} to destroy")
        key_ids, kms_key_id = _stored_key_ids(record, legacy)
        deletion: Optional[datetime] = None
        if schedule_kms_key_deletion:
            kms_key_id, deletion = self._schedule_deletion(keyset, record, pending_window_days)
        tombstone = {
            "keyset": {"S": keyset}, "key_id": {"S": RECORD}, "format": {"N": str(FORMAT)},
            "status": {"S": DESTROYED}, "destroyed_at": {"S": _now()},
            **({"kms_key_id": {"S": kms_key_id}} if kms_key_id else {}),
        }
        self._call_dynamodb("put_item", keyset, TableName=self.table_name, Item=tombstone)
        for row in legacy:
            self._call_dynamodb(
                "delete_item", keyset, TableName=self.table_name,
                Key={"keyset": {"S": keyset}, "key_id": row["key_id"]},
            )
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
                f"backups and exports of key store {self.table_name!r} taken before now still hold the "
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

    def describe(self, keyset: str) -> List[KeyInfo]:
        """The keys of ``keyset`` as its authenticated record says, without their material.

        One ``GetItem`` and one KMS ``Decrypt`` (to authenticate). :raises KeyProviderError: as a reader.
        """
        state, _ = self._read(keyset)
        return state.infos()

    def upgrade(
        self, keyset: str, *, kms_key_id: Optional[str] = None, dry_run: bool = False,
        remove_legacy: bool = False,
    ) -> Upgrade:
        """Authenticate a keyset written before record format 2 (one unauthenticated row per key).

        Reads its rows, unwraps each key with KMS (one ``Decrypt`` each, under the encryption context
        it was wrapped with), and writes the authenticated record holding every key: the encryption key
        that readers of the earlier version used (the newest active one) stays active, other active
        ones become decrypt-only, retired ones stay retired, and the index key they used stays active.
        The earlier rows stay, so processes still running the earlier version keep reading, and readers
        of this version ignore them; ``remove_legacy=True`` deletes them (once no such process runs).

        The earlier rows are not authenticated: whatever they hold when this runs becomes authentic.
        Review what it reports (``dry_run=True`` writes nothing) before upgrading.

        Idempotent: on an upgraded keyset it authenticates the record (one ``Decrypt``), writes nothing
        unless ``remove_legacy``, and reports ``upgraded=False``.

        :param kms_key_id: the KMS key to seal the record under (default: the active encryption key's).
        :raises ConfigurationError: for a KMS key outside the allow-list, or (``remove_legacy``) earlier
            rows holding a key id that the authenticated record does not hold: a key added by a process
            of the earlier version after the upgrade, or planted; nothing is deleted then.
        :raises KeyProviderError: for no keyset, a destroyed one, a row that is not a key, no active key,
            a row whose KMS key is not allowed (before any KMS call), or a key KMS does not unwrap.
        """
        _check_keyset(keyset)
        sealing = None if kms_key_id is None else self._permit(kms_key_id)
        record = self._get(keyset)
        legacy = self._legacy_rows(keyset)
        if record is not None:
            state, _ = self._read(keyset)
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
                    self._delete_rows(keyset, [info.key_id for info, _ in legacy])
                removed = len(legacy)
            remaining = len(legacy) - (0 if dry_run else removed)
            return Upgrade(keyset, tuple(state.infos()), False, remaining, removed, dry_run)
        if not legacy:
            self._missing(keyset)
        for info, _ in legacy:
            self._check_allowed(keyset, info.kms_key_id, f" (key {info.key_id!r})")
        state = self._state_of_legacy(keyset, legacy, sealing)
        if sealing is None:
            self._check_allowed(keyset, state.kms_key_id)
        keys = {info.key_id: self._unwrap_legacy(info, wrapped) for info, wrapped in legacy}
        if dry_run:
            return Upgrade(keyset, tuple(state.infos()), False, len(legacy), len(legacy) if remove_legacy else 0, True)
        self._write(state, keys, previous=None)
        if sealing is not None:
            self._learn(sealing)
        removed = 0
        if remove_legacy:
            self._delete_rows(keyset, list(keys))
            removed = len(legacy)
        return Upgrade(keyset, tuple(state.infos()), True, len(legacy) - removed, removed)

    def keyring(
        self,
        keyset: str,
        *,
        ttl_seconds: float = 300.0,
        max_uses: int = 10_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> KmsKeyringSource:
        """A keyring source for ``Meta.keyring`` or ``configure(keyring=...)``.

        It reads and authenticates the keyset (one ``GetItem``, one KMS ``Decrypt``) when first used,
        and again after ``ttl_seconds`` or ``max_uses`` items, picking up changes then. When that
        fails (the keyset destroyed, tampered with, KMS refusing) it drops the keys it held and raises.
        """
        if ttl_seconds <= 0 or max_uses <= 0:
            raise ConfigurationError("ttl_seconds and max_uses must be positive")
        return KmsKeyringSource(self, keyset, ttl_seconds=ttl_seconds, max_uses=max_uses, clock=clock)

    def tenant_keyrings(
        self, *, attribute: Optional[str] = None, ttl_seconds: float = 300.0, max_uses: int = 10_000_000
    ) -> TenantKeyrings:
        """One keyset per tenant, for ``Meta.keyring``: the keyset named by the item's ``attribute`` or
        by ``pynamodb_stash.tenant(...)``. See :class:`pynamodb_stash.TenantKeyrings`."""
        return TenantKeyrings(
            lambda keyset: self.keyring(keyset, ttl_seconds=ttl_seconds, max_uses=max_uses), attribute=attribute
        )

    def __repr__(self) -> str:
        return f"KeyStore({self.table_name!r})"

    # -- reading and authenticating ------------------------------------------------------------------

    def _read(self, keyset: str) -> Tuple[_State, Dict[str, Key]]:
        """The keyset's authenticated state and keys, or KeyProviderError; see the module docstring."""
        item = self._get(keyset)
        if item is None:
            self._missing(keyset)
        if _is_tombstone(item):
            raise KeyProviderError(
                f"keyset {keyset!r} in key store {self.table_name!r} was destroyed "
                f"({item.get('destroyed_at', {}).get('S', 'at an unrecorded time')})",
                code="keyset_destroyed",
            )
        try:
            body = bytes(item["body"]["B"])
            attest = bytes(item["attest"]["B"])
            material = bytes(item["material"]["B"])
            state = _parse_body(body, self.table_name, keyset)
            if item["version"]["N"] != str(state.version) or item["kms_key_id"]["S"] != state.kms_key_id:
                raise ValueError("its plain version or KMS key differs from its body's")
        except (KeyError, TypeError, ValueError) as exc:
            self._tampered(keyset, item, str(exc) if isinstance(exc, ValueError) else "a field is missing")
        self._check_allowed(keyset, state.kms_key_id)
        try:
            plaintext = self._call_kms(
                "decrypt", keyset, state.kms_key_id,
                CiphertextBlob=attest, KeyId=state.kms_key_id, EncryptionContext=self._context(state),
            )["Plaintext"]
        except KeyProviderError as exc:
            if _aws_code(exc.__cause__) == "InvalidCiphertextException":
                self._tampered(keyset, item, "KMS does not decrypt its seal in its context", cause=exc.__cause__)
            raise
        digest = hashlib.sha256(_DIGEST_LABEL + body).digest()
        if not isinstance(plaintext, bytes) or len(plaintext) != 2 * _SECRET_SIZE or not hmac.compare_digest(
            plaintext[:_SECRET_SIZE], digest
        ):
            self._tampered(keyset, item, "its seal is not of its body")
        try:
            seal = Key(_SEAL_KEY_ID, plaintext[_SECRET_SIZE:])
            secret = FieldCipher(seal, self.table_name, keyset).open(material, digest)
        except (ValueError, InvalidCiphertext):
            self._tampered(keyset, item, "its key material does not open")
        if len(secret) != _SECRET_SIZE * len(state.entries):
            self._tampered(keyset, item, "its key material has the wrong length")
        try:
            keys = {
                e.key_id: Key(e.key_id, secret[i * _SECRET_SIZE:(i + 1) * _SECRET_SIZE])
                for i, e in enumerate(state.entries)
            }
        except ValueError:
            self._tampered(keyset, item, "a key is all zero bytes")
        self._remember(state)
        return state, keys

    def _remember(self, state: _State) -> None:
        """Refuse ``state`` if older than the newest seen of its keyset's incarnation, else record it."""
        with self._lock:
            seen = self._seen.get(state.keyset)
            if seen is not None and seen[0] == state.incarnation and state.version < seen[1]:
                raise KeyProviderError(
                    f"keyset {state.keyset!r} in key store {self.table_name!r} went back from version "
                    f"{seen[1]} to {state.version}: an earlier record was put back (a restored backup, or "
                    "a table writer replaying one); refused",
                    code="key_store_rollback",
                )
            if seen is None or seen[0] != state.incarnation or state.version > seen[1]:
                self._seen[state.keyset] = (state.incarnation, state.version)

    def _tampered(self, keyset: str, item: Dict[str, Any], reason: str, cause: Any = None) -> NoReturn:
        primary = "unknown"
        try:
            claimed = json.loads(bytes(item["body"]["B"]))
            primary = next(k["id"] for k in claimed["keys"] if k["kind"] == ENCRYPTION and k["status"] == ACTIVE)
            primary = check_key_id(primary)
        except Exception:  # anything at all: this only names the key in the message
            primary = "unknown"
        raise KeyProviderError(
            f"keyset {keyset!r} in key store {self.table_name!r}: its record does not authenticate ({reason}); "
            f"none of its keys is used (active key as stored: {primary!r})",
            code="key_store_tampered",
        ) from cause

    def _check_allowed(self, keyset: str, kms_key_id: str, what: str = "") -> None:
        """Refuse a KMS key outside the allow-list, before any KMS call."""
        if self._explicit is None:
            with self._lock:
                learned = set(self._learned)
            if not learned:
                raise ConfigurationError(
                    f"KeyStore({self.table_name!r}) has no allowed KMS keys: pass the KMS keys its keysets "
                    "are sealed under, KeyStore(..., kms_key_ids=[...])"
                )
            allowed = kms_key_id in learned
        else:
            allowed = self._allows(kms_key_id)
        if not allowed:
            raise KeyProviderError(
                f"keyset {keyset!r} in key store {self.table_name!r}{what} is sealed under KMS key "
                f"{kms_key_id!r}, which kms_key_ids does not allow: refused before any KMS call",
                code="kms_key_not_allowed",
            )

    def _allows(self, kms_key_id: str) -> bool:
        """Whether the allow-list given to the constructor allows ``kms_key_id`` (True if none was)."""
        allowed = self._explicit
        if allowed is None:
            return True
        if not callable(allowed):
            return kms_key_id in allowed
        try:
            return bool(allowed(kms_key_id))
        except Exception as exc:  # the user's function: fail closed, name only its type
            raise ConfigurationError(
                f"kms_key_ids of KeyStore({self.table_name!r}) raised {type(exc).__name__}"
            ) from None

    def _permit(self, kms_key_id: str) -> str:
        """A KMS key this object is told to seal under: it must be allowed if an allow-list was given."""
        if not isinstance(kms_key_id, str) or not kms_key_id:
            raise ConfigurationError("a KMS key id is a non-empty string")
        if not self._allows(kms_key_id):
            raise ConfigurationError(
                f"KMS key {kms_key_id!r} is not in kms_key_ids of KeyStore({self.table_name!r})"
            )
        return kms_key_id

    def _learn(self, kms_key_id: str) -> None:
        if self._explicit is None:
            with self._lock:
                self._learned.add(kms_key_id)

    def _missing(self, keyset: str) -> NoReturn:
        if self._legacy_rows(keyset, limit=1):
            raise KeyProviderError(
                f"keyset {keyset!r} in key store {self.table_name!r} is in the format before authenticated "
                f"records: run `pynamodb-stash keystore upgrade --table {self.table_name} --keyset {keyset}` "
                "(KeyStore.upgrade) once, then it is read",
                code="keyset_not_upgraded",
            )
        raise KeyProviderError(f"key store {self.table_name!r} has no keyset {keyset!r} (no active keys)")

    # -- writing -------------------------------------------------------------------------------------

    def _mutate(
        self, keyset: str, change: Callable[[_State, Dict[str, Key]], Optional[Tuple[_State, Dict[str, Key]]]]
    ) -> None:
        """Read, verify, change, seal, and write on condition that nobody wrote meanwhile; else again."""
        _check_keyset(keyset)
        for _ in range(_ATTEMPTS):
            state, keys = self._read(keyset)
            changed = change(state, keys)
            if changed is None:
                return
            new_state, new_keys = changed
            if self._write(replace(new_state, version=state.version + 1), new_keys, previous=state):
                return
        raise KeyProviderError(
            f"keyset {keyset!r} in key store {self.table_name!r} kept changing during {_ATTEMPTS} attempts; "
            "nothing was written",
            code="key_store_conflict",
        )

    def _write(self, state: _State, keys: Dict[str, Key], *, previous: Any) -> bool:
        """Seal ``state`` and put it: over ``previous`` (a state: the same version; an item: a tombstone;
        None: nothing). False if the condition failed (someone wrote first)."""
        try:
            state.check()
        except ValueError as exc:
            raise ConfigurationError(f"keyset {state.keyset!r}: refusing to write a record where {exc}") from None
        body = state.body(self.table_name)
        digest = hashlib.sha256(_DIGEST_LABEL + body).digest()
        seal = Key.generate(_SEAL_KEY_ID)
        attest = self._call_kms(
            "encrypt", state.keyset, state.kms_key_id, KeyId=state.kms_key_id,
            Plaintext=digest + seal.export_secret_bytes(), EncryptionContext=self._context(state),
        )["CiphertextBlob"]
        secret = b"".join(keys[e.key_id].export_secret_bytes() for e in state.entries)
        item = {
            "keyset": {"S": state.keyset}, "key_id": {"S": RECORD}, "format": {"N": str(FORMAT)},
            "version": {"N": str(state.version)}, "kms_key_id": {"S": state.kms_key_id},
            "body": {"B": body}, "attest": {"B": attest},
            "material": {"B": FieldCipher(seal, self.table_name, state.keyset).seal(secret, digest)},
        }
        names: Dict[str, str]
        values: Dict[str, Any]
        if isinstance(previous, _State):  # the record this change was made from, unchanged since
            condition, names, values = "#v = :v", {"#v": "version"}, {":v": {"N": str(previous.version)}}
        elif previous is not None:  # a destroyed keyset's tombstone, which a new keyset replaces
            condition, names, values = "#s = :d", {"#s": "status"}, {":d": {"S": DESTROYED}}
        else:  # nothing
            condition, names, values = "attribute_not_exists(#k)", {"#k": "key_id"}, {}
        try:
            self._dynamodb.put_item(
                TableName=self.table_name, Item=item, ConditionExpression=condition,
                ExpressionAttributeNames=names, **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as exc:
            if _aws_code(exc) == "ConditionalCheckFailedException":
                if isinstance(previous, _State):
                    return False
                raise ConfigurationError(
                    f"keyset {state.keyset!r} already exists in key store {self.table_name!r}"
                ) from None
            self._dynamodb_failed("put_item", state.keyset, exc)
        except BotoCoreError as exc:
            self._dynamodb_failed("put_item", state.keyset, exc)
        self._remember(state)
        return True

    def _encryption_key(self, state: _State, key_id: str) -> _Entry:
        entry = state.entry(key_id)
        if entry is None or entry.kind != ENCRYPTION:
            raise ConfigurationError(f"keyset {state.keyset!r} has no encryption key {key_id!r}")
        return entry

    def _schedule_deletion(
        self, keyset: str, record: Optional[Dict[str, Any]], days: int
    ) -> Tuple[str, datetime]:
        """Authenticate the record, check its KMS key seals no other keyset here, schedule its deletion."""
        if record is None or _is_tombstone(record):
            raise ConfigurationError(
                f"keyset {keyset!r} has no authenticated record to learn its KMS key from "
                "(upgrade it first, or destroy it without scheduling)"
            )
        try:
            kms_key_id = self._read(keyset)[0].kms_key_id
        except KeyProviderError as exc:
            # Scheduled by an earlier, interrupted call? Then KMS refuses with KMSInvalidStateException.
            stored = record.get("kms_key_id", {}).get("S")
            if _aws_code(exc.__cause__) != "KMSInvalidStateException" or not isinstance(stored, str):
                raise
            kms_key_id = stored
            meta = self._call_kms("describe_key", keyset, stored, KeyId=stored)["KeyMetadata"]
            if meta.get("KeyState") != "PendingDeletion":
                raise
            return kms_key_id, meta["DeletionDate"]
        # ScheduleKeyDeletion takes a key id or ARN, not an alias: resolve it, and see if it is scheduled.
        meta = self._call_kms("describe_key", keyset, kms_key_id, KeyId=kms_key_id)["KeyMetadata"]
        own = str(meta["KeyId"])
        others: Set[str] = set()
        for item in self._scan(ProjectionExpression="keyset, kms_key_id, #s", ExpressionAttributeNames={
            "#s": "status"
        }):
            name, other = item.get("keyset", {}).get("S"), item.get("kms_key_id", {}).get("S")
            if name == keyset or not isinstance(other, str) or _is_tombstone(item):
                continue
            if "alias/" in other:  # the same key under another name: ask KMS which key it is
                other = str(self._call_kms("describe_key", str(name), other, KeyId=other)["KeyMetadata"]["KeyId"])
            if other.rsplit(":key/", 1)[-1] == own:
                others.add(str(name))
        if others:
            raise ConfigurationError(
                f"KMS key {kms_key_id!r} also seals keysets {', '.join(map(repr, sorted(others)[:5]))} of key "
                f"store {self.table_name!r}: deleting it would shred them too; nothing was done"
            )
        if meta.get("KeyState") == "PendingDeletion":  # by an earlier, interrupted call
            when = meta["DeletionDate"]
        else:
            when = self._call_kms(
                "schedule_key_deletion", keyset, kms_key_id, KeyId=own, PendingWindowInDays=days
            )["DeletionDate"]
        if not isinstance(when, datetime):
            when = datetime.fromtimestamp(float(when), timezone.utc)
        return kms_key_id, when

    # -- the earlier format --------------------------------------------------------------------------

    def _legacy_rows(self, keyset: str, limit: Optional[int] = None) -> List[Tuple[KeyInfo, bytes]]:
        """The keyset's rows in the format before records were authenticated, read as stored.

        :raises KeyProviderError: for a row that is not a key.
        """
        found: List[Tuple[KeyInfo, bytes]] = []
        for item in self._rows(keyset, limit=None if limit is None else limit + 1):
            if item.get("key_id", {}).get("S") == RECORD:
                continue
            try:
                info = KeyInfo(
                    keyset, item["key_id"]["S"], item["kind"]["S"], item["status"]["S"],
                    item["created_at"]["S"], item["kms_key_id"]["S"],
                )
                found.append((info, bytes(item["wrapped"]["B"])))
            except (KeyError, TypeError):
                raise KeyProviderError(
                    f"key store {self.table_name!r}: keyset {keyset!r} holds an item that is not a key",
                    code="key_store_tampered",
                ) from None
            if limit is not None and len(found) >= limit:
                break
        return found

    def _state_of_legacy(
        self, keyset: str, legacy: List[Tuple[KeyInfo, bytes]], kms_key_id: Optional[str]
    ) -> _State:
        """The statuses readers of the earlier version acted on: the newest active encryption key
        encrypted, every other encryption key that was not retired decrypted, the last active index key
        (in key id order) hashed."""
        for info, _ in legacy:
            try:
                check_key_id(info.key_id)
            except ValueError:
                raise KeyProviderError(
                    f"keyset {keyset!r} in key store {self.table_name!r}: a row's key id is not a valid key id",
                    code="key_store_tampered",
                ) from None
            if info.kind not in _STATUSES or info.status not in (ACTIVE, DECRYPT_ONLY, RETIRED):
                raise KeyProviderError(
                    f"keyset {keyset!r} in key store {self.table_name!r}: key {info.key_id!r} has an unknown "
                    "kind or status",
                    code="key_store_tampered",
                )
        active = sorted(
            (info.created_at, info.key_id) for info, _ in legacy if info.kind == ENCRYPTION and info.status == ACTIVE
        )
        index = [info.key_id for info, _ in legacy if info.kind == INDEX and info.status == ACTIVE]
        if not active or not index:
            raise KeyProviderError(
                f"keyset {keyset!r} in key store {self.table_name!r} has no active "
                f"{'encryption' if not active else 'index'} key"
            )
        primary, index_id = active[-1][1], sorted(index)[-1]
        entries = []
        for info, _ in legacy:
            if info.kind == INDEX:
                status = ACTIVE if info.key_id == index_id else RETIRED
            else:
                status = ACTIVE if info.key_id == primary else RETIRED if info.status == RETIRED else DECRYPT_ONLY
            entries.append(_Entry(info.key_id, info.kind, status, info.created_at))
        entries.sort(key=lambda e: (e.created_at, e.key_id))
        sealing = kms_key_id or next(info.kms_key_id for info, _ in legacy if info.key_id == primary)
        return _State(keyset, secrets.token_hex(8), 1, sealing, tuple(entries))

    def _unwrap_legacy(self, info: KeyInfo, wrapped: bytes) -> Key:
        context = {
            "pynamodb-stash:key-store": self.table_name,
            "pynamodb-stash:keyset": info.keyset,
            "pynamodb-stash:key-id": info.key_id,
            "pynamodb-stash:kind": info.kind,
        }
        data = self._call_kms(
            "decrypt", info.keyset, info.kms_key_id,
            CiphertextBlob=wrapped, KeyId=info.kms_key_id, EncryptionContext=context,
        )
        try:
            return Key(info.key_id, data["Plaintext"])
        except ValueError:
            raise KeyProviderError(
                f"keyset {info.keyset!r} in key store {self.table_name!r}: key {info.key_id!r} is not a "
                "32-byte key",
                code="key_store_tampered",
            ) from None

    # -- DynamoDB and KMS ----------------------------------------------------------------------------

    def _context(self, state: _State) -> Dict[str, str]:
        return {
            "pynamodb-stash:key-store": self.table_name,
            "pynamodb-stash:keyset": state.keyset,
            "pynamodb-stash:record": "keyset-v2",
            "pynamodb-stash:version": str(state.version),
        }

    def _get(self, keyset: str) -> Optional[Dict[str, Any]]:
        item: Optional[Dict[str, Any]] = self._call_dynamodb(
            "get_item", keyset, TableName=self.table_name, ConsistentRead=True,
            Key={"keyset": {"S": keyset}, "key_id": {"S": RECORD}},
        ).get("Item")
        return item

    def _rows(self, keyset: str, limit: Optional[int] = None) -> List[Dict[str, Any]]:
        rows: List[Dict[str, Any]] = []
        start: Optional[Dict[str, Any]] = None
        while True:
            page = self._call_dynamodb(
                "query", keyset, TableName=self.table_name, ConsistentRead=True,
                KeyConditionExpression="keyset = :k", ExpressionAttributeValues={":k": {"S": keyset}},
                **({"ExclusiveStartKey": start} if start else {}), **({"Limit": limit} if limit else {}),
            )
            rows.extend(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start or (limit and len(rows) >= limit):
                return rows

    def _scan(self, **kwargs: Any) -> List[Dict[str, Any]]:
        items: List[Dict[str, Any]] = []
        start: Optional[Dict[str, Any]] = None
        while True:
            page = self._call_dynamodb(
                "scan", None, TableName=self.table_name, ConsistentRead=True,
                **kwargs, **({"ExclusiveStartKey": start} if start else {}),
            )
            items.extend(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def _delete_rows(self, keyset: str, key_ids: List[str]) -> None:
        for key_id in key_ids:
            self._call_dynamodb(
                "delete_item", keyset, TableName=self.table_name,
                Key={"keyset": {"S": keyset}, "key_id": {"S": key_id}},
            )

    def _call_kms(self, operation: str, keyset: str, kms_key_id: str, **kwargs: Any) -> Dict[str, Any]:
        try:
            result: Dict[str, Any] = getattr(self._kms, operation)(**kwargs)
            return result
        except (ClientError, BotoCoreError) as exc:
            self._kms_failed(operation, keyset, kms_key_id, exc)

    def _kms_failed(self, operation: str, keyset: str, kms_key_id: str, exc: Exception) -> NoReturn:
        raise KeyProviderError(
            f"AWS KMS {operation} failed for keyset {keyset!r} with KMS key {kms_key_id!r}: {_aws_error(exc)}",
            code="kms_error",
        ) from exc

    def _call_dynamodb(self, operation: str, keyset: Optional[str], **kwargs: Any) -> Dict[str, Any]:
        try:
            result: Dict[str, Any] = getattr(self._dynamodb, operation)(**kwargs)
            return result
        except (ClientError, BotoCoreError) as exc:
            self._dynamodb_failed(operation, keyset, exc)

    def _dynamodb_failed(self, operation: str, keyset: Optional[str], exc: Exception) -> NoReturn:
        where = f" for keyset {keyset!r}" if keyset else ""
        raise KeyProviderError(
            f"key store {self.table_name!r}: DynamoDB {operation} failed{where}: {_aws_error(exc)}",
            code="key_store_error",
        ) from exc


class KmsKeyringSource:
    """The current keyring of one keyset, authenticated, unsealed through KMS and cached; see
    :meth:`KeyStore.keyring`."""

    def __init__(
        self, store: KeyStore, keyset: str, *, ttl_seconds: float, max_uses: int, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.keyset = keyset
        self._ttl = ttl_seconds
        self._max_uses = max_uses
        self._clock = clock
        self._lock = threading.Lock()
        self._keyring: Optional[Keyring] = None
        self._expires = 0.0
        self._uses = 0

    @property
    def holds_keys(self) -> bool:
        """Whether this source holds a keyring in memory (False before the first use and after a failed
        refresh)."""
        return self._keyring is not None

    def current(self) -> Keyring:
        """The cached keyring, read again (one KMS call) past the TTL or use limit.

        :raises KeyProviderError: when the refresh fails; the keys held until then are dropped first,
            so no later call uses them.
        """
        with self._lock:
            if self._keyring is None or self._clock() >= self._expires or self._uses >= self._max_uses:
                self._keyring = None
                self._keyring = self._load()
                self._expires = self._clock() + self._ttl
                self._uses = 0
            self._uses += 1
            return self._keyring

    def _load(self) -> Keyring:
        state, keys = self.store._read(self.keyset)
        encryption = [e for e in state.entries if e.kind == ENCRYPTION]
        return Keyring(
            keys[state.the(ENCRYPTION).key_id],
            index_key=keys[state.the(INDEX).key_id],
            decrypt_only=tuple(keys[e.key_id] for e in encryption if e.status == DECRYPT_ONLY),
            retired_ids=tuple(e.key_id for e in encryption if e.status == RETIRED),
        )

    def __repr__(self) -> str:
        return f"KmsKeyringSource(store={self.store.table_name!r}, keyset={self.keyset!r})"


def _allow_list(kms_key_ids: Optional[KmsKeyIds]) -> Optional[Union[frozenset[str], Callable[[str], bool]]]:
    if kms_key_ids is None or callable(kms_key_ids):
        return kms_key_ids
    if isinstance(kms_key_ids, (str, bytes)):
        raise ConfigurationError("kms_key_ids takes a list of KMS key ids (or a function), not one string")
    try:
        ids = frozenset(kms_key_ids)
    except TypeError:
        raise ConfigurationError("kms_key_ids takes a list of KMS key ids, or a function of one") from None
    if not ids or not all(isinstance(k, str) and k for k in ids):
        raise ConfigurationError("kms_key_ids takes one or more KMS key ids, each a non-empty string")
    return ids


def _parse_body(body: bytes, store: str, keyset: str) -> _State:
    """The state a record's body claims. :raises ValueError: naming what is wrong, never a value."""
    try:
        data = json.loads(body.decode("ascii"), object_pairs_hook=_no_repeats)
    except _Repeated:
        raise ValueError("its body repeats a name") from None
    except (ValueError, RecursionError):  # their messages may quote the body: not repeated
        raise ValueError("its body is not JSON") from None
    if not isinstance(data, dict) or set(data) != _BODY_FIELDS or data["format"] != FORMAT:
        raise ValueError("its body is not a keyset record of format 2")
    if data["store"] != store or data["keyset"] != keyset:
        raise ValueError("its body names another key store or keyset")
    version, keys = data["version"], data["keys"]
    if not isinstance(version, int) or isinstance(version, bool) or not isinstance(keys, list):
        raise ValueError("its body's version or keys are malformed")
    entries = []
    for key in keys:
        if not isinstance(key, dict) or set(key) != _KEY_FIELDS or not all(isinstance(v, str) for v in key.values()):
            raise ValueError("a key in its body is malformed")
        entries.append(_Entry(key["id"], key["kind"], key["status"], key["created_at"]))
    if not isinstance(data["incarnation"], str) or not isinstance(data["kms_key_id"], str):
        raise ValueError("its body's incarnation or KMS key is malformed")
    state = _State(keyset, data["incarnation"], version, data["kms_key_id"], tuple(entries))
    state.check()
    return state


class _Repeated(ValueError):
    pass


def _no_repeats(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise _Repeated
    return data


def _is_tombstone(item: Dict[str, Any]) -> bool:
    return bool(item.get("status", {}).get("S") == DESTROYED)


def _stored_key_ids(
    record: Optional[Dict[str, Any]], legacy: List[Dict[str, Any]]
) -> Tuple[Tuple[str, ...], Optional[str]]:
    """Key ids and KMS key of a keyset's rows as stored (not authenticated), for a destruction report."""
    ids: List[str] = []
    kms_key_id: Optional[str] = None
    if record is not None and not _is_tombstone(record):
        try:
            ids = [str(k["id"]) for k in json.loads(bytes(record["body"]["B"]))["keys"]]
            kms_key_id = str(record["kms_key_id"]["S"])
        except Exception:  # a record that does not parse is destroyed all the same
            ids = []
    for row in legacy:
        key_id = row.get("key_id", {}).get("S")
        if isinstance(key_id, str) and key_id not in ids:
            ids.append(key_id)
        kms_key_id = kms_key_id or row.get("kms_key_id", {}).get("S")
    return tuple(ids), kms_key_id


def _check_keyset(keyset: object) -> None:
    if not isinstance(keyset, str) or not keyset:
        raise ConfigurationError("a keyset name is a non-empty string")


def _new_id(kind: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    while True:
        key_id = ("idx-" if kind == INDEX else "k-") + secrets.token_hex(4)
        if key_id not in taken:
            return key_id


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _aws_code(exc: Any) -> Optional[str]:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    return None


def _aws_error(exc: Exception) -> str:
    """What may be said of an AWS call's failure: its error code (a ClientError's) or its exception type."""
    return _aws_code(exc) or type(exc).__name__
