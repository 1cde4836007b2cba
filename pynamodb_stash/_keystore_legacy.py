"""The KMS key store's format before records were authenticated: one unauthenticated row per key.

Readers of record format 2 refuse such a keyset; :meth:`pynamodb_stash.kms.KeyStore.upgrade` reads it
here (as stored), unwraps each key with KMS under the context it was wrapped with, and works out the
statuses readers of the earlier version acted on.
"""

from __future__ import annotations

import secrets
from typing import List, Optional, Tuple

from ._crypto import Key, check_key_id
from ._keystore_aws import AwsCalls
from ._keystore_format import (
    ACTIVE,
    DECRYPT_ONLY,
    ENCRYPTION,
    INDEX,
    RETIRED,
    STATUSES,
    Entry,
    KeyInfo,
    State,
    is_record,
)
from .exceptions import KeyProviderError

LegacyRows = List[Tuple[KeyInfo, bytes]]


def legacy_rows(aws: AwsCalls, keyset: str, limit: Optional[int] = None) -> LegacyRows:
    """The keyset's rows in the format before records were authenticated, read as stored, each with its
    wrapped key.

    :raises KeyProviderError: for a row that is not a key.
    """
    found: LegacyRows = []
    for item in aws.rows(keyset, limit=None if limit is None else limit + 1):
        if is_record(item):
            continue
        try:
            info = KeyInfo(
                keyset, item["key_id"]["S"], item["kind"]["S"], item["status"]["S"],
                item["created_at"]["S"], item["kms_key_id"]["S"],
            )
            found.append((info, bytes(item["wrapped"]["B"])))
        except (KeyError, TypeError):
            raise KeyProviderError(
                f"key store {aws.table_name!r}: keyset {keyset!r} holds an item that is not a key",
                code="key_store_tampered",
            ) from None
        if limit is not None and len(found) >= limit:
            break
    return found


def state_of_legacy(store: str, keyset: str, legacy: LegacyRows, kms_key_id: Optional[str]) -> State:
    """The statuses readers of the earlier version acted on: the newest active encryption key
    encrypted, every other encryption key that was not retired decrypted, the last active index key
    (in key id order) hashed."""
    for info, _ in legacy:
        try:
            check_key_id(info.key_id)
        except ValueError:
            raise KeyProviderError(
                f"keyset {keyset!r} in key store {store!r}: a row's key id is not a valid key id",
                code="key_store_tampered",
            ) from None
        if info.kind not in STATUSES or info.status not in (ACTIVE, DECRYPT_ONLY, RETIRED):
            raise KeyProviderError(
                f"keyset {keyset!r} in key store {store!r}: key {info.key_id!r} has an unknown "
                "kind or status",
                code="key_store_tampered",
            )
    active = sorted(
        (info.created_at, info.key_id) for info, _ in legacy if info.kind == ENCRYPTION and info.status == ACTIVE
    )
    index = [info.key_id for info, _ in legacy if info.kind == INDEX and info.status == ACTIVE]
    if not active or not index:
        raise KeyProviderError(
            f"keyset {keyset!r} in key store {store!r} has no active "
            f"{'encryption' if not active else 'index'} key"
        )
    primary, index_id = active[-1][1], sorted(index)[-1]
    entries = []
    for info, _ in legacy:
        if info.kind == INDEX:
            status = ACTIVE if info.key_id == index_id else RETIRED
        else:
            status = ACTIVE if info.key_id == primary else RETIRED if info.status == RETIRED else DECRYPT_ONLY
        entries.append(Entry(info.key_id, info.kind, status, info.created_at))
    entries.sort(key=lambda e: (e.created_at, e.key_id))
    sealing = kms_key_id or next(info.kms_key_id for info, _ in legacy if info.key_id == primary)
    return State(keyset, secrets.token_hex(8), 1, sealing, tuple(entries))


def unwrap_legacy(aws: AwsCalls, info: KeyInfo, wrapped: bytes) -> Key:
    """A key of the earlier format: one KMS ``Decrypt`` under the context it was wrapped with."""
    context = {
        "pynamodb-stash:key-store": aws.table_name,
        "pynamodb-stash:keyset": info.keyset,
        "pynamodb-stash:key-id": info.key_id,
        "pynamodb-stash:kind": info.kind,
    }
    data = aws.kms(
        "decrypt", info.keyset, info.kms_key_id,
        CiphertextBlob=wrapped, KeyId=info.kms_key_id, EncryptionContext=context,
    )
    try:
        return Key(info.key_id, data["Plaintext"])
    except ValueError:
        raise KeyProviderError(
            f"keyset {info.keyset!r} in key store {aws.table_name!r}: key {info.key_id!r} is not a "
            "32-byte key",
            code="key_store_tampered",
        ) from None
