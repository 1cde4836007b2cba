"""The only module that touches key material, nonces and ``cryptography.hazmat``.

Wire format of a stored ``x__source`` value (version 1)::

    +---------+--------+------------------+-----------+----------------------------+
    | version | id_len | key id (ASCII)   | nonce     | ciphertext + tag           |
    | 1 byte  | 1 byte | id_len bytes     | 12 bytes  | len(plaintext) + 16 bytes  |
    +---------+--------+------------------+-----------+----------------------------+

The cipher is AES-256-GCM-SIV (RFC 8452), which stays safe if a random nonce ever repeats. Each
(key, logical table, attribute path) gets its own AES key, derived once with HKDF-SHA256 and cached by
the keyring, so no key derivation runs per value. The associated data is::

    version | id_len | key id | u16 len | table | u16 len | path | item key
        [| "H" u16 len HMAC] [| "L" u16 len claims] [| "I" list positions]

where ``item key`` is the encoded primary key of the item (``_wire.encode_key_value``), then the
stored ``x__hmac`` of an equality attribute, the lock-context claims of an identity-bound one, and the
list positions of a value inside a list of maps. A value copied to another item, attribute, table or
list position, or written under another key, fails to open.

An HMAC (``x__hmac``) is HMAC-SHA256 under a key derived from the index key and a scope (by default the
logical table and the attribute path), truncated to 128 bits and written as unpadded base64url: 22
characters. 128 bits make an accidental collision as unlikely as guessing an AES-128 key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
from contextvars import ContextVar
from typing import Any, Iterable, Iterator, NoReturn, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION = 1
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
HMAC_SIZE = 16
_KEY_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ENC_LABEL = b"pynamodb-stash/v1/encrypt"
_HMAC_LABEL = b"pynamodb-stash/v1/hmac"


_fixed_nonces: ContextVar[Optional[Iterator[bytes]]] = ContextVar("pynamodb_stash_fixed_nonces", default=None)


@contextlib.contextmanager
def fixed_nonces(nonces: Iterable[bytes]) -> Iterator[None]:
    """Use the given nonces instead of random ones, in this context only: for known-answer vectors.

    Never for real data: a repeated nonce reveals repeated values.
    """
    checked = []
    for nonce in nonces:
        if len(nonce) != NONCE_SIZE:
            raise ValueError("bad nonce length")
        checked.append(nonce)
    token = _fixed_nonces.set(iter(checked))
    try:
        yield
    finally:
        _fixed_nonces.reset(token)


class Nonces:
    """Fresh nonces for the values of one item, drawn with one read of the operating system's generator
    (or the next fixed ones in a :func:`fixed_nonces` context). Opaque: only :meth:`FieldCipher.seal`
    takes a nonce out, and each one once."""

    __slots__ = ("_pool", "_taken")

    def __init__(self, count: int) -> None:
        fixed = _fixed_nonces.get()
        self._pool = b"".join(next(fixed) for _ in range(count)) if fixed is not None else os.urandom(
            NONCE_SIZE * count
        )
        self._taken = 0

    def _take(self) -> bytes:
        start = self._taken
        if start + NONCE_SIZE > len(self._pool):
            raise ValueError("more values sealed than nonces drawn")
        self._taken = start + NONCE_SIZE
        return self._pool[start : start + NONCE_SIZE]

    def __repr__(self) -> str:
        return "Nonces(...)"


class InvalidCiphertext(Exception):
    """A stored value is malformed or not authentic. Internal: callers re-raise it with names attached."""


def length_prefixed(data: bytes) -> bytes:
    """``data`` preceded by its length as two big-endian bytes, so concatenations stay unambiguous."""
    if len(data) > 0xFFFF:
        raise ValueError("component too long for the associated data")
    return len(data).to_bytes(2, "big") + data


def check_key_id(key_id: object) -> str:
    """Return ``key_id`` if it is a valid key id (1-64 of ``A-Z a-z 0-9 . _ : -``), else raise ValueError."""
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ValueError("a key id is 1 to 64 characters from A-Z a-z 0-9 . _ : -")
    return key_id


class Key:
    """A 256-bit secret key with a public id.

    Prints as ``Key(id='k1', <secret>)``; cannot be pickled; copies are the same object. The secret
    bytes leave this object only through :meth:`export_secret_bytes`.

    Every constructor refuses (with ``ValueError``, naming the key id only) a key id that
    :func:`check_key_id` refuses, a secret that is not exactly 32 ``bytes``, and the all-zero secret:
    32 zero bytes are what an uninitialised buffer or a placeholder holds, never a generated key.
    """

    __slots__ = ("_id", "_secret")

    # The unpadded base64url of 32 bytes is 43 characters; the padded form adds one "=".
    _BASE64URL = re.compile(r"[A-Za-z0-9_-]{43}=?")
    _ZERO = bytes(KEY_SIZE)

    def __init__(self, key_id: str, secret: bytes) -> None:
        """:raises ValueError: for a bad key id, a secret that is not 32 bytes, or an all-zero secret."""
        check_key_id(key_id)
        if not isinstance(secret, bytes) or len(secret) != KEY_SIZE:
            raise ValueError(f"key {key_id!r} must be exactly {KEY_SIZE} bytes")
        if hmac.compare_digest(secret, Key._ZERO):
            raise ValueError(f"key {key_id!r} is all zero bytes, which is never a real key")
        self._id = key_id
        self._secret = secret

    @classmethod
    def generate(cls, key_id: str) -> Key:
        """A fresh random key from the operating system's CSPRNG."""
        return cls(key_id, os.urandom(KEY_SIZE))

    @classmethod
    def from_base64(cls, key_id: str, text: object) -> Key:
        """A key from its base64url form, as :meth:`export_secret_base64` writes it.

        The text must be exactly the 43 characters (``A-Z a-z 0-9 - _``) that encode 32 bytes, in
        their canonical form (the unused low bits of the last character zero), optionally followed by
        the one ``=`` of standard padding: it carries nothing, ``base64.urlsafe_b64encode`` writes it,
        and earlier versions accepted it. Nothing else is accepted (no whitespace, no character
        outside that alphabet, no standard-alphabet ``+`` or ``/``, no other padding), so nothing is
        silently dropped and each key has one spelling besides its padded one.

        :raises ValueError: naming ``key_id`` only (never the text): for a bad key id, a text that is
            not such base64url, or a key that :class:`Key` refuses (all zero bytes).
        """
        check_key_id(key_id)
        if not isinstance(text, str) or not Key._BASE64URL.fullmatch(text):
            raise ValueError(
                f"key {key_id!r} is not {KEY_SIZE} bytes as 43 characters of base64url (A-Z a-z 0-9 - _)"
            )
        unpadded = text.rstrip("=")
        secret = base64.urlsafe_b64decode(unpadded + "=")
        # 43 characters carry 258 bits: the last 2 must be zero, or two texts would give one key.
        if not hmac.compare_digest(base64.urlsafe_b64encode(secret)[:43], unpadded.encode("ascii")):
            raise ValueError(f"key {key_id!r} is not canonical base64url: its last character has stray bits")
        return cls(key_id, secret)

    @property
    def id(self) -> str:
        return self._id

    def export_secret_bytes(self) -> bytes:
        """The raw key. Handle with care: anyone holding these bytes can read or forge the data."""
        return self._secret

    def export_secret_base64(self) -> str:
        """The raw key as unpadded base64url. Handle with care, as :meth:`export_secret_bytes`."""
        return base64.urlsafe_b64encode(self._secret).decode("ascii").rstrip("=")

    def same_secret_as(self, other: Key) -> bool:
        """Whether two keys hold the same secret (compared in constant time)."""
        return hmac.compare_digest(self._secret, other._secret)

    def __repr__(self) -> str:
        return f"Key(id={self._id!r}, <secret>)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self._id == other._id and self.same_secret_as(other)

    def __hash__(self) -> int:
        return hash(self._id)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("pynamodb_stash keys cannot be pickled")

    def __copy__(self) -> Key:
        return self

    def __deepcopy__(self, memo: Any) -> Key:
        return self


