"""Record format 2 of the KMS key store: what a keyset record says, and how it is sealed and opened.

Pure: no AWS call is made here. Sealing takes the KMS ``Encrypt`` as a function, and opening takes the
plaintext of the KMS ``Decrypt``; :mod:`pynamodb_stash._keystore_records` makes those calls. The layout
of a record is described in the docstring of :mod:`pynamodb_stash.kms`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ._crypto import FieldCipher, InvalidCiphertext, Key, check_key_id
from .exceptions import ConfigurationError

ENCRYPTION = "encryption"
INDEX = "index"
ACTIVE = "active"
DECRYPT_ONLY = "decrypt_only"
RETIRED = "retired"
DESTROYED = "destroyed"
RECORD = "#keyset"
FORMAT = 2
_DIGEST_LABEL = b"pynamodb-stash/keyset/v2"
_SEAL_KEY_ID = "keyset-seal"
_SECRET_SIZE = 32
_BODY_FIELDS = {"format", "store", "keyset", "incarnation", "version", "kms_key_id", "keys"}
_KEY_FIELDS = {"id", "kind", "status", "created_at"}
STATUSES = {ENCRYPTION: (ACTIVE, DECRYPT_ONLY, RETIRED), INDEX: (ACTIVE, RETIRED)}


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
class Entry:
    key_id: str
    kind: str
    status: str
    created_at: str


@dataclass(frozen=True)
class State:
    """A keyset record's body. Built by the store, or parsed from a record and then authenticated."""

    keyset: str
    incarnation: str
    version: int
    kms_key_id: str
    entries: Tuple[Entry, ...]

    def the(self, kind: str) -> Entry:
        return next(e for e in self.entries if e.kind == kind and e.status == ACTIVE)

    def entry(self, key_id: str) -> Optional[Entry]:
        return next((e for e in self.entries if e.key_id == key_id), None)

    def with_status(self, key_id: str, status: str) -> State:
        entries = tuple(replace(e, status=status) if e.key_id == key_id else e for e in self.entries)
        return replace(self, entries=entries)

    def check(self) -> None:
        """:raises ValueError: saying which invariant of a keyset record does not hold."""
        ids = [e.key_id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise ValueError("a key id appears twice")
        for e in self.entries:
            check_key_id(e.key_id)
            if e.status not in STATUSES.get(e.kind, ()):
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


# -- sealing and opening ------------------------------------------------------------------------------


def kms_context(store: str, state: State) -> Dict[str, str]:
    """The encryption context of a record's KMS seal (``attest``)."""
    return {
        "pynamodb-stash:key-store": store,
        "pynamodb-stash:keyset": state.keyset,
        "pynamodb-stash:record": "keyset-v2",
        "pynamodb-stash:version": str(state.version),
    }


def _digest(body: bytes) -> bytes:
    return hashlib.sha256(_DIGEST_LABEL + body).digest()


def sealed_record(
    state: State, store: str, keys: Dict[str, Key], kms_encrypt: Callable[[bytes], bytes]
) -> Dict[str, Any]:
    """The item of ``state`` with ``keys``, its seal made by ``kms_encrypt`` (a KMS ``Encrypt`` of a
    plaintext in :func:`kms_context`, returning the ciphertext)."""
    body = state.body(store)
    digest = _digest(body)
    seal = Key.generate(_SEAL_KEY_ID)
    attest = kms_encrypt(digest + seal.export_secret_bytes())
    secret = b"".join(keys[e.key_id].export_secret_bytes() for e in state.entries)
    return {
        "keyset": {"S": state.keyset}, "key_id": {"S": RECORD}, "format": {"N": str(FORMAT)},
        "version": {"N": str(state.version)}, "kms_key_id": {"S": state.kms_key_id},
        "body": {"B": body}, "attest": {"B": attest},
        "material": {"B": FieldCipher(seal, store, state.keyset).seal(secret, digest)},
    }


def parse_record(item: Dict[str, Any], store: str, keyset: str) -> Tuple[State, bytes, bytes, bytes]:
    """The state a record claims, with its body, seal and sealed material: not authenticated yet.

    :raises ValueError: naming what is wrong, never a value.
    """
    try:
        body = bytes(item["body"]["B"])
        attest = bytes(item["attest"]["B"])
        material = bytes(item["material"]["B"])
        state = _parse_body(body, store, keyset)
        if item["version"]["N"] != str(state.version) or item["kms_key_id"]["S"] != state.kms_key_id:
            raise ValueError("its plain version or KMS key differs from its body's")
    except (KeyError, TypeError):
        raise ValueError("a field is missing") from None
    return state, body, attest, material


def open_record(state: State, store: str, body: bytes, plaintext: Any, material: bytes) -> Dict[str, Key]:
    """The keys of a parsed record, given the plaintext KMS decrypted its seal to.

    :raises ValueError: saying why the record does not authenticate, never a value.
    """
    digest = _digest(body)
    if not isinstance(plaintext, bytes) or len(plaintext) != 2 * _SECRET_SIZE or not hmac.compare_digest(
        plaintext[:_SECRET_SIZE], digest
    ):
        raise ValueError("its seal is not of its body")
    try:
        seal = Key(_SEAL_KEY_ID, plaintext[_SECRET_SIZE:])
        secret = FieldCipher(seal, store, state.keyset).open(material, digest)
    except (ValueError, InvalidCiphertext):
        raise ValueError("its key material does not open") from None
    if len(secret) != _SECRET_SIZE * len(state.entries):
        raise ValueError("its key material has the wrong length")
    try:
        return {
            e.key_id: Key(e.key_id, secret[i * _SECRET_SIZE:(i + 1) * _SECRET_SIZE])
            for i, e in enumerate(state.entries)
        }
    except ValueError:
        raise ValueError("a key is all zero bytes") from None


def _parse_body(body: bytes, store: str, keyset: str) -> State:
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
        entries.append(Entry(key["id"], key["kind"], key["status"], key["created_at"]))
    if not isinstance(data["incarnation"], str) or not isinstance(data["kms_key_id"], str):
        raise ValueError("its body's incarnation or KMS key is malformed")
    state = State(keyset, data["incarnation"], version, data["kms_key_id"], tuple(entries))
    state.check()
    return state


class _Repeated(ValueError):
    pass


def _no_repeats(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise _Repeated
    return data


# -- what a record says as stored (not authenticated) -------------------------------------------------


def claimed_primary(item: Dict[str, Any]) -> str:
    """The active encryption key a record's body names, for an error message; "unknown" if none."""
    try:
        claimed = json.loads(bytes(item["body"]["B"]))
        primary = next(k["id"] for k in claimed["keys"] if k["kind"] == ENCRYPTION and k["status"] == ACTIVE)
        return check_key_id(primary)
    except Exception:  # anything at all: this only names the key in the message
        return "unknown"


def tombstone(keyset: str, kms_key_id: Optional[str]) -> Dict[str, Any]:
    """The item that replaces a destroyed keyset's record."""
    return {
        "keyset": {"S": keyset}, "key_id": {"S": RECORD}, "format": {"N": str(FORMAT)},
        "status": {"S": DESTROYED}, "destroyed_at": {"S": now()},
        **({"kms_key_id": {"S": kms_key_id}} if kms_key_id else {}),
    }


def is_record(row: Dict[str, Any]) -> bool:
    """Whether a row of a keyset is its record (or tombstone), not a key of the earlier format."""
    return bool(row.get("key_id", {}).get("S") == RECORD)


def is_tombstone(item: Dict[str, Any]) -> bool:
    return bool(item.get("status", {}).get("S") == DESTROYED)


def stored_key_ids(
    record: Optional[Dict[str, Any]], legacy: List[Dict[str, Any]]
) -> Tuple[Tuple[str, ...], Optional[str]]:
    """Key ids and KMS key of a keyset's rows as stored (not authenticated), for a destruction report."""
    ids: List[str] = []
    kms_key_id: Optional[str] = None
    if record is not None and not is_tombstone(record):
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


# -- names and times ----------------------------------------------------------------------------------


def check_keyset(keyset: object) -> None:
    if not isinstance(keyset, str) or not keyset:
        raise ConfigurationError("a keyset name is a non-empty string")


def new_id(kind: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    while True:
        key_id = ("idx-" if kind == INDEX else "k-") + secrets.token_hex(4)
        if key_id not in taken:
            return key_id


def now() -> str:
    return datetime.now(timezone.utc).isoformat()

KeyInfo.__module__ = "pynamodb_stash.kms"  # shown where it is public
