"""Encrypted fields bound to a keyring and a logical table: the one way a stored field is opened
(:meth:`FieldRuntime.read`) and the one way one is sealed (:meth:`FieldRuntime.write`), with the
plaintext policy, read in one place (:func:`plaintext_policy`)."""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
)

from pynamodb.constants import BINARY, NULL, STRING

from . import _audit, _crypto, _plain_values
from ._attributes import EncryptedAttribute, HmacDigest
from ._binding import hmac_scope, keyring_of, table_of
from ._codecs import safe_reason
from ._keyring import Keyring, current_lock_context
from ._layout import index_keyed, layout, logical_table, nested_fields
from ._wire import with_digest
from .exceptions import ConfigurationError, DecryptionError, EncryptionError, KeyNotFoundError, StashError

if TYPE_CHECKING:
    from ._model import EncryptedModel


class ReadMode(NamedTuple):
    """How a read opens stored fields (see :meth:`FieldRuntime.read`)."""

    policy: Optional[str]
    """The plaintext policy in force: ``"forbid"``, ``"read_plaintext"``, or None for the model's own."""
    whole_item: bool
    """Whether the item was read whole (a stream image, a raw item, a full scan), not projected."""
    plain: bool = True
    """Whether plain attributes are read too; else only those a compound HMAC covers (for decrypt_item
    and verify, which need the encrypted values only)."""


MODEL_READ = ReadMode(None, False)


PLAINTEXT_POLICIES = ("forbid", "read_plaintext")


def plaintext_policy(cls: type[EncryptedModel]) -> str:
    """``cls.Meta.plaintext_policy`` (default ``"forbid"``): the one place it is read and checked.

    :raises ConfigurationError: for any other value.
    """
    policy = getattr(cls.Meta, "plaintext_policy", "forbid")
    if policy not in PLAINTEXT_POLICIES:
        raise ConfigurationError(
            f"{cls.__name__}.Meta.plaintext_policy is 'forbid' or 'read_plaintext', not {policy!r}"
        )
    return str(policy)


