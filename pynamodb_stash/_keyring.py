"""Keyrings: which keys encrypt, which decrypt, which hash; and where a model finds its keyring."""

from __future__ import annotations

import base64
import binascii
import contextlib
import heapq
import hmac
import itertools
import json
import logging
import os
import re
import threading
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Mapping, NoReturn, Optional, Protocol

from ._crypto import FieldCipher, FieldHasher, Key, check_key_id, length_prefixed
from .exceptions import ConfigurationError, KeyNotFoundError

ENV_VAR = "PYNAMODB_STASH_KEYRING"
_ENV_PREFIX = "stash-keyring:v1:"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_SURROUNDING_WHITESPACE = " \t\r\n"


class Keyring:
    """One primary encryption key, any number of decrypt-only keys, and the index (HMAC) key.

    New values are encrypted under the primary key; a stored value names the key id it was written
    under, and any key of the keyring with that id can decrypt it. The index key is separate, so
    rotating encryption keys never changes an HMAC.

    Derived per-(key, table, attribute) ciphers and HMAC keys are computed once and cached here.

    Every way of building a keyring (:meth:`local`, :meth:`from_string`, :meth:`with_new_primary`,
    :meth:`with_new_index_key`, a KMS key store) ends here, so each gets the same checks.

    :raises ConfigurationError: naming key ids only, if two keys share an id, two encryption keys share
        a secret (one key under two ids), or the index key shares an encryption key's id or secret.
    """

    def __init__(
        self,
        primary: Key,
        *,
        index_key: Key,
        decrypt_only: tuple[Key, ...] = (),
        retired_ids: tuple[str, ...] = (),
    ) -> None:
        keys = {primary.id: primary}
        for key in decrypt_only:
            if key.id in keys:
                raise ConfigurationError(f"key id {key.id!r} appears twice in the keyring")
            keys[key.id] = key
        if index_key.id in keys:
            raise ConfigurationError(f"the index key's id {index_key.id!r} is also an encryption key's id")
        encryption = tuple(keys.values())
        for position, key in enumerate(encryption):
            for earlier in encryption[:position]:
                if key.same_secret_as(earlier):
                    raise ConfigurationError(
                        f"keys {earlier.id!r} and {key.id!r} hold the same secret: each key must be distinct"
                    )
            if index_key.same_secret_as(key):
                raise ConfigurationError(
                    f"the index key {index_key.id!r} holds the same secret as encryption key {key.id!r}: "
                    "the index key must differ from every encryption key"
                )
        self._primary = primary
        self._keys = keys
        self._retired = frozenset(retired_ids) - set(keys)
        self._index_key = index_key
        self._ciphers: dict[tuple[str, str, str], FieldCipher] = {}
        self._hashers: dict[tuple[str, ...], FieldHasher] = {}
        self._lock = threading.Lock()

    @classmethod
    def local(
        cls,
        key: bytes,
        *,
        index_key: bytes,
        key_id: str = "k1",
        index_key_id: str = "idx1",
        decrypt_only: Mapping[str, bytes] | None = None,
    ) -> Keyring:
        """A keyring from raw 32-byte keys held by the application.

        :param key: the primary encryption key.
        :param index_key: the HMAC key for equality indexes; must differ from every encryption key.
        :param decrypt_only: older keys by id, still accepted for reading.
        :raises ConfigurationError: naming key ids only, for a key that is not 32 bytes or is all zero
            bytes, a bad or repeated key id, or a secret used twice (two encryption keys, or an
            encryption key as index key).
        """
        try:
            primary = Key(key_id, key)
            index = Key(index_key_id, index_key)
            old = tuple(Key(kid, secret) for kid, secret in (decrypt_only or {}).items())
        except ValueError as exc:
            raise ConfigurationError(f"invalid local keyring: {exc}") from None
        return cls(primary, index_key=index, decrypt_only=old)

    @classmethod
    def generate(cls, *, key_id: str = "k1", index_key_id: str = "idx1") -> Keyring:
        """A keyring of fresh random keys (for tests, demos and ``pynamodb-stash keygen``)."""
        return cls(Key.generate(key_id), index_key=Key.generate(index_key_id))

    @classmethod
    def from_string(cls, text: str, *, source: str = "keyring string") -> Keyring:
        """Parse what :meth:`export_secret_string` (and ``pynamodb-stash keygen``) writes.

        The text is ``stash-keyring:v1:`` and the base64url of a UTF-8 JSON object, and is parsed
        strictly: spaces, tabs and line breaks around the whole text are ignored (a file or a shell often
        adds a newline), nothing else is. The payload is base64url (``A-Z a-z 0-9 - _``) without
        padding or with exactly its standard padding; any other character, or stray bits in its last
        character, is refused rather than dropped. No JSON object may repeat a name. Each key must be
        as :meth:`Key.from_base64` requires, and the keyring as :class:`Keyring` requires (no all-zero
        key, no secret under two ids).

        :raises ConfigurationError: naming ``source``, what is wrong and at most a key id; never key
            bytes or any part of the text.
        """
        try:
            if not isinstance(text, str):
                raise ValueError("it is not a string")
            text = text.strip(_SURROUNDING_WHITESPACE)
            if not text.startswith(_ENV_PREFIX):
                raise ValueError(f"it does not start with {_ENV_PREFIX!r}")
            try:
                payload = _decode_base64url(text[len(_ENV_PREFIX):])
                data = json.loads(payload.decode("utf-8"), object_pairs_hook=_object_without_repeats)
            except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
                # These errors quote the input they choke on; the input is secret.
                raise ValueError("it is not base64url-encoded JSON") from None
            if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
                raise ValueError("it has no 'keys' object")
            keys = {kid: Key.from_base64(check_key_id(kid), secret) for kid, secret in data["keys"].items()}
            primary = keys.pop(data.get("primary"), None) if isinstance(data.get("primary"), str) else None
            if primary is None:
                raise ValueError("its primary key id is not one of its keys")
            index = data.get("index")
            if not isinstance(index, dict):
                raise ValueError("it has no 'index' object")
            index_key = Key.from_base64(check_key_id(index.get("id")), index.get("key"))
            old = tuple(keys.values())
            return cls(primary, index_key=index_key, decrypt_only=old)
        except (ValueError, ConfigurationError) as exc:
            raise ConfigurationError(f"{source} is not a valid pynamodb-stash keyring: {exc}") from None

    @classmethod
    def from_env(cls, name: str = ENV_VAR) -> Keyring:
        """The keyring in environment variable ``name`` (as printed by ``pynamodb-stash keygen``), read
        and parsed at its first use, not here: ``Meta.keyring = Keyring.from_env()`` never fails at
        import, and the variable may be set after the models are imported (it is read once).

        :raises ConfigurationError: at first use, if the variable is unset or invalid (naming the
            variable, never its text).
        """
        if not isinstance(name, str) or not name:
            raise ConfigurationError("Keyring.from_env takes the name of an environment variable")
        return _EnvironmentKeyring(name)

    @classmethod
    def _from_env_now(cls, name: str) -> Keyring:
        text = os.environ.get(name)
        if not text:
            raise ConfigurationError(
                f"environment variable {name} is not set: set it to what `pynamodb-stash keygen` prints "
                "(or give the model another keyring: Meta.keyring, pynamodb_stash.configure(keyring=...))"
            )
        return cls.from_string(text, source=f"environment variable {name}")

    def with_new_primary(self, key: bytes, *, key_id: str) -> Keyring:
        """A keyring whose primary is ``key``, keeping every current key as decrypt-only and the index key.

        The local-key rotation step: deploy it, re-encrypt (``pynamodb-stash rotate``), then drop the old
        keys. :raises ConfigurationError: for a bad key (not 32 bytes, all zero) or id, an id already in
        the keyring, or a secret already in it (an encryption key's or the index key's).
        """
        try:
            primary = Key(key_id, key)
        except ValueError as exc:
            raise ConfigurationError(f"invalid key: {exc}") from None
        if key_id in self._keys:
            raise ConfigurationError(f"key id {key_id!r} is already in the keyring")
        old = tuple(self._keys.values())
        return Keyring(primary, index_key=self._index_key, decrypt_only=old, retired_ids=tuple(self._retired))

    def with_new_index_key(self, key: bytes, *, key_id: str) -> Keyring:
        """The same encryption keys with a new index (HMAC) key: every HMAC changes.

        Deploy it with ``pynamodb-stash rotate --rehash``, which rewrites every item's HMACs.
        :raises ConfigurationError: for a bad key (not 32 bytes, all zero) or id, or an encryption key's
            id or secret.
        """
        try:
            index = Key(key_id, key)
        except ValueError as exc:
            raise ConfigurationError(f"invalid key: {exc}") from None
        others = tuple(k for kid, k in self._keys.items() if kid != self._primary.id)
        return Keyring(self._primary, index_key=index, decrypt_only=others, retired_ids=tuple(self._retired))

    def export_secret_string(self) -> str:
        """The whole keyring, secrets included, as one line for :meth:`from_string` or the environment."""
        data = {
            "primary": self._primary.id,
            "keys": {kid: key.export_secret_base64() for kid, key in self._keys.items()},
            "index": {"id": self._index_key.id, "key": self._index_key.export_secret_base64()},
        }
        payload = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
        return _ENV_PREFIX + payload.rstrip("=")

    @property
    def primary_key_id(self) -> str:
        return self._primary.id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of every encryption key, primary first."""
        return tuple(self._keys)

    @property
    def index_key_id(self) -> str:
        return self._index_key.id

    def encrypting_cipher(self, table: str, path: str) -> FieldCipher:
        return self._cipher(self._primary.id, table, path)

    def decrypting_cipher(self, key_id: str, table: str, path: str) -> FieldCipher:
        """The cipher for values written under ``key_id``.

        :raises KeyNotFoundError: if the keyring does not hold ``key_id``.
        """
        return self._cipher(key_id, table, path)

    def hasher(self, *scope: str) -> FieldHasher:
        hasher = self._hashers.get(scope)
        if hasher is None:
            with self._lock:
                hasher = self._hashers.setdefault(scope, FieldHasher(self._index_key, *scope))
        return hasher

    def _cipher(self, key_id: str, table: str, path: str) -> FieldCipher:
        cache_key = (key_id, table, path)
        cipher = self._ciphers.get(cache_key)
        if cipher is None:
            key = self._keys.get(key_id)
            if key is None:
                if key_id in self._retired:
                    raise KeyNotFoundError(f"key id {key_id!r} is retired")
                raise KeyNotFoundError(f"key id {key_id!r} is not in the keyring")
            with self._lock:
                cipher = self._ciphers.setdefault(cache_key, FieldCipher(key, table, path))
        return cipher

    def __repr__(self) -> str:
        return (
            f"Keyring(primary={self._primary.id!r}, keys={list(self._keys)!r}, "
            f"index={self._index_key.id!r})"
        )

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("pynamodb_stash keyrings cannot be pickled")

    def __copy__(self) -> Keyring:
        return self

    def __deepcopy__(self, memo: Any) -> Keyring:
        return self


class _EnvironmentKeyring(Keyring):
    """What :meth:`Keyring.from_env` returns: a :class:`Keyring` whose keys are read from the environment
    at first use. Every attribute it lacks is the parsed keyring's; the variable is read once."""

    def __init__(self, name: str) -> None:  # no keys yet: Keyring.__init__ runs on the parsed one
        self._env_name = name
        self._env_lock = threading.Lock()
        self._env_keyring: Optional[Keyring] = None

    def _env_resolve(self) -> Keyring:
        keyring = self._env_keyring
        if keyring is None:
            with self._env_lock:
                keyring = self._env_keyring
                if keyring is None:
                    keyring = self._env_keyring = Keyring._from_env_now(self._env_name)
        return keyring

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_env_"):  # not set yet (during __init__): never read the environment for it
            raise AttributeError(attribute)
        return getattr(self._env_resolve(), attribute)

    def __repr__(self) -> str:
        if self._env_keyring is None:
            return f"Keyring.from_env({self._env_name!r}, not read yet)"
        return repr(self._env_keyring)


