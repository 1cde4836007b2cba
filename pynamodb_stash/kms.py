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

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from . import _keystore_lifecycle as _lifecycle
from ._crypto import Key
from ._keyring import Keyring, TenantKeyrings
from ._keystore_aws import AwsCalls, default_client
from ._keystore_format import ACTIVE as ACTIVE
from ._keystore_format import DECRYPT_ONLY, ENCRYPTION, INDEX, RETIRED, KeyInfo, State
from ._keystore_format import DESTROYED as DESTROYED
from ._keystore_format import FORMAT as FORMAT
from ._keystore_format import RECORD as RECORD
from ._keystore_lifecycle import Destruction, Upgrade
from ._keystore_records import KeysetRecords, KmsKeyIds, allow_list
from ._public import show_as_public as _show_as_public
from .exceptions import ConfigurationError

__all__ = ["Destruction", "KeyInfo", "KeyStore", "KmsKeyringSource", "Upgrade"]


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
        allowed = allow_list(kms_key_ids)
        self._kms = kms_client or default_client("kms")
        self._dynamodb = dynamodb_client or default_client("dynamodb")
        self._aws = AwsCalls(table_name, self._kms, self._dynamodb)
        self._records = KeysetRecords(self._aws, allowed)

    # -- the table ----------------------------------------------------------------------------------

    def create_table(self, *, wait: bool = True) -> None:
        """Create the key store table (on-demand capacity). Turn on point-in-time recovery only if
        :meth:`destroy_keyset` is to schedule KMS key deletions: see its "what remains"."""
        self._aws.create_table(wait=wait)

    def keysets(self) -> List[str]:
        """The names of every keyset with a row in the table (any format, destroyed ones included), sorted.

        One ``Scan`` of the table, read as stored: the names are not authenticated.
        """
        names: Set[str] = set()
        for item in self._aws.scan(ProjectionExpression="keyset"):
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
        return _lifecycle.create_keyset(self._records, keyset, kms_key_id)

    def add_key(self, keyset: str) -> str:
        """A new encryption key, decrypt-only until :meth:`promote`: readers learn it before writers use it.

        :returns: its id.
        """
        return _lifecycle.add_key(self._records, keyset)

    def promote(self, keyset: str, key_id: str) -> None:
        """Make ``key_id`` the active encryption key, from decrypt-only or retired; the previous one becomes
        decrypt-only. One atomic write: every version of the keyset has exactly one active key, and of
        two concurrent promotions the later one wins.

        :raises ConfigurationError: if ``key_id`` is not an encryption key of the keyset.
        """
        _lifecycle.promote(self._records, keyset, key_id)

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
        _lifecycle.retire(self._records, keyset, key_id)

    def reinstate(self, keyset: str, key_id: str) -> None:
        """Undo :meth:`retire`: ``key_id`` reads values again (decrypt-only).

        :raises ConfigurationError: if ``key_id`` is not an encryption key of the keyset.
        """
        _lifecycle.reinstate(self._records, keyset, key_id)

    def rewrap(self, keyset: str, kms_key_id: str) -> None:
        """Seal the keyset under another KMS key, e.g. one of its own so that it can be shredded.

        One ``Decrypt`` under the old KMS key, one ``Encrypt`` under the new one. Copies of the record
        sealed under the old key (backups of the key store taken before) are not affected.

        :raises ConfigurationError: if ``kms_key_id`` is not allowed by ``kms_key_ids``.
        """
        _lifecycle.rewrap(self._records, keyset, kms_key_id)

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
        return _lifecycle.destroy_keyset(self._records, keyset, schedule_kms_key_deletion, pending_window_days)

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
        return _lifecycle.upgrade(self._records, keyset, kms_key_id, dry_run, remove_legacy)

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

    def _read(self, keyset: str) -> Tuple[State, Dict[str, Key]]:
        """The keyset's authenticated state and keys, or KeyProviderError; see the module docstring."""
        return self._records.read(keyset)


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

_show_as_public(__name__, globals(), __all__)
