"""Keys for production: keysets whose keys AWS KMS generates, stored wrapped in a DynamoDB table.

Needs the ``[kms]`` extra: ``pip install 'pynamodb-stash[kms]'``.

A *key store* is a small DynamoDB table. Each item is one key of one *keyset*: its id, its kind
(``encryption`` or ``index``), its status (``active``, ``decrypt_only`` or ``retired``), its creation
time, the KMS key that wraps it, and the key wrapped by KMS (``GenerateDataKey``). Plaintext keys exist
only in memory: :meth:`KeyStore.keyring` returns a keyring source that unwraps each key with one KMS
``Decrypt`` and keeps the keyring for a time-to-live and a number of uses, so a process encrypting
10,000 items makes two KMS calls.

The KMS encryption context of every wrapped key names the key store's table, the keyset, the key id and
its kind, so a wrapped key copied to another keyset or table does not unwrap.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as exc:  # pragma: no cover - exercised by a test that hides boto3
    raise ImportError(
        "pynamodb_stash.kms needs the [kms] extra: pip install 'pynamodb-stash[kms]'"
    ) from exc

from ._crypto import Key
from ._keyring import Keyring, TenantKeyrings
from .exceptions import ConfigurationError, KeyProviderError

__all__ = ["KeyInfo", "KeyStore", "KmsKeyringSource"]

ENCRYPTION = "encryption"
INDEX = "index"
ACTIVE = "active"
DECRYPT_ONLY = "decrypt_only"
RETIRED = "retired"
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})  # backs off on throttling


@dataclass(frozen=True)
class KeyInfo:
    """What the key store records about one key: never its material."""

    keyset: str
    key_id: str
    kind: str
    status: str
    created_at: str
    kms_key_id: str


class KeyStore:
    """Keysets of KMS-wrapped keys in the DynamoDB table ``table_name``.

    :param kms_client: a boto3 KMS client (default: ``boto3.client("kms")`` with retries on throttling).
    :param dynamodb_client: a boto3 DynamoDB client for the key store table.
    :raises KeyProviderError: from any method, when KMS or DynamoDB refuses or fails; the message names
        the keyset and KMS key id, and the boto3 error is chained.
    """

    def __init__(
        self, table_name: str, *, kms_client: Any = None, dynamodb_client: Any = None
    ) -> None:
        self.table_name = table_name
        self._kms = kms_client or boto3.client("kms", config=_RETRIES)
        self._dynamodb = dynamodb_client or boto3.client("dynamodb", config=_RETRIES)

    # -- the table ----------------------------------------------------------------------------------

    def create_table(self, *, wait: bool = True) -> None:
        """Create the key store table (on-demand capacity)."""
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

    # -- keysets and their lifecycle ------------------------------------------------------------------

    def create_keyset(self, keyset: str, kms_key_id: str) -> Tuple[str, str]:
        """A new keyset with an active encryption key and an index key, both wrapped by ``kms_key_id``.

        :returns: the ids of the encryption key and of the index key.
        :raises ConfigurationError: if the keyset exists.
        """
        if self.describe(keyset):
            raise ConfigurationError(f"keyset {keyset!r} already exists in key store {self.table_name!r}")
        encryption = self._new_key(keyset, ENCRYPTION, ACTIVE, kms_key_id)
        index = self._new_key(keyset, INDEX, ACTIVE, kms_key_id)
        return encryption, index

    def add_key(self, keyset: str, *, kms_key_id: Optional[str] = None) -> str:
        """A new encryption key, decrypt-only until :meth:`promote`: readers learn it before writers use it.

        :param kms_key_id: the KMS key to wrap it with (default: the one of the active key).
        """
        active = self._active(keyset, ENCRYPTION)
        return self._new_key(keyset, ENCRYPTION, DECRYPT_ONLY, kms_key_id or active.kms_key_id)

    def promote(self, keyset: str, key_id: str) -> None:
        """Make ``key_id`` the active encryption key; the previous one becomes decrypt-only."""
        key = self._find(keyset, key_id)
        if key.kind != ENCRYPTION or key.status == RETIRED:
            raise ConfigurationError(f"key {key_id!r} of keyset {keyset!r} cannot be promoted ({key.status})")
        previous = self._active(keyset, ENCRYPTION)
        if previous.key_id != key_id:
            self._set_status(keyset, key_id, ACTIVE)
            self._set_status(keyset, previous.key_id, DECRYPT_ONLY)

    def rotate(self, keyset: str) -> str:
        """:meth:`add_key` then :meth:`promote`, for a single process or a planned window. Returns the id."""
        key_id = self.add_key(keyset)
        self.promote(keyset, key_id)
        return key_id

    def retire(self, keyset: str, key_id: str) -> None:
        """Stop reading values under ``key_id``: they raise ``KeyNotFoundError`` naming it as retired.

        The wrapped key stays in the store, so retiring can be undone by promoting the key again.
        """
        key = self._find(keyset, key_id)
        if key.status == ACTIVE:
            raise ConfigurationError(f"key {key_id!r} of keyset {keyset!r} is active; promote another first")
        self._set_status(keyset, key_id, RETIRED)

    def destroy_keyset(self, keyset: str) -> int:
        """Delete every key of ``keyset`` (crypto-shredding): its values can never be decrypted again.

        :returns: the number of keys deleted.
        """
        keys = self.describe(keyset)
        for key in keys:
            self._call_dynamodb(
                "delete_item", keyset, TableName=self.table_name,
                Key={"keyset": {"S": keyset}, "key_id": {"S": key.key_id}},
            )
        return len(keys)

    def describe(self, keyset: str) -> List[KeyInfo]:
        """The keys of ``keyset``, without their material."""
        return [info for info, _ in self._items(keyset)]

    def keyring(
        self,
        keyset: str,
        *,
        ttl_seconds: float = 300.0,
        max_uses: int = 10_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> KmsKeyringSource:
        """A keyring source for ``Meta.keyring`` or ``configure(keyring=...)``.

        It unwraps the keyset's keys (one KMS ``Decrypt`` each) when first used, and again after
        ``ttl_seconds`` or ``max_uses`` items, picking up rotations then.
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

    # -- internals ---------------------------------------------------------------------------------

    def _new_key(self, keyset: str, kind: str, status: str, kms_key_id: str) -> str:
        key_id = ("idx-" if kind == INDEX else "k-") + secrets.token_hex(4)
        data = self._call_kms(
            "generate_data_key", keyset, kms_key_id,
            KeyId=kms_key_id, KeySpec="AES_256", EncryptionContext=self._context(keyset, key_id, kind),
        )
        self._call_dynamodb(
            "put_item",
            keyset,
            TableName=self.table_name,
            Item={
                "keyset": {"S": keyset},
                "key_id": {"S": key_id},
                "kind": {"S": kind},
                "status": {"S": status},
                "created_at": {"S": datetime.now(timezone.utc).isoformat()},
                "kms_key_id": {"S": kms_key_id},
                "wrapped": {"B": data["CiphertextBlob"]},
            },
            ConditionExpression="attribute_not_exists(key_id)",
        )
        return key_id

    def _context(self, keyset: str, key_id: str, kind: str) -> Dict[str, str]:
        return {
            "pynamodb-stash:key-store": self.table_name,
            "pynamodb-stash:keyset": keyset,
            "pynamodb-stash:key-id": key_id,
            "pynamodb-stash:kind": kind,
        }

    def _unwrap(self, info: KeyInfo, wrapped: bytes) -> Key:
        data = self._call_kms(
            "decrypt", info.keyset, info.kms_key_id,
            CiphertextBlob=wrapped, KeyId=info.kms_key_id,
            EncryptionContext=self._context(info.keyset, info.key_id, info.kind),
        )
        return Key(info.key_id, data["Plaintext"])

    def _items(self, keyset: str) -> List[Tuple[KeyInfo, bytes]]:
        """The keyset's keys as stored. :raises KeyProviderError: for an item that is not a key."""
        found: List[Tuple[KeyInfo, bytes]] = []
        start: Optional[Dict[str, Any]] = None
        while True:
            page = self._call_dynamodb(
                "query", keyset, TableName=self.table_name, ConsistentRead=True,
                KeyConditionExpression="keyset = :k", ExpressionAttributeValues={":k": {"S": keyset}},
                **({"ExclusiveStartKey": start} if start else {}),
            )
            for item in page.get("Items", []):
                try:
                    info = KeyInfo(
                        keyset, item["key_id"]["S"], item["kind"]["S"], item["status"]["S"],
                        item["created_at"]["S"], item["kms_key_id"]["S"],
                    )
                    found.append((info, bytes(item["wrapped"]["B"])))
                except (KeyError, TypeError):
                    raise KeyProviderError(
                        f"key store {self.table_name!r}: keyset {keyset!r} holds an item that is not a key"
                    ) from None
            start = page.get("LastEvaluatedKey")
            if not start:
                return found

    def _find(self, keyset: str, key_id: str) -> KeyInfo:
        for info in self.describe(keyset):
            if info.key_id == key_id:
                return info
        raise ConfigurationError(f"keyset {keyset!r} has no key {key_id!r}")

    def _active(self, keyset: str, kind: str) -> KeyInfo:
        active = [info for info in self.describe(keyset) if info.kind == kind and info.status == ACTIVE]
        if len(active) != 1:
            raise KeyProviderError(
                f"keyset {keyset!r} in key store {self.table_name!r} has {len(active)} active {kind} keys"
            )
        return active[0]

    def _set_status(self, keyset: str, key_id: str, status: str) -> None:
        self._call_dynamodb(
            "update_item", keyset, TableName=self.table_name,
            Key={"keyset": {"S": keyset}, "key_id": {"S": key_id}},
            UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}},
        )

    def _call_kms(self, operation: str, keyset: str, kms_key_id: str, **kwargs: Any) -> Dict[str, Any]:
        try:
            result: Dict[str, Any] = getattr(self._kms, operation)(**kwargs)
            return result
        except (ClientError, BotoCoreError) as exc:
            raise KeyProviderError(
                f"AWS KMS {operation} failed for keyset {keyset!r} with KMS key {kms_key_id!r}: {_aws_error(exc)}",
                code="kms_error",
            ) from exc

    def _call_dynamodb(self, operation: str, keyset: Optional[str], **kwargs: Any) -> Dict[str, Any]:
        try:
            result: Dict[str, Any] = getattr(self._dynamodb, operation)(**kwargs)
            return result
        except (ClientError, BotoCoreError) as exc:
            where = f" for keyset {keyset!r}" if keyset else ""
            raise KeyProviderError(
                f"key store {self.table_name!r}: DynamoDB {operation} failed{where}: {_aws_error(exc)}",
                code="key_store_error",
            ) from exc


