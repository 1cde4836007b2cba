"""The KMS key store's keyset records, authenticated on every read and sealed on every write.

:class:`KeysetRecords` holds what a :class:`pynamodb_stash.kms.KeyStore` decides before it trusts a
record: the allow-list of KMS keys (checked before any KMS call), the newest version seen of each keyset
(an older one is refused), and the conditional write that makes every change atomic.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, Callable, Dict, Iterable, NoReturn, Optional, Set, Tuple, Union

from ._crypto import Key
from ._keystore_aws import AwsCalls, aws_code
from ._keystore_format import (
    DESTROYED,
    RECORD,
    State,
    check_keyset,
    claimed_primary,
    is_tombstone,
    kms_context,
    open_record,
    parse_record,
    sealed_record,
)
from ._keystore_legacy import legacy_rows
from .exceptions import ConfigurationError, KeyProviderError

KmsKeyIds = Union[Iterable[str], Callable[[str], bool]]
AllowList = Optional[Union[frozenset[str], Callable[[str], bool]]]
Change = Callable[[State, Dict[str, Key]], Optional[Tuple[State, Dict[str, Key]]]]

_ATTEMPTS = 8  # conditional writes lost to concurrent changes before giving up


def allow_list(kms_key_ids: Optional[KmsKeyIds]) -> AllowList:
    """``kms_key_ids`` as given to :class:`~pynamodb_stash.kms.KeyStore`, checked.

    :raises ConfigurationError: for a string, an empty list, or a list holding anything but non-empty
        strings.
    """
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


class KeysetRecords:
    """Reads that authenticate and writes that seal the keyset records of one key store table.

    Without an explicit allow-list, the KMS keys this object sealed under (:meth:`learn`) are allowed.
    Safe to share between threads.
    """

    def __init__(self, aws: AwsCalls, allowed: AllowList) -> None:
        self.aws = aws
        self.table_name = aws.table_name
        self._explicit = allowed
        self._learned: Set[str] = set()
        self._seen: Dict[str, Tuple[str, int]] = {}
        self._lock = threading.Lock()

    # -- reading and authenticating ------------------------------------------------------------------

    def get(self, keyset: str) -> Optional[Dict[str, Any]]:
        """The keyset's record (or tombstone) as stored."""
        return self.aws.get(keyset, RECORD)

    def read(self, keyset: str) -> Tuple[State, Dict[str, Key]]:
        """The keyset's authenticated state and keys, or KeyProviderError; see :mod:`pynamodb_stash.kms`."""
        item = self.get(keyset)
        if item is None:
            self.missing(keyset)
        if is_tombstone(item):
            raise KeyProviderError(
                f"keyset {keyset!r} in key store {self.table_name!r} was destroyed "
                f"({item.get('destroyed_at', {}).get('S', 'at an unrecorded time')})",
                code="keyset_destroyed",
            )
        try:
            state, body, attest, material = parse_record(item, self.table_name, keyset)
        except ValueError as exc:
            self._tampered(keyset, item, str(exc))
        self.check_allowed(keyset, state.kms_key_id)
        try:
            plaintext = self.aws.kms(
                "decrypt", keyset, state.kms_key_id,
                CiphertextBlob=attest, KeyId=state.kms_key_id, EncryptionContext=kms_context(self.table_name, state),
            )["Plaintext"]
        except KeyProviderError as exc:
            if aws_code(exc.__cause__) == "InvalidCiphertextException":
                self._tampered(keyset, item, "KMS does not decrypt its seal in its context", cause=exc.__cause__)
            raise
        try:
            keys = open_record(state, self.table_name, body, plaintext, material)
        except ValueError as exc:
            self._tampered(keyset, item, str(exc))
        self._remember(state)
        return state, keys

    def _remember(self, state: State) -> None:
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
        raise KeyProviderError(
            f"keyset {keyset!r} in key store {self.table_name!r}: its record does not authenticate ({reason}); "
            f"none of its keys is used (active key as stored: {claimed_primary(item)!r})",
            code="key_store_tampered",
        ) from cause

    def missing(self, keyset: str) -> NoReturn:
        if legacy_rows(self.aws, keyset, limit=1):
            raise KeyProviderError(
                f"keyset {keyset!r} in key store {self.table_name!r} is in the format before authenticated "
                f"records: run `pynamodb-stash keystore upgrade --table {self.table_name} --keyset {keyset}` "
                "(KeyStore.upgrade) once, then it is read",
                code="keyset_not_upgraded",
            )
        raise KeyProviderError(f"key store {self.table_name!r} has no keyset {keyset!r} (no active keys)")

    # -- the allow-list ------------------------------------------------------------------------------

    def check_allowed(self, keyset: str, kms_key_id: str, what: str = "") -> None:
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

    def permit(self, kms_key_id: str) -> str:
        """A KMS key this object is told to seal under: it must be allowed if an allow-list was given."""
        if not isinstance(kms_key_id, str) or not kms_key_id:
            raise ConfigurationError("a KMS key id is a non-empty string")
        if not self._allows(kms_key_id):
            raise ConfigurationError(
                f"KMS key {kms_key_id!r} is not in kms_key_ids of KeyStore({self.table_name!r})"
            )
        return kms_key_id

    def learn(self, kms_key_id: str) -> None:
        if self._explicit is None:
            with self._lock:
                self._learned.add(kms_key_id)

    # -- writing -------------------------------------------------------------------------------------

    def mutate(self, keyset: str, change: Change) -> None:
        """Read, verify, change, seal, and write on condition that nobody wrote meanwhile; else again."""
        check_keyset(keyset)
        for _ in range(_ATTEMPTS):
            state, keys = self.read(keyset)
            changed = change(state, keys)
            if changed is None:
                return
            new_state, new_keys = changed
            if self.write(replace(new_state, version=state.version + 1), new_keys, previous=state):
                return
        raise KeyProviderError(
            f"keyset {keyset!r} in key store {self.table_name!r} kept changing during {_ATTEMPTS} attempts; "
            "nothing was written",
            code="key_store_conflict",
        )

    def write(self, state: State, keys: Dict[str, Key], *, previous: Any) -> bool:
        """Seal ``state`` and put it: over ``previous`` (a state: the same version; an item: a tombstone;
        None: nothing). False if the condition failed (someone wrote first)."""
        try:
            state.check()
        except ValueError as exc:
            raise ConfigurationError(f"keyset {state.keyset!r}: refusing to write a record where {exc}") from None

        def kms_encrypt(plaintext: bytes) -> bytes:
            result: bytes = self.aws.kms(
                "encrypt", state.keyset, state.kms_key_id, KeyId=state.kms_key_id,
                Plaintext=plaintext, EncryptionContext=kms_context(self.table_name, state),
            )["CiphertextBlob"]
            return result

        item = sealed_record(state, self.table_name, keys, kms_encrypt)
        names: Dict[str, str]
        values: Dict[str, Any]
        if isinstance(previous, State):  # the record this change was made from, unchanged since
            condition, names, values = "#v = :v", {"#v": "version"}, {":v": {"N": str(previous.version)}}
        elif previous is not None:  # a destroyed keyset's tombstone, which a new keyset replaces
            condition, names, values = "#s = :d", {"#s": "status"}, {":d": {"S": DESTROYED}}
        else:  # nothing
            condition, names, values = "attribute_not_exists(#k)", {"#k": "key_id"}, {}
        if not self.aws.put_if(state.keyset, item, condition, names, values):
            if isinstance(previous, State):
                return False
            raise ConfigurationError(
                f"keyset {state.keyset!r} already exists in key store {self.table_name!r}"
            ) from None
        self._remember(state)
        return True