class FieldRuntime:
    """One encrypted field under one keyring and logical table: its ciphers and HMAC key, cached.

    :meth:`read` is the one way a stored field is opened, and :meth:`write` the one way one is sealed:
    every path (model items, nested maps and lists of maps, updates, the raw-item API, the operations
    tools) goes through them, so each applies the same checks.
    """

    __slots__ = (
        "field", "path", "name", "source", "hmac", "hmac_python", "is_key", "hmac_keyed", "legacy", "null",
        "codec", "absent", "where", "identity_bound", "model", "model_name",
        "_keyring", "_table", "_sealer", "_openers", "_hasher", "_hash_plaintext", "_hmac_prefix", "_hmac_size",
    )

    def __init__(
        self, cls: type[EncryptedModel], field: EncryptedAttribute[Any], keyring: Keyring, table: str, path: str
    ) -> None:
        companion = field.hmac_attribute
        self.field = field
        self.path = path
        self.name = field.python_name
        self.source = field.attr_name
        self.legacy = field.logical_name
        self.hmac = companion.attr_name if companion is not None else None
        self.hmac_python = companion.python_name if companion is not None else None
        self.is_key = companion is not None and (companion.is_hash_key or companion.is_range_key)
        self.hmac_keyed = self.is_key or (path == field.logical_name and field.python_name in index_keyed(cls))
        """Whether the HMAC keys the table or an index, so that a projection may hold it without the value."""
        self.null = field.null
        self.identity_bound = field.identity_bound
        self.codec = field.codec
        self.absent = field.codec.absent
        """None, or whether a value means "no value" (a PynamoDB attribute's empty set): stored as nothing."""
        self.where = f"{cls.__name__}.{field.python_name if path == field.logical_name else path}"
        self.model = cls
        self.model_name = cls.__name__
        self._keyring = keyring
        self._table = table
        self._sealer = keyring.encrypting_cipher(table, path)
        self._openers: Dict[bytes, _crypto.FieldCipher] = {}
        self._hasher = keyring.hasher(*hmac_scope(cls, field, path)) if field.equality else None
        self._hash_plaintext = field.hashes_encoding
        """Whether the HMAC input is the typed plaintext itself (no normalizer, no canonical form)."""
        self._hmac_prefix = field.equality_options.prefix
        self._hmac_size = field.hmac_size

    def digest(self, value: Any) -> str:
        """The HMAC of ``value``. :raises EncryptionError: if ``value`` is not of the declared type."""
        assert self._hasher is not None, "only equality fields have an HMAC"
        try:
            digest = self.field.hmac_text(self._hasher.digest(self.field.hmac_input(value), self.field.hmac_size))
            if _audit.wanted():
                _audit.record("hmac", self.model_name, self._table, (self.name,), (self._keyring.index_key_id,))
            return digest
        except Exception as exc:  # a user normalizer may raise anything
            raise EncryptionError(f"{self.where}: hashing failed: {safe_reason(exc)}") from None

    def encode(self, value: Any) -> Tuple[bytes, Optional[str]]:
        """The typed plaintext of ``value`` and, for an equality field, its HMAC.

        :raises EncryptionError: if ``value`` is not of the declared type (the message omits the value).
        """
        try:
            plaintext = self.codec.encode(value)
            if self._hasher is None:
                return plaintext, None
            hashed = plaintext if self._hash_plaintext else self.field.hmac_input(value, plaintext)
            return plaintext, self._hmac_prefix + self._hasher.digest(hashed, self._hmac_size)
        except Exception as exc:  # a user normalizer may raise anything
            raise EncryptionError(f"{self.where}: encrypting failed: {safe_reason(exc)}") from None

    def write(
        self,
        out: Dict[str, Any],
        encoded: Tuple[bytes, Optional[str]],
        item_key: bytes,
        positions: bytes = b"",
        nonces: Optional[_crypto.Nonces] = None,
    ) -> None:
        """Seal an :meth:`encode`-d value into ``out`` (an item, a map, or the values of update actions):
        ``x__source``, and ``x__hmac`` for an equality field, bound to ``item_key`` and list ``positions``,
        under the next of the item's ``nonces`` (by default, a nonce drawn for it).

        :raises EncryptionError: for an identity-bound field outside a lock context.
        """
        plaintext, digest = encoded
        bound = item_key if digest is None else with_digest(item_key, digest)
        if self.identity_bound:
            bound += self._identity(EncryptionError)
        out[self.source] = {BINARY: self._sealer.seal(plaintext, bound + positions, nonces)}
        if digest is not None and self.hmac is not None:
            out[self.hmac] = {STRING: digest}

    def is_absent(self, value: Any) -> bool:
        """Whether ``value`` is stored as no value at all: None, or what the field's PynamoDB attribute
        serializes to nothing (an empty set)."""
        return value is None or (self.absent is not None and self.absent(value))

    def write_key(self, out: Dict[str, Any], encoded: Tuple[bytes, Optional[str]]) -> None:
        """Put this field's HMAC in ``out`` if it is part of the item's primary key, which every value of
        the item is sealed to (so it must be there first; :meth:`write` writes it again, the same)."""
        if self.is_key and self.hmac is not None and encoded[1] is not None:
            out[self.hmac] = {STRING: encoded[1]}

    def read(
        self,
        stored: Mapping[str, Any],
        item_key: Optional[bytes],
        mode: ReadMode,
        values: Dict[str, Any],
        positions: bytes = b"",
    ) -> bool:
        """Open this field in ``stored`` (an item or a map as read) into ``values`` (the instance's): its
        value under its Python name, its stored HMAC under the companion's; nothing for what is absent.
        True when a ciphertext was opened (not a legacy plaintext, not an absent value).

        ``x__source`` is decrypted and verified with ``item_key``, the stored ``x__hmac``, the list
        ``positions`` and the lock context. A plaintext ``x`` in its place is read only when the
        ``mode``'s policy (None: the model's :func:`plaintext_policy`) is ``"read_plaintext"``, and
        never beside an ``x__hmac``. An ``x__hmac`` without ``x__source`` is accepted only where a
        projection may have left the value out (not ``mode.whole_item``, and the HMAC keys the table
        or an index); the value is then None.

        :raises DecryptionError: with code ``plaintext_found`` for a plaintext value under ``"forbid"``;
            ``plaintext_beside_hmac`` for a plaintext value beside a stored HMAC; ``hmac_without_value``;
            ``malformed_hmac``; or for a value that is not authentic for this item, attribute and table.
        :raises KeyNotFoundError: if its key id is not in the keyring.
        """
        digest: Optional[HmacDigest] = None
        if self.hmac is not None:
            stored_hmac = stored.get(self.hmac)
            if stored_hmac is not None and NULL not in stored_hmac:
                text = stored_hmac.get(STRING)
                if type(text) is not str or not text.isascii() or len(stored_hmac) != 1:
                    raise DecryptionError(f"{self.where}: its stored HMAC is malformed", code="malformed_hmac")
                digest = HmacDigest(text)
        source = stored.get(self.source)
        if source is not None:
            values[self.name] = self._open(source, item_key, digest, positions)
            if digest is not None:
                values[self.hmac_python] = digest  # type: ignore[index]
            return True
        legacy = stored.get(self.legacy)
        if legacy is not None and NULL not in legacy:
            if digest is not None:
                raise DecryptionError(
                    f"{self.where}: a plaintext value stands beside a stored HMAC, which encryption never "
                    "writes (the item may have been tampered with)",
                    code="plaintext_beside_hmac",
                )
            values[self.name] = self._legacy_plaintext(legacy, mode.policy)
            return False
        if digest is not None:
            if mode.whole_item or not self.hmac_keyed:
                raise DecryptionError(
                    f"{self.where}: the item holds its HMAC but not its value, which encryption never writes "
                    "(the item may have been tampered with)",
                    code="hmac_without_value",
                )
            values[self.hmac_python] = digest  # type: ignore[index]
        return False

    def _legacy_plaintext(self, stored: Dict[str, Any], policy: Optional[str]) -> Any:
        if (policy or plaintext_policy(self.model)) != "read_plaintext":
            raise DecryptionError(
                f"{self.where} is stored in plaintext and Meta.plaintext_policy is 'forbid': either the "
                "table is being migrated (see the migration runbook in docs/operations.md) or the item was "
                "tampered with",
                code="plaintext_found",
            )
        try:
            return _plain_values.plaintext(self.field, stored)
        except Exception as exc:
            raise DecryptionError(
                f"{self.where}: its plaintext value does not fit the attribute ({type(exc).__name__})",
                code="type_mismatch",
            ) from None

    def _identity(self, error: type[StashError]) -> bytes:
        claims = current_lock_context.get()
        if claims is None:
            raise error(f"{self.where} is identity-bound: use it inside `with pynamodb_stash.lock_context(...)`",
                        code="missing_lock_context")
        return b"L" + _crypto.length_prefixed(claims)

    def _open(
        self, stored: Dict[str, Any], item_key: Optional[bytes], digest: Optional[str], positions: bytes = b""
    ) -> Any:
        """Decrypt and decode a stored ``x__source`` value read with ``item_key`` and the stored HMAC
        (part of :meth:`read`, which every path calls).

        :raises DecryptionError: if the value is not authentic for this item, attribute and table.
        :raises KeyNotFoundError: if its key id is not in the keyring.
        """
        blob = stored.get(BINARY) if type(stored) is dict and len(stored) == 1 else None
        if type(blob) is not bytes:
            if not isinstance(blob, (bytes, bytearray)):
                raise DecryptionError(f"{self.where}: the stored value is not a pynamodb-stash ciphertext")
            blob = bytes(blob)
        if item_key is None:
            raise DecryptionError(
                f"{self.where}: the item was read without its primary key, which decryption needs",
                code="missing_key_attributes",
            )
        if self.hmac is not None and digest is None:
            raise DecryptionError(
                f"{self.where}: the item was read without {self.hmac}, which decryption needs",
                code="missing_hmac",
            )
        opener = self._openers.get(blob[: 2 + blob[1]] if len(blob) > 1 else blob)
        if opener is None:
            opener = self._opener(blob)
            self._openers[blob[: 2 + blob[1]]] = opener
        bound = item_key if digest is None else with_digest(item_key, digest)
        if self.identity_bound:
            bound += self._identity(DecryptionError)
        try:
            plaintext = opener.open(blob, bound + positions)
        except _crypto.InvalidCiphertext:
            raise DecryptionError(
                f"{self.where} (key id {opener.key_id!r}): the value is not authentic for this item, "
                "attribute and table" + (", or for this lock context" if self.identity_bound else "")
            ) from None
        try:
            return self.codec.decode(plaintext)
        except (ValueError, UnicodeDecodeError):  # parsers quote what they fail on: the plaintext
            raise DecryptionError(
                f"{self.where}: the stored value is not a {self.codec.name} (was the type changed?)",
                code="type_mismatch",
            ) from None

    def key_id(self, blob: bytes) -> str:
        """The key id of a ciphertext :meth:`read` opened (for audit events), from the cipher it used."""
        blob = blob if type(blob) is bytes else bytes(blob)
        opener = self._openers.get(blob[: 2 + blob[1]]) if len(blob) > 1 else None
        return opener.key_id if opener is not None else _crypto.read_key_id(blob)

    def _opener(self, blob: bytes) -> _crypto.FieldCipher:
        try:
            key_id = _crypto.read_key_id(blob)
        except _crypto.InvalidCiphertext:
            raise DecryptionError(f"{self.where}: the stored value is not a pynamodb-stash ciphertext") from None
        try:
            return self._keyring.decrypting_cipher(key_id, self._table, self.path)
        except KeyNotFoundError as exc:  # says whether the id is unknown or retired
            raise KeyNotFoundError(f"{self.where}: {exc}") from None