_configured: Keyring | KeyringSource | None = None
_env_cache: tuple[str, Keyring] | None = None


def _decode_base64url(text: str) -> bytes:
    """Strict base64url: the alphabet only, no padding or exactly the standard padding, canonical bits.

    :raises binascii.Error: without the input in its message.
    """
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if not _BASE64URL.fullmatch(body) or len(body) % 4 == 1 or padding not in (0, -len(body) % 4):
        raise binascii.Error("not base64url")
    data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    # The last character may carry bits beyond the data; they must be zero, or they would be dropped.
    if not hmac.compare_digest(base64.urlsafe_b64encode(data).rstrip(b"="), body.encode("ascii")):
        raise binascii.Error("not canonical base64url")
    return data


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused (without naming the member) if it repeats a name, as json keeps the last."""
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("a JSON object in it repeats a name")
    return data


class KeyringSource(Protocol):
    """Anything that hands out the current keyring, e.g. one backed by AWS KMS that expires its keys.

    ``Meta.keyring`` and ``configure(keyring=...)`` take a :class:`Keyring` or a source; a source's
    ``current()`` is called once per item encrypted or decrypted, so it must be cheap when cached.
    """

    def current(self) -> Keyring: ...


current_tenant: ContextVar[Optional[str]] = ContextVar("pynamodb_stash_tenant", default=None)


@contextlib.contextmanager
def tenant(name: str) -> Iterator[None]:
    """Inside the block, models whose keyring is :class:`TenantKeyrings` use tenant ``name``'s keys.

    It applies to everything the block does, in this thread or asyncio task: saving, reading, and
    hashing plaintext for keys and conditions (so a query in one tenant never matches another's items).
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError("a tenant is a non-empty string")
    token = current_tenant.set(name)
    try:
        yield
    finally:
        current_tenant.reset(token)


current_lock_context: ContextVar[Optional[bytes]] = ContextVar("pynamodb_stash_lock_context", default=None)


@contextlib.contextmanager
def lock_context(**claims: str) -> Iterator[None]:
    """Bind identity-bound attributes written inside the block to ``claims`` (``sub="user-123"``).

    Values of ``EncryptedAttribute(..., identity_bound=True)`` are encrypted with the claims in their
    associated data, and decrypt only inside a lock context with exactly the same claims; otherwise
    ``DecryptionError``. The claims are not stored: the reader must know them (from its own session).

    :raises ConfigurationError: for no claims, or a claim that is not a non-empty string.
    """
    if not claims or not all(isinstance(value, str) and value for value in claims.values()):
        raise ConfigurationError("lock_context takes one or more claims, each a non-empty string")
    encoded = b"".join(
        length_prefixed(name.encode()) + length_prefixed(value.encode()) for name, value in sorted(claims.items())
    )
    token = current_lock_context.set(encoded)
    try:
        yield
    finally:
        current_lock_context.reset(token)


class _Kept:
    """A tenant :class:`TenantKeyrings` keeps: its keyring (or source) and the stamp of its last use."""

    __slots__ = ("source", "used")

    def __init__(self, source: Keyring | KeyringSource, used: int) -> None:
        self.source = source
        self.used = used


class TenantKeyrings:
    """One keyring per tenant, for ``Meta.keyring``: each tenant's values and HMACs are under its keys.

    The tenant is the item's ``attribute`` (a plain attribute of the model, by Python name) when it has
    one, else the one set with :func:`tenant`. Queries and conditions have no item, so they need
    :func:`tenant`. An item whose tenant differs from the one set with :func:`tenant` is refused.

    The keyrings (or keyring sources) of the ``max_tenants`` most recently used tenants are kept;
    keeping one more drops the least recently used, whose keyring ``keyring_for`` gives again when that
    tenant comes back. A tenant is kept only once its keyring has loaded: if ``keyring_for`` raises,
    or the source's ``current()`` raises (a KMS keyset that does not exist, or was destroyed), the
    error goes to the caller and the tenant is not kept (or no longer kept), so its next use asks
    again. Tenant names read from items, tampered with or not, thus hold memory for at most
    ``max_tenants`` tenants; but each use of a name that fails to load costs a new ``keyring_for`` call
    and ``current()`` (with a KMS key store, a key store query).

    Safe to share between threads. A kept tenant costs no lock. ``keyring_for`` and a new tenant's
    first ``current()`` run outside the lock, so threads meeting a new tenant at once may each load it
    (one result is kept).

    :param keyring_for: gives the keyring (or keyring source) of a tenant, e.g. a
        ``KeyStore.keyring`` per keyset; called for a tenant that is not kept. What it raises, and what
        the source's ``current()`` raises, is raised as it is.
    :param attribute: the plain model attribute that names an item's tenant, if items name one.
    :param max_tenants: how many tenants to keep, a positive int (default 1024).
    :raises ConfigurationError: if ``max_tenants`` is not a positive int.
    """

    def __init__(
        self,
        keyring_for: Callable[[str], Keyring | KeyringSource],
        *,
        attribute: Optional[str] = None,
        max_tenants: int = 1024,
    ) -> None:
        if not isinstance(max_tenants, int) or isinstance(max_tenants, bool) or max_tenants < 1:
            raise ConfigurationError("TenantKeyrings(max_tenants=...) takes a positive int")
        self.attribute = attribute
        self._max_tenants = max_tenants
        self._keyring_for = keyring_for
        self._kept: dict[str, _Kept] = {}
        self._clock = itertools.count()
        # (stamp, tenant) records: at least one per kept tenant, at most its last use. The least recently
        # used tenant is the first whose smallest record is still its last use; records that uses have
        # made stale are filed again as they surface. Only misses touch it, under the lock.
        self._by_use: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    @property
    def max_tenants(self) -> int:
        """How many tenants' keyrings are kept at most."""
        return self._max_tenants

    def for_tenant(self, name: str) -> Keyring:
        """Tenant ``name``'s current keyring, loaded through ``keyring_for`` unless the tenant is kept.

        :raises ConfigurationError: if ``keyring_for`` gives, or the source's ``current()`` returns,
            something that is not a keyring (or keyring source). Whatever they raise is raised as it is.
            Either way the tenant is not kept afterwards.
        """
        kept = self._kept.get(name)
        if kept is None:
            return self._load(name)
        kept.used = next(self._clock)
        source = kept.source
        if isinstance(source, Keyring):
            return source
        try:
            keyring = source.current()
        except BaseException:
            self._forget(name, kept)
            raise
        if isinstance(keyring, Keyring):
            return keyring
        self._forget(name, kept)
        raise ConfigurationError(f"tenant {name!r}: the keyring source returned a {type(keyring).__name__}")

    def current(self) -> Keyring:
        name = current_tenant.get()
        if name is None:
            raise ConfigurationError(
                "no tenant is set: wrap the operation in `with pynamodb_stash.tenant(name):`"
                + (f" or give the item its {self.attribute!r}" if self.attribute else "")
            )
        return self.for_tenant(name)

    def _load(self, name: str) -> Keyring:
        # Outside the lock: loading may be slow (a KMS call), and other tenants must not wait for it.
        source = self._keyring_for(name)
        if not _is_keyring_or_source(source):
            raise ConfigurationError(f"tenant {name!r}: keyring_for returned a {type(source).__name__}")
        keyring = _current(source, f"tenant {name!r}")  # if this raises, nothing was kept
        with self._lock:
            if name not in self._kept:  # else another thread kept its own load first
                used = next(self._clock)
                self._kept[name] = _Kept(source, used)
                heapq.heappush(self._by_use, (used, name))
                self._evict()
        return keyring

    def _evict(self) -> None:
        """Drop least recently used tenants down to ``max_tenants``. Under the lock."""
        while len(self._kept) > self._max_tenants:
            used, name = heapq.heappop(self._by_use)
            kept = self._kept.get(name)
            if kept is None:
                continue  # the record of a tenant dropped since
            if kept.used != used:
                heapq.heappush(self._by_use, (kept.used, name))  # used since: filed again at its last use
                continue
            del self._kept[name]
        if len(self._by_use) > 2 * len(self._kept) + 64:  # records of forgotten tenants pile up: rebuild
            self._by_use = [(kept.used, name) for name, kept in self._kept.items()]
            heapq.heapify(self._by_use)

    def _forget(self, name: str, kept: _Kept) -> None:
        with self._lock:
            if self._kept.get(name) is kept:  # not what another thread has kept since
                del self._kept[name]

    def __repr__(self) -> str:
        return (
            f"TenantKeyrings(attribute={self.attribute!r}, max_tenants={self._max_tenants}, "
            f"kept={len(self._kept)})"
        )


_UNSET: Any = object()


def configure(
    *,
    keyring: Keyring | KeyringSource | None = _UNSET,
    audit_sink: Any = _UNSET,
    audit_enabled: bool = _UNSET,
    logger: Any = _UNSET,
    error_handler: Optional[Callable[[BaseException], None]] = _UNSET,
) -> None:
    """Process-wide settings; only the arguments given change.

    :param keyring: the keyring (or keyring source) of models whose ``Meta`` names none; ``None`` clears.
    :param audit_sink: where audit events go: a callable taking an ``AuditEvent``, or an object with an
        ``emit(event)`` method; ``None`` restores the default (JSON lines on ``pynamodb_stash.audit``).
    :param audit_enabled: ``False`` turns audit events off.
    :param logger: the ``logging.Logger`` the library reports its own problems on (a failing sink).
    :param error_handler: called once with each ``StashError`` that ends a library operation (see
        ``docs/audit.md``), and with sink failures;
        ``None`` removes it. What it raises is ignored.
    :raises ConfigurationError: for an argument of the wrong kind.
    """
    global _configured
    from . import _audit, exceptions

    if keyring is not _UNSET:
        if keyring is not None and not _is_keyring_or_source(keyring):
            raise ConfigurationError(f"configure(keyring=...) takes a Keyring, not {type(keyring).__name__}")
        _configured = keyring
    if audit_sink is not _UNSET:
        if audit_sink is not None and not (callable(audit_sink) or callable(getattr(audit_sink, "emit", None))):
            raise ConfigurationError("configure(audit_sink=...) takes a callable or an object with emit()")
        _audit.settings.sink = audit_sink if audit_sink is not None else _audit.LoggingSink()
    if audit_enabled is not _UNSET:
        _audit.settings.enabled = bool(audit_enabled)
    if logger is not _UNSET:
        if not isinstance(logger, logging.Logger):
            raise ConfigurationError("configure(logger=...) takes a logging.Logger")
        _audit.settings.logger = logger
    if error_handler is not _UNSET:
        if error_handler is not None and not callable(error_handler):
            raise ConfigurationError("configure(error_handler=...) takes a callable")
        exceptions.error_handler = error_handler


def _is_keyring_or_source(value: object) -> bool:
    return isinstance(value, Keyring) or callable(getattr(value, "current", None))


def _current(value: Keyring | KeyringSource, owner: str) -> Keyring:
    if isinstance(value, Keyring):
        return value
    keyring = value.current()
    if not isinstance(keyring, Keyring):
        raise ConfigurationError(f"{owner}: the keyring source returned a {type(keyring).__name__}")
    return keyring


def resolve_keyring(meta_keyring: object, owner: str) -> Keyring:
    """``Meta.keyring``, else the configured keyring, else ``$PYNAMODB_STASH_KEYRING``.

    :raises ConfigurationError: naming ``owner`` if none is found or one is not a Keyring.
    """
    global _env_cache
    if meta_keyring is not None:
        if not _is_keyring_or_source(meta_keyring):
            raise ConfigurationError(f"{owner}.Meta.keyring must be a Keyring, not {type(meta_keyring).__name__}")
        return _current(meta_keyring, owner)  # type: ignore[arg-type]
    if _configured is not None:
        return _current(_configured, owner)
    text = os.environ.get(ENV_VAR)
    if text:
        cached = _env_cache
        if cached is not None and cached[0] == text:
            return cached[1]
        keyring = Keyring.from_string(text, source=f"environment variable {ENV_VAR}")
        _env_cache = (text, keyring)
        return keyring
    raise ConfigurationError(
        f"{owner} has no keyring: set {owner}.Meta.keyring, call pynamodb_stash.configure(keyring=...), "
        f"or set the environment variable {ENV_VAR} (see `pynamodb-stash keygen`)"
    )