def _derive(key: Key, label: bytes, *parts: bytes) -> bytes:
    info = label + b"".join(length_prefixed(part) for part in parts)
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=info).derive(key._secret)


class FieldCipher:
    """Encrypts and decrypts the values of one attribute path in one logical table under one key."""

    __slots__ = ("key_id", "_aead", "_header", "_aad_prefix")

    def __init__(self, key: Key, table: str, path: str) -> None:
        table_bytes, path_bytes = table.encode(), path.encode()
        self.key_id = key.id
        self._aead = AESGCMSIV(_derive(key, _ENC_LABEL, table_bytes, path_bytes))
        key_id = key.id.encode("ascii")
        self._header = bytes((FORMAT_VERSION, len(key_id))) + key_id
        self._aad_prefix = self._header + length_prefixed(table_bytes) + length_prefixed(path_bytes)

    def seal(self, plaintext: bytes, item_key: bytes, nonces: Optional[Nonces] = None) -> bytes:
        """Encrypt ``plaintext`` bound to ``item_key`` under the next of ``nonces`` (by default, a fresh
        nonce drawn here).

        :raises ValueError: for an empty ``plaintext`` (a typed plaintext starts with its type tag;
            cryptography before 43 refuses empty data here, so every version refuses it alike), or when
            ``nonces`` is used up.
        """
        if not plaintext:
            raise ValueError("an empty plaintext is never sealed")
        nonce = (nonces or Nonces(1))._take()
        return self._header + nonce + self._aead.encrypt(nonce, plaintext, self._aad_prefix + item_key)

    def open(self, blob: bytes, item_key: bytes) -> bytes:
        """Decrypt ``blob`` (a value of the wire format) or raise :class:`InvalidCiphertext`."""
        start = len(self._header)
        body = start + NONCE_SIZE
        if len(blob) < body + TAG_SIZE or not blob.startswith(self._header):
            raise InvalidCiphertext
        try:
            return self._aead.decrypt(blob[start:body], blob[body:], self._aad_prefix + item_key)
        except InvalidTag:
            raise InvalidCiphertext from None