class Runtime(NamedTuple):
    keyring: Keyring
    table: str
    fields: Tuple[FieldRuntime, ...]
    """The model's own encrypted fields."""
    by_path: Dict[str, FieldRuntime]
    """Every encrypted field by its path, those inside EncryptedMapAttributes included."""


def runtime(cls: type[EncryptedModel], keyring: Optional[Keyring] = None) -> Runtime:
    """The model's fields bound to ``keyring`` (default: the model's current one) and its logical table.

    Built once per keyring and table and kept in the model's state (a few, for tenants' keyrings).

    :raises ConfigurationError: if the model has no keyring or no table name.
    """
    state = cls._stash
    bound: Optional[Runtime] = state.runtime
    meta = cls.Meta
    if (
        keyring is None
        and bound is not None
        and getattr(meta, "keyring", None) is bound.keyring
        and logical_table(meta) == bound.table
    ):
        return bound
    if keyring is None:
        keyring = keyring_of(cls)
    table = table_of(cls)
    if bound is not None and bound.keyring is keyring and bound.table == table:
        return bound
    bound = state.runtimes.get(id(keyring))
    if bound is None or bound.keyring is not keyring or bound.table != table:
        plan = layout(cls)
        fields = tuple(FieldRuntime(cls, f, keyring, table, f.logical_name) for f in plan.fields)
        by_path = {f.path: f for f in fields}
        for entry in plan.nested:
            for path, field in nested_fields(entry.map_class, entry.stored + ("[]" if entry.is_list else "")):
                by_path[path] = FieldRuntime(cls, field, keyring, table, path)
        bound = Runtime(keyring, table, fields, by_path)
        if len(state.runtimes) >= 256:
            state.runtimes.clear()
        state.runtimes[id(keyring)] = bound
    state.runtime = bound
    return bound