class KmsKeyringSource:
    """The current keyring of one keyset, unwrapped through KMS and cached; see :meth:`KeyStore.keyring`."""

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

    def current(self) -> Keyring:
        """The cached keyring, reloaded (and the keys unwrapped again) past the TTL or use limit."""
        with self._lock:
            if self._keyring is None or self._clock() >= self._expires or self._uses >= self._max_uses:
                self._keyring = self._load()
                self._expires = self._clock() + self._ttl
                self._uses = 0
            self._uses += 1
            return self._keyring

    def _load(self) -> Keyring:
        index: Optional[Key] = None
        encryption: List[Tuple[KeyInfo, Key]] = []
        retired: List[str] = []
        for info, wrapped in self.store._items(self.keyset):
            if info.status == RETIRED:
                retired.append(info.key_id)
            elif info.kind == INDEX:
                if info.status == ACTIVE:
                    index = self.store._unwrap(info, wrapped)
            else:
                encryption.append((info, self.store._unwrap(info, wrapped)))
        # Mid-promotion (or after a crash in it) two keys may be active: the newest encrypts, and every
        # other key, active or not, still decrypts.
        active = sorted((info.created_at, key.id) for info, key in encryption if info.status == ACTIVE)
        primary = next((key for _, key in encryption if active and key.id == active[-1][1]), None)
        decrypt_only = [key for _, key in encryption if key is not primary]
        if primary is None or index is None:
            raise KeyProviderError(
                f"keyset {self.keyset!r} in key store {self.store.table_name!r} has no active "
                f"{'encryption' if primary is None else 'index'} key"
            )
        return Keyring(primary, index_key=index, decrypt_only=tuple(decrypt_only), retired_ids=tuple(retired))

    def __repr__(self) -> str:
        return f"KmsKeyringSource(store={self.store.table_name!r}, keyset={self.keyset!r})"


def _aws_error(exc: Exception) -> str:
    """What may be said of an AWS call's failure: its error code (a ClientError's) or its exception type."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    return type(exc).__name__