def read_key_id(blob: object) -> str:
    """The key id written in a stored value's header; :class:`InvalidCiphertext` if there is none."""
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < 2 or blob[0] != FORMAT_VERSION:
        raise InvalidCiphertext
    end = 2 + blob[1]
    if len(blob) < end + NONCE_SIZE + TAG_SIZE:
        raise InvalidCiphertext
    try:
        return check_key_id(bytes(blob[2:end]).decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidCiphertext from None


class FieldHasher:
    """Computes the equality HMAC of one scope (a logical table and attribute, or a shared scope name)."""

    __slots__ = ("key_id", "_template")

    def __init__(self, key: Key, *scope: str) -> None:
        self.key_id = key.id
        derived = _derive(key, _HMAC_LABEL, *(part.encode() for part in scope))
        # A keyed state copied per value: cheaper than keying HMAC anew (hmac.digest) for every value.
        self._template = hmac.new(derived, digestmod=hashlib.sha256)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("pynamodb_stash keys cannot be pickled")

    def __copy__(self) -> FieldHasher:
        return self

    def __deepcopy__(self, memo: Any) -> FieldHasher:
        return self

    def digest(self, data: bytes, size: int = HMAC_SIZE) -> str:
        """The HMAC-SHA256 of ``data``, its first ``size`` bytes (1 to 16), as unpadded base64url."""
        mac = self._template.copy()
        mac.update(data)
        return base64.urlsafe_b64encode(mac.digest()[:size]).rstrip(b"=").decode("ascii")


def digests_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two HMAC strings."""
    return hmac.compare_digest(a.encode(), b.encode())
