"""``EncryptedModel``: a PynamoDB ``Model`` whose encrypted attributes are sealed to their item.

PynamoDB reaches an attribute's ``serialize``/``deserialize`` through three paths: container
(de)serialization of a whole item, attribute-level serialization of keys and condition values, and the
schema. An attribute sees only its value, never the item its ciphertext must be bound to, so this module
takes over the item path: PynamoDB's private hooks for serializing, deserializing and building
instances from items (installed through ``_pynamodb``) encrypt and decrypt whole items with the primary
key in hand. It also expands pending encrypted update actions, completes projections with
what decryption needs, and gives each model its own copy of indexes keyed on HMACs. The companion
``HmacAttribute`` covers keys, conditions and the schema through PynamoDB's own code.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import inspect
import random
import time
from collections import deque
from typing import (
    Any,
    Callable,
    ClassVar,
    Deque,
    Dict,
    Generic,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    cast,
)

from pynamodb.attributes import (
    Attribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    TTLAttribute,
    VersionAttribute,
)
from pynamodb.constants import (
    ALL,
    BATCH_GET_PAGE_LIMIT,
    BINARY,
    DELETE_REQUEST,
    ITEM,
    KEY,
    LIST,
    MAP,
    NULL,
    NUMBER,
    PUT_REQUEST,
    STRING,
    UNPROCESSED_ITEMS,
)
from pynamodb.exceptions import AttributeNullError, GetError, PutError, UpdateError
from pynamodb.expressions.condition import And, Condition
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action, RemoveAction, SetAction
from pynamodb.indexes import IncludeProjection, Index
from pynamodb.models import BatchWrite, MetaModel, Model
from pynamodb.pagination import ResultIterator

from . import _audit, _crypto, _pynamodb
from ._attributes import (
    HMAC_SUFFIX,
    RESERVED_SUFFIXES,
    SOURCE_SUFFIX,
    CompoundHmacAttribute,
    EncryptedAttribute,
    EncryptedMapAttribute,
    ExactComparison,
    ExactIn,
    HmacAttribute,
    HmacDigest,
    PendingEncryptedAction,
    check_encrypted_name,
    check_path_name,
    check_plain_attribute,
    contains_encrypted,
    filtering_reads,
    masked_repr,
)
from ._codecs import canonical_number, safe_reason
from ._keyring import Keyring, TenantKeyrings, current_lock_context, current_tenant, resolve_keyring
from .exceptions import (
    ConfigurationError,
    DecryptionError,
    EncryptionError,
    KeyNotFoundError,
    StashError,
    UnsupportedQueryError,
    report_error,
    reporting,
)

_M = TypeVar("_M", bound="EncryptedModel")
_PLAIN_ONLY = (VersionAttribute, TTLAttribute, DiscriminatorAttribute)


class _EncryptedModelMeta(MetaModel):
    """Collects the encryption schema of a model class and declares the HMAC companions."""

    def __new__(mcs, name: str, bases: Any, namespace: Dict[str, Any], discriminator: Any = None) -> Any:
        _declare_companions(name, bases, namespace)
        return super().__new__(mcs, name, bases, namespace, discriminator)  # type: ignore[no-untyped-call]

    def __init__(cls, name: str, bases: Any, namespace: Dict[str, Any], discriminator: Any = None) -> None:
        super().__init__(name, bases, namespace, discriminator)
        _bind_schema(cast("type[EncryptedModel]", cls))


def _declare_companions(model_name: str, bases: Any, namespace: Dict[str, Any]) -> None:
    # A field inherited from a base model is copied, so that each model class owns fields bound to it
    # (and to its table): class attributes are shared objects in PynamoDB.
    for base in bases:
        for name, attribute in getattr(base, "_attributes", {}).items():
            if name in namespace:
                continue
            if isinstance(attribute, EncryptedAttribute):
                namespace[name] = _fresh_copy(attribute)
            elif isinstance(attribute, CompoundHmacAttribute):
                namespace[name] = attribute.copy_for_model()
            elif isinstance(attribute, EncryptedMapAttribute):  # re-rooted to this model by __set_name__
                namespace[name] = type(attribute)(
                    null=attribute.null, default=attribute.default, attr_name=attribute.attr_name
                )

    for name, value in list(namespace.items()):
        if not isinstance(value, EncryptedAttribute):
            continue
        where = f"{model_name}.{name}"
        field = value
        if isinstance(field.type_, _PLAIN_ONLY):
            raise ConfigurationError(
                f"{where}: a {type(field.type_).__name__} must stay in plaintext; DynamoDB or PynamoDB reads it"
            )
        if (field.is_hash_key or field.is_range_key) and not field.equality:
            raise ConfigurationError(f"{where}: a key attribute needs equality=True (the key is its HMAC)")
        if (field.is_hash_key or field.is_range_key) and field.truncated:
            raise ConfigurationError(f"{where}: a truncated HMAC cannot be a table key (colliding items overwrite)")
        logical = field.declared_name or name
        check_encrypted_name(where, logical)
        companion_name = name + HMAC_SUFFIX
        if field.equality:
            existing = namespace.get(companion_name)
            if existing is not None and not (isinstance(existing, HmacAttribute) and existing.is_companion):
                raise ConfigurationError(f"{model_name}.{companion_name} clashes with the HMAC of {where}")
            companion = HmacAttribute(
                of=name,
                hash_key=field.is_hash_key,
                range_key=field.is_range_key,
                attr_name=logical + HMAC_SUFFIX,
            )
            companion.is_companion = True
            field.is_hash_key = field.is_range_key = False
            namespace[companion_name] = companion


def _logical_table(meta: Any) -> Any:
    """The table name bound into ciphertexts and HMACs: ``logical_table_name``, else ``table_name``."""
    return getattr(meta, "logical_table_name", None) or getattr(meta, "table_name", None)


def _fresh_copy(field: EncryptedAttribute[Any]) -> EncryptedAttribute[Any]:
    clone = copy.copy(field)
    clone.attr_path = list(field.attr_path)
    clone.model = None
    clone.hmac_attribute = None
    companion = field.hmac_attribute
    if companion is not None:  # restore the key flags the base's companion took over
        clone.is_hash_key, clone.is_range_key = companion.is_hash_key, companion.is_range_key
    return clone


def _bind_schema(cls: type[EncryptedModel]) -> None:
    fields: Dict[str, EncryptedAttribute[Any]] = {}
    for name, attribute in cls.get_attributes().items():
        if isinstance(attribute, EncryptedAttribute):
            attribute.model = cls
            fields[name] = attribute
        elif _nested_kind(attribute) is None and not isinstance(attribute, HmacAttribute):
            check_plain_attribute(f"{cls.__name__}.{name}", name, attribute)
        elif _nested_kind(attribute) is not None:
            check_path_name(f"{cls.__name__}.{name}", attribute.attr_name)
    for attribute in cls.get_attributes().values():
        if isinstance(attribute, HmacAttribute) and attribute.is_companion:
            field = fields[attribute.of or ""]
            attribute.field = field
            field.hmac_attribute = attribute
    cls._stash_fields = fields
    compounds: Dict[str, CompoundHmacAttribute] = {}
    for name, attribute in cls.get_attributes().items():
        if isinstance(attribute, CompoundHmacAttribute):
            for part in attribute.parts:
                target = cls.get_attributes().get(part)
                if target is None or isinstance(target, (HmacAttribute, MapAttribute, ListAttribute)):
                    raise ConfigurationError(
                        f"{cls.__name__}.{name}: part {part!r} is not a top-level scalar attribute of the model"
                    )
                if isinstance(target, EncryptedAttribute) and target.truncated:
                    # The compound hashes the part in full: it would reveal more than the declared bits.
                    raise ConfigurationError(
                        f"{cls.__name__}.{name}: part {part!r} has a truncated HMAC, which a compound would undo"
                    )
            attribute.model = cls
            compounds[name] = attribute
    cls._stash_compounds = compounds

    stored_names = {f.attr_name for f in fields.values()}
    stored_names.update(f.hmac_attribute.attr_name for f in fields.values() if f.hmac_attribute is not None)
    for member, index in inspect.getmembers(cls):
        if isinstance(index, Index) and _pynamodb.indexes(cls).get(index.Meta.index_name) is index:
            _own_index(cls, member, index, fields, stored_names)


def _own_index(
    cls: type[EncryptedModel],
    member: str,
    index: Index[Any],
    fields: Dict[str, EncryptedAttribute[Any]],
    stored_names: set[str],
) -> None:
    """Give the model its own copy of an index keyed on HMACs, bound to the model's fields.

    An index class's attributes are shared by every model that declares it (a base and its subclasses,
    or models on several tables), while an HMAC depends on the model's table and keyring.
    """
    index_class = type(index)
    table = _logical_table(cls.Meta)
    copies: Dict[str, Any] = {}
    projection = _stored_projection(index_class.Meta.projection, fields)
    for attr_name, attribute in index_class.Meta.attributes.items():
        where = f"{cls.__name__}: {index_class.__name__}.{attr_name}"
        if isinstance(attribute, EncryptedAttribute) or (
            not isinstance(attribute, HmacAttribute) and attribute.attr_name in stored_names
        ):
            # A plain index attribute on x__hmac would send key values unhashed.
            raise ConfigurationError(f"{where}: declare an index key on an encrypted attribute as HmacAttribute")
        if not isinstance(attribute, HmacAttribute):
            continue
        compound = cls._stash_compounds.get(attribute.of or "")
        if compound is not None:
            own = attribute.copy_for_model()
            own.compound = compound
            own.attr_name = compound.attr_name
            copies[attr_name] = own
            continue
        target = fields.get(attribute.of or "")
        if target is None or target.hmac_attribute is None:
            raise ConfigurationError(
                f"{where} refers to {attribute.of!r}, which is not an EncryptedAttribute with equality=True"
            )
        own = attribute.copy_for_model()
        own.bind(target, where=where)
        copies[attr_name] = own
        if table:  # a base model without a table never binds the declared attribute
            scope = (table, target.logical_name, target.hmac_scope, id(getattr(cls.Meta, "keyring", None)))
            (attribute.declared_by or attribute).bind_shared(target, scope, where=where)
    if not copies and projection is None:
        return
    meta = type("Meta", (index_class.Meta,), {} if projection is None else {"projection": projection})
    namespace = {"Meta": meta, "__module__": index_class.__module__, **copies}
    owned: Index[Any] = type(index_class.__name__, (index_class,), namespace)()
    _pynamodb.bind_index(owned, cls)
    setattr(cls, member, owned)
    _pynamodb.indexes(cls)[owned.Meta.index_name] = owned


def _index_projects(model: type[Model], index_name: Optional[str]) -> Callable[[str], bool]:
    """Whether a read of the index (the table for None) can return a stored attribute name."""
    index = _pynamodb.indexes(model).get(index_name) if index_name is not None else None
    if index is None or index.Meta.projection.projection_type == ALL:
        return lambda name: True
    keys = {a.attr_name for a in _pynamodb.key_attributes(model) if a is not None}
    keys.update(a.attr_name for a in index.Meta.attributes.values() if a.is_hash_key or a.is_range_key)
    keys.update(index.Meta.projection.non_key_attributes or ())
    return keys.__contains__


def _stored_projection(projection: Any, fields: Dict[str, EncryptedAttribute[Any]]) -> Optional[IncludeProjection]:
    """An INCLUDE projection naming encrypted attributes (by Python or logical name, as PynamoDB users
    write it), with those names replaced by what is stored: ``x__source``, and ``x__hmac`` with
    equality. None when it names none (or is no INCLUDE projection)."""
    names = getattr(projection, "non_key_attributes", None)
    if not isinstance(projection, IncludeProjection) or not names:
        return None
    by_name = {name: f for f in fields.values() for name in (f.python_name, f.logical_name)}
    if not any(name in by_name for name in names):
        return None
    stored: List[str] = []
    for name in names:
        field = by_name.get(name)
        if field is None:
            stored.append(name)
            continue
        stored.append(field.attr_name)
        if field.hmac_attribute is not None:
            stored.append(field.hmac_attribute.attr_name)
    return IncludeProjection(list(dict.fromkeys(stored)))


class _Plan:
    """How one model class (de)serializes, computed once from its attributes.

    ``plain`` lists every attribute PynamoDB handles itself, with whether its descriptor is PynamoDB's
    plain one (so the value can be read from and written to ``attribute_values`` directly).
    """

    __slots__ = ("plain", "compound_parts", "nested", "fields", "has_defaults", "hash_key", "range_key")

    def __init__(self, cls: type[EncryptedModel]) -> None:
        plain = []
        nested = []
        for name, attribute in cls.get_attributes().items():
            if isinstance(attribute, (EncryptedAttribute, HmacAttribute)) and (
                not isinstance(attribute, HmacAttribute) or attribute.is_companion
            ):
                continue
            map_class = _nested_kind(attribute)
            if map_class is not None:
                nested.append((name, attribute, attribute.attr_name, map_class, isinstance(attribute, ListAttribute)))
                continue
            kind = type(attribute)
            direct = kind.__get__ is Attribute.__get__ and kind.__set__ is Attribute.__set__
            container = isinstance(attribute, (ListAttribute, MapAttribute))
            plain.append((name, attribute, attribute.attr_name, attribute.attr_type, direct, container))
        self.plain = tuple(plain)
        parts = {part for compound in cls._stash_compounds.values() for part in compound.parts}
        parts.update(cls._stash_compounds)  # the stored compounds themselves, to be checked
        source = getattr(cls.Meta, "keyring", None)
        if isinstance(source, TenantKeyrings) and source.attribute is not None:
            parts.add(source.attribute)  # a compound is hashed under the item's tenant's keyring
        self.compound_parts = tuple(entry for entry in plain if entry[0] in parts)
        """The compound HMACs and the plain attributes they need (their parts, the tenant): all that an
        encrypted-only read reads besides the encrypted values."""
        self.nested = tuple(nested)
        self.fields = tuple(cls._stash_fields.values())
        self.has_defaults = any(
            a.default is not None or a.default_for_new is not None for a in cls.get_attributes().values()
        )
        hash_key, range_key = _pynamodb.key_attributes(cls)
        self.hash_key = (hash_key.attr_name, hash_key.attr_type) if hash_key is not None else None
        self.range_key = (range_key.attr_name, range_key.attr_type) if range_key is not None else None

    def item_key(
        self, item: Dict[str, Dict[str, Any]], error: type[StashError] = EncryptionError
    ) -> Optional[bytes]:
        """The encoded primary key of a serialized item, or None if a key attribute is missing.

        :raises StashError: ``error``, for a key value that has no canonical form (a number DynamoDB
            cannot store, text that is not Unicode); the message names the attribute, not the value.
        """
        encoded = b""
        for key in (self.hash_key, self.range_key):
            if key is None:
                continue
            name, attr_type = key
            value = item.get(name)
            if value is None or attr_type not in value:
                return None
            try:
                encoded += encode_key_value(attr_type, value[attr_type])
            except Exception as exc:
                raise error(f"key attribute {name}: {safe_reason(exc)}") from None
        return encoded


class _FieldRuntime:
    """One encrypted field under one keyring and logical table: its ciphers and HMAC key, cached.

    :meth:`read` is the one way a stored field is opened, and :meth:`write` the one way one is sealed:
    every path (model items, nested maps and lists of maps, updates, the raw-item API, the operations
    tools) goes through them, so each applies the same checks.
    """

    __slots__ = (
        "field", "path", "name", "source", "hmac", "hmac_python", "is_key", "hmac_keyed", "legacy", "null",
        "codec", "absent", "where", "identity_bound", "model", "model_name",
        "_keyring", "_table", "_sealer", "_openers", "_hasher",
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
        self.hmac_keyed = self.is_key or (path == field.logical_name and field.python_name in _index_keyed(cls))
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
        self._hasher = keyring.hasher(*cls._stash_hmac_scope(field, path)) if field.equality else None

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
            hashed = self.field.hmac_input(value, plaintext)
            return plaintext, self.field.hmac_text(self._hasher.digest(hashed, self.field.hmac_size))
        except Exception as exc:  # a user normalizer may raise anything
            raise EncryptionError(f"{self.where}: encrypting failed: {safe_reason(exc)}") from None

    def write(
        self, out: Dict[str, Any], encoded: Tuple[bytes, Optional[str]], item_key: bytes, positions: bytes = b""
    ) -> None:
        """Seal an :meth:`encode`-d value into ``out`` (an item, a map, or the values of update actions):
        ``x__source``, and ``x__hmac`` for an equality field, bound to ``item_key`` and list ``positions``.

        :raises EncryptionError: for an identity-bound field outside a lock context.
        """
        plaintext, digest = encoded
        bound = item_key if digest is None else _with_digest(item_key, digest)
        if self.identity_bound:
            bound += self._identity(EncryptionError)
        out[self.source] = {BINARY: self._sealer.seal(plaintext, bound + positions)}
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
        mode: _ReadMode,
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
        from ._items import _plaintext  # the conversions of the raw-item API

        try:
            return _plaintext(self.field, stored)
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
        bound = item_key if digest is None else _with_digest(item_key, digest)
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

    def _opener(self, blob: bytes) -> _crypto.FieldCipher:
        try:
            key_id = _crypto.read_key_id(blob)
        except _crypto.InvalidCiphertext:
            raise DecryptionError(f"{self.where}: the stored value is not a pynamodb-stash ciphertext") from None
        try:
            return self._keyring.decrypting_cipher(key_id, self._table, self.path)
        except KeyNotFoundError as exc:  # says whether the id is unknown or retired
            raise KeyNotFoundError(f"{self.where}: {exc}") from None


class _Runtime(NamedTuple):
    keyring: Keyring
    table: str
    fields: Tuple[_FieldRuntime, ...]
    """The model's own encrypted fields."""
    by_path: Dict[str, _FieldRuntime]
    """Every encrypted field by its path, those inside EncryptedMapAttributes included."""


MAX_ITEM_SIZE = 400 * 1024


def item_size(item: Dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: UTF-8 names plus values (numbers about 1 byte per 2 digits,
    plus 1; a map or list 3 bytes plus its members, as for nested names and values)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Dict[str, Any]) -> int:
    (kind, data), = value.items()
    if kind == STRING:
        return len(data.encode())
    if kind == BINARY:
        return len(data)
    if kind == NUMBER:
        return (len(data.lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "M":
        return 3 + sum(len(name.encode()) + _value_size(inner) for name, inner in data.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(inner) for inner in data)
    if kind in ("SS", "BS", "NS"):
        return sum(len(member.encode()) if isinstance(member, str) else len(member) for member in data)
    return 1  # BOOL, NULL


def _sealed_sizes(actions: List[Action], maps: Iterable[str]) -> Dict[str, int]:
    """The stored size of each encrypted value an expanded update sets, by its path (DynamoDB's count):
    ``x__source`` values, and the encrypted maps (top-level names in ``maps``) set whole."""
    sizes: Dict[str, int] = {}
    maps = set(maps)
    for action in actions:
        if not isinstance(action, SetAction) or len(action.values) != 2:
            continue
        path, operand = action.values
        if isinstance(path, Path) and isinstance(operand, Value):
            name = ".".join(path.path)
            if name.endswith(SOURCE_SUFFIX) or name in maps:
                sizes[name] = item_size({name: operand.value})
    return sizes


def _positions(indices: Tuple[int, ...]) -> bytes:
    # List positions of a value inside ListAttribute(of=EncryptedMapAttribute), bound into its AAD.
    return b"" if not indices else b"I" + b"".join(i.to_bytes(4, "big") for i in indices)


def _nested_kind(attribute: Attribute[Any]) -> Optional[type[EncryptedMapAttribute]]:
    """The map class of an EncryptedMapAttribute, or of a list of them; None for anything else."""
    if isinstance(attribute, EncryptedMapAttribute):
        return type(attribute)
    return _map_list(attribute)


def _map_list(attribute: Attribute[Any]) -> Optional[type[EncryptedMapAttribute]]:
    """The element class of a ``ListAttribute(of=EncryptedMapAttribute)``; None for anything else."""
    if isinstance(attribute, ListAttribute):
        element = attribute.element_type
        if isinstance(element, type) and issubclass(element, EncryptedMapAttribute):
            return element
    return None


def _nested_fields(
    map_class: type[EncryptedMapAttribute], prefix: str
) -> Iterator[Tuple[str, EncryptedAttribute[Any]]]:
    for attribute in map_class.get_attributes().values():
        if isinstance(attribute, EncryptedAttribute):
            yield f"{prefix}.{attribute.logical_name}", attribute
            continue
        inner = _nested_kind(attribute)
        if inner is not None:
            suffix = "[]" if isinstance(attribute, ListAttribute) else ""
            yield from _nested_fields(inner, f"{prefix}.{attribute.attr_name}{suffix}")


def _serialize_plain(
    attribute: Attribute[Any], name: str, value: Any, container: bool, null_check: bool
) -> Optional[Dict[str, Any]]:
    """One plain attribute as PynamoDB's container serialization writes it (None: not stored)."""
    try:
        if isinstance(value, MapAttribute) and not value.validate(null_check=null_check):
            raise ValueError(f"Attribute '{name}' is not correctly typed")
        if value is None:
            serialized = None
        elif container:
            serialized = attribute.serialize(value, null_check=null_check)  # type: ignore[call-arg]
        else:
            serialized = attribute.serialize(value)
    except AttributeNullError as exc:
        exc.prepend_path(name)
        raise
    if serialized is None:
        if null_check and not attribute.null:
            raise AttributeNullError(name)
        return None
    return {attribute.attr_type: serialized}


def _ciphertexts_as_text(name: str, value: Dict[str, Any]) -> Dict[str, Any]:
    """A stored attribute value with each ciphertext in it (``x__source``, at any depth) as base64 text."""
    if name.endswith(SOURCE_SUFFIX) and BINARY in value:
        return {STRING: base64.b64encode(value[BINARY]).decode("ascii")}
    if MAP in value:
        return {MAP: {k: _ciphertexts_as_text(k, v) for k, v in value[MAP].items()}}
    if LIST in value:
        return {LIST: [_ciphertexts_as_text("", v) for v in value[LIST]]}
    return value


def _with_digest(item_key: bytes, digest: str) -> bytes:
    # The stored HMAC is authenticated with the ciphertext: an x__hmac moved to another item would
    # make that item answer queries for another value; it makes the item fail to decrypt instead.
    return item_key + b"H" + _crypto.length_prefixed(digest.encode("ascii"))


def encode_key_value(attr_type: str, value: Any) -> bytes:
    """One serialized key value as ``type letter | u16 length | bytes``.

    Numbers are normalized, because DynamoDB returns ``"1"`` for a stored ``"1.0"`` and ``"0"`` for ``"-0"``.

    :raises ValueRejected: for a number DynamoDB cannot store. :raises UnicodeEncodeError: for a lone
        surrogate in a string.
    """
    if attr_type == STRING:
        data = value.encode("utf-8")
    elif attr_type == NUMBER:
        data = canonical_number(value).encode("ascii")
    else:
        data = bytes(value)
    return attr_type.encode("ascii") + _crypto.length_prefixed(data)


def _seal_nested(
    runtime: _Runtime,
    map_class: type[EncryptedMapAttribute],
    is_list: bool,
    value: Any,
    path: str,
    item_key: bytes,
    null_check: bool,
    indices: Tuple[int, ...] = (),
) -> Dict[str, Any]:
    """A map (or a list of maps) of ``map_class`` as stored, its encrypted fields sealed to ``path``."""
    if is_list:
        if not isinstance(value, (list, tuple)):
            raise EncryptionError(f"{path}: expected a list of {map_class.__name__}")
        return {"L": [
            _seal_nested(runtime, map_class, False, element, path + "[]", item_key, null_check, (*indices, i))
            for i, element in enumerate(value)
        ]}
    if isinstance(value, Mapping) and not isinstance(value, MapAttribute):
        value = map_class(**value)
    if not isinstance(value, map_class):
        raise EncryptionError(f"{path}: expected {map_class.__name__}, got {type(value).__name__}")
    values = value.attribute_values
    out: Dict[str, Any] = {}
    for name, attribute in map_class.get_attributes().items():
        if isinstance(attribute, HmacAttribute) and attribute.is_companion:
            continue
        element = values.get(name)
        if isinstance(attribute, EncryptedAttribute):
            field = runtime.by_path[f"{path}.{attribute.logical_name}"]
            if field.is_absent(element):
                if null_check and not attribute.null:
                    raise AttributeNullError(f"{path}.{name}")
                continue
            field.write(out, field.encode(element), item_key, _positions(indices))
            continue
        inner = _nested_kind(attribute)
        if inner is not None:
            if element is None:
                if null_check and not attribute.null:
                    raise AttributeNullError(f"{path}.{name}")
                continue
            is_inner_list = isinstance(attribute, ListAttribute)
            out[attribute.attr_name] = _seal_nested(
                runtime, inner, is_inner_list, element, f"{path}.{attribute.attr_name}", item_key, null_check, indices
            )
            continue
        serialized = _serialize_plain(
            attribute, name, element, isinstance(attribute, (ListAttribute, MapAttribute)), null_check
        )
        if serialized is not None:
            out[attribute.attr_name] = serialized
    return {"M": out}


def _open_nested(
    runtime: _Runtime,
    map_class: type[EncryptedMapAttribute],
    is_list: bool,
    stored: Dict[str, Any],
    path: str,
    item_key: Optional[bytes],
    read: _ReadMode,
    indices: Tuple[int, ...] = (),
) -> Any:
    """The inverse of :func:`_seal_nested`: map instances with their fields opened by
    :meth:`_FieldRuntime.read`."""
    if is_list:
        elements = stored.get("L")
        if not isinstance(elements, list):
            raise DecryptionError(f"{path}: the stored value is not a list")
        return [
            _open_nested(runtime, map_class, False, element, path + "[]", item_key, read, (*indices, i))
            for i, element in enumerate(elements)
        ]
    raw = stored.get("M")
    if not isinstance(raw, dict):
        raise DecryptionError(f"{path}: the stored value is not a map")
    instance = _pynamodb.new_map_instance(map_class)
    values = instance.attribute_values
    for name, attribute in map_class.get_attributes().items():
        if isinstance(attribute, HmacAttribute) and attribute.is_companion:
            continue
        if isinstance(attribute, EncryptedAttribute):
            field = runtime.by_path[f"{path}.{attribute.logical_name}"]
            field.read(raw, item_key, read, values, _positions(indices))
            continue
        element = raw.get(attribute.attr_name)
        if not element or NULL in element:
            continue
        inner = _nested_kind(attribute)
        if inner is not None:
            values[name] = _open_nested(
                runtime, inner, isinstance(attribute, ListAttribute), element,
                f"{path}.{attribute.attr_name}", item_key, read, indices,
            )
        else:
            setattr(instance, name, attribute.deserialize(attribute.get_value(element)))
    return instance


class _ReadMode(NamedTuple):
    """How a read opens stored fields (see :meth:`_FieldRuntime.read`)."""

    policy: Optional[str]
    """The plaintext policy in force: ``"forbid"``, ``"read_plaintext"``, or None for the model's own."""
    whole_item: bool
    """Whether the item was read whole (a stream image, a raw item, a full scan), not projected."""
    plain: bool = True
    """Whether plain attributes are read too; else only those a compound HMAC covers (for decrypt_item
    and verify, which need the encrypted values only)."""


_MODEL_READ = _ReadMode(None, False)


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


def _index_keyed(cls: type[EncryptedModel]) -> frozenset[str]:
    """Python names of the fields whose HMAC keys one of the model's indexes."""
    names = set()
    for index in _pynamodb.indexes(cls).values():
        for attribute in index.Meta.attributes.values():
            field = getattr(attribute, "field", None)
            if isinstance(attribute, HmacAttribute) and field is not None and (
                attribute.is_hash_key or attribute.is_range_key
            ):
                names.add(field.python_name)
    return frozenset(names)


class _AuditedResults(ResultIterator[_M]):
    """PynamoDB's query/scan results, counting their decryption into one audit event at the end."""

    _stash_reads: _audit.Scope

    def __next__(self) -> _M:
        token = _audit.current_scope.set(self._stash_reads)
        try:
            return super().__next__()
        except StopIteration:
            self._stash_reads.close()
            raise
        except StashError as error:
            self._stash_reads.outcome = error.code
            self._stash_reads.close()
            report_error(error)
            raise
        finally:
            _audit.current_scope.reset(token)


def _from_raw_data_counted(model: type[_M], raw: Dict[str, Any], reads: _audit.Scope) -> _M:
    """``model.from_raw_data(raw)``, its decryption counted into ``reads``.

    The scope is current only during the call, never across a ``yield``: a generator shares its caller's context.
    """
    token = _audit.current_scope.set(reads)
    try:
        return model.from_raw_data(raw)
    finally:
        _audit.current_scope.reset(token)


class ExactResults(Generic[_M]):
    """Query or scan results with the false positives of truncated HMACs dropped after decryption.

    Iterates like PynamoDB's ``ResultIterator`` and has its ``last_evaluated_key`` and ``total_count``;
    ``limit`` counts exact matches, and ``last_evaluated_key`` resumes after the last one returned.
    """

    def __init__(
        self,
        model: type[_M],
        results: ResultIterator[_M],
        constraints: List[Tuple[EncryptedAttribute[Any], Any]],
        limit: Optional[int],
    ) -> None:
        self._result_model = model
        self._pages = results.page_iter
        self._wanted = [
            (field.python_name, {field.hmac_input(value) for value in expected}, field)
            for field, expected in constraints
        ]
        self._limit = limit
        self._buffer: Deque[Dict[str, Any]] = deque()
        self._reads = model._stash_scope()
        self._last: Optional[Dict[str, Any]] = None
        self._total = 0

    def __iter__(self) -> ExactResults[_M]:
        return self

    def __next__(self) -> _M:
        if self._limit is not None and self._total >= self._limit:
            raise StopIteration
        while True:
            if not self._buffer:
                token = filtering_reads.set(True)
                try:
                    page = next(self._pages)
                except StopIteration:
                    self._reads.close()
                    raise
                finally:
                    filtering_reads.reset(token)
                self._buffer.extend(page.get("Items", []))
                continue
            raw = self._buffer.popleft()
            item = _from_raw_data_counted(self._result_model, raw, self._reads)
            if self._matches(item):
                self._total += 1
                self._last = raw
                return item

    def _matches(self, item: EncryptedModel) -> bool:
        for name, expected, field in self._wanted:
            value = item.attribute_values.get(name)
            if value is None or field.hmac_input(value) not in expected:
                return False
        return True

    @property
    def last_evaluated_key(self) -> Optional[Dict[str, Dict[str, Any]]]:
        if self._buffer and self._last is not None:  # stopped by the limit within a page
            return {key: self._last[key] for key in self._pages.key_names}
        return self._pages.last_evaluated_key

    @property
    def total_count(self) -> int:
        return self._total


_BACKOFF_BASE_SECONDS = 0.05
_BACKOFF_CAP_SECONDS = 5.0


def _backoff(attempt: int) -> None:
    """Sleep before retry ``attempt`` (1, 2, ...): exponential with full jitter, capped."""
    time.sleep(random.uniform(0, min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2**attempt)))


class EncryptedBatchWrite(BatchWrite[_M]):
    """PynamoDB's ``BatchWrite``, retrying unprocessed items with exponential backoff and full jitter.

    As in PynamoDB, items are serialized (encrypted) when the batch commits, so an item changed after
    ``save()`` is written as it is at the commit. Every item of a commit is encrypted before anything is
    sent: an item that cannot be encrypted raises from ``commit()`` (or from leaving the ``with`` block)
    and none of the batch is written. Batches hold at most 25 requests (DynamoDB's limit; 25 items of at
    most 400 KB stay below its 16 MB request limit).

    :raises PutError: when items are still unprocessed after ``Meta.max_retry_attempts`` attempts; they
        are left in ``failed_operations``.
    """

    def save(self, put_item: _M) -> None:
        self._stash_add(PUT_REQUEST, put_item)

    def delete(self, del_item: _M) -> None:
        self._stash_add(DELETE_REQUEST, del_item)

    def _stash_add(self, action: str, item: _M) -> None:
        if len(self.pending_operations) == self.max_operations:
            if not self.auto_commit:
                raise ValueError("DynamoDB allows a maximum of 25 batch operations")
            self.commit()
        self.pending_operations.append({"action": action, "item": item})

    def commit(self) -> None:
        puts = [op["item"].serialize() for op in self.pending_operations if op["action"] == PUT_REQUEST]
        deletes = [_pynamodb.key_item(op["item"]) for op in self.pending_operations if op["action"] == DELETE_REQUEST]
        self.pending_operations = []
        attempts = 0
        while puts or deletes:
            data = _pynamodb.connection(self.model).batch_write_item(put_items=puts, delete_items=deletes)
            unprocessed = (data or {}).get(UNPROCESSED_ITEMS, {}).get(self.model.Meta.table_name)
            if not unprocessed:
                return
            attempts += 1
            if attempts >= self.model.Meta.max_retry_attempts:
                self.failed_operations = unprocessed
                raise PutError("Failed to batch write items: max_retry_attempts exceeded")
            puts = [request[PUT_REQUEST][ITEM] for request in unprocessed if PUT_REQUEST in request]
            deletes = [request[DELETE_REQUEST][KEY] for request in unprocessed if DELETE_REQUEST in request]
            _backoff(attempts)


class EncryptedModel(Model, metaclass=_EncryptedModelMeta):
    """A PynamoDB model with client-side encrypted attributes.

    Declare attributes as usual, and sensitive ones as :class:`EncryptedAttribute`. Every PynamoDB
    operation works and takes plaintext: values are encrypted before a request leaves the process and
    decrypted (and verified) after the response arrives.

    ``Meta`` options besides PynamoDB's:

    - ``keyring``: a :class:`Keyring`; else the one given to ``pynamodb_stash.configure`` or found in
      ``$PYNAMODB_STASH_KEYRING`` is used, resolved at first use.
    - ``logical_table_name``: the table name bound into ciphertexts and HMACs (default
      ``Meta.table_name``); set it to the old name when a table is restored or renamed.
    - ``plaintext_policy``: what reading a value still stored in plaintext under the attribute's plain
      name does (a table being migrated): ``"forbid"`` (default) raises ``DecryptionError``,
      ``"read_plaintext"`` returns it. Writes always encrypt.

    :raises DecryptionError: when a stored value does not verify for the item it was read from.
    """

    _stash_fields: ClassVar[Dict[str, EncryptedAttribute[Any]]] = {}
    _stash_compounds: ClassVar[Dict[str, CompoundHmacAttribute]] = {}
    _stash_plan_cache: ClassVar[Optional[_Plan]] = None
    _stash_runtime_cache: ClassVar[Optional[_Runtime]] = None
    _stash_runtimes: ClassVar[Dict[int, _Runtime]] = {}

    @classmethod
    def from_stream_image(cls: type[_M], image: Mapping[str, Any]) -> _M:
        """An instance from a DynamoDB Streams ``NewImage``/``OldImage`` (DynamoDB JSON), decrypted.

        :raises DecryptionError: if the image lacks the primary key, is malformed or does not verify.
        """
        from ._items import from_stream_image

        return from_stream_image(cls, image)

    def __repr__(self) -> str:
        """PynamoDB's repr with every encrypted value shown as ``<encrypted>`` and HMACs as ``<hmac>``."""
        return masked_repr(self)

    def to_simple_dict(self, *, force: bool = False) -> Dict[str, Any]:
        """PynamoDB's ``to_simple_dict``, of the stored form (as ``to_dynamodb_dict``): encrypted values
        are their ciphertexts in base64 text, and their HMACs; ``from_simple_dict`` reads it back,
        decrypting and verifying as a read does. Ciphertexts need no ``force``: unlike other binary
        values, they are never ambiguous. ``force`` applies to the model's other binary and set values.

        :raises ValueError: (PynamoDB's) for a plain binary or set value without ``force``.
        """
        stored = self.serialize(null_check=False)
        return {name: _pynamodb.simple_value(_ciphertexts_as_text(name, av), force) for name, av in stored.items()}

    @classmethod
    def batch_write(cls: type[_M], auto_commit: bool = True) -> EncryptedBatchWrite[_M]:
        """PynamoDB's ``batch_write``, with backoff on unprocessed items (see :class:`EncryptedBatchWrite`)."""
        return EncryptedBatchWrite(cls, auto_commit=auto_commit)

    # -- keys and scopes --------------------------------------------------------------------------------

    @classmethod
    def _stash_keyring(cls) -> Keyring:
        return resolve_keyring(getattr(cls.Meta, "keyring", None), cls.__name__)

    @classmethod
    def _stash_table(cls) -> str:
        name = _logical_table(cls.Meta)
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{cls.__name__}.Meta needs a table_name")
        return name

    @classmethod
    def _stash_hmac_scope(cls, field: EncryptedAttribute[Any], path: Optional[str] = None) -> Tuple[str, ...]:
        if field.hmac_scope is not None:
            return ("shared", field.hmac_scope)
        return ("table", cls._stash_table(), path or field.logical_name)

    @classmethod
    def _stash_plan(cls) -> _Plan:
        plan = cls.__dict__.get("_stash_plan_cache")
        if plan is None:
            plan = _Plan(cls)
            cls._stash_plan_cache = plan
        return plan

    @classmethod
    def _stash_runtime(cls, keyring: Optional[Keyring] = None) -> _Runtime:
        """The fields' ciphers for ``keyring`` (default: the current one) and the logical table.

        Built once per keyring and table and cached on the class (a few, for tenants' keyrings).
        """
        runtime: Optional[_Runtime] = cls.__dict__.get("_stash_runtime_cache")
        meta = cls.Meta
        if (
            keyring is None
            and runtime is not None
            and getattr(meta, "keyring", None) is runtime.keyring
            and _logical_table(meta) == runtime.table
        ):
            return runtime
        if keyring is None:
            keyring = cls._stash_keyring()
        table = cls._stash_table()
        if runtime is not None and runtime.keyring is keyring and runtime.table == table:
            return runtime
        runtimes: Dict[int, _Runtime] = cls.__dict__.get("_stash_runtimes") or {}
        runtime = runtimes.get(id(keyring))
        if runtime is None or runtime.keyring is not keyring or runtime.table != table:
            plan = cls._stash_plan()
            fields = tuple(_FieldRuntime(cls, f, keyring, table, f.logical_name) for f in plan.fields)
            by_path = {f.path: f for f in fields}
            for _, _, stored, map_class, is_list in plan.nested:
                for path, field in _nested_fields(map_class, stored + ("[]" if is_list else "")):
                    by_path[path] = _FieldRuntime(cls, field, keyring, table, path)
            runtime = _Runtime(keyring, table, fields, by_path)
            if len(runtimes) >= 256:
                runtimes = {}
            runtimes[id(keyring)] = runtime
            cls._stash_runtimes = runtimes
        cls._stash_runtime_cache = runtime
        return runtime

    @classmethod
    def _stash_item_keyring(cls, tenant_of_item: Optional[str], error: type[StashError]) -> Optional[Keyring]:
        """The keyring of an item's tenant, when ``Meta.keyring`` is per tenant and the item names one."""
        if tenant_of_item is None:
            return None
        source = getattr(cls.Meta, "keyring", None)
        assert isinstance(source, TenantKeyrings)
        context = current_tenant.get()
        if context is not None and context != tenant_of_item:
            raise error(
                f"{cls.__name__}: the item belongs to another tenant than the one set with tenant()",
                code="tenant_mismatch",
            )
        return source.for_tenant(tenant_of_item)

    @classmethod
    def _stash_tenant_attribute(cls) -> Optional[Tuple[str, Attribute[Any]]]:
        """The plain attribute naming an item's tenant, with its Python name, if the keyring is per tenant."""
        source = getattr(cls.Meta, "keyring", None)
        if not isinstance(source, TenantKeyrings) or source.attribute is None:
            return None
        attribute = cls.get_attributes().get(source.attribute)
        if attribute is None or isinstance(attribute, (EncryptedAttribute, HmacAttribute, MapAttribute)):
            raise ConfigurationError(
                f"{cls.__name__}: TenantKeyrings(attribute={source.attribute!r}) needs a plain attribute"
            )
        return source.attribute, attribute

    def _stash_instance_keyring(self, error: type[StashError]) -> Optional[Keyring]:
        tenant_attribute = self._stash_tenant_attribute()
        if tenant_attribute is None:
            return None
        name = getattr(self, tenant_attribute[0])
        return self._stash_item_keyring(None if name is None else str(name), error)

    @classmethod
    def _stash_raw_keyring(
        cls, item: Dict[str, Dict[str, Any]], error: type[StashError] = DecryptionError
    ) -> Optional[Keyring]:
        tenant_attribute = cls._stash_tenant_attribute()
        if tenant_attribute is None:
            return None
        _, attribute = tenant_attribute
        stored = item.get(attribute.attr_name)
        if not stored or NULL in stored:
            return None
        return cls._stash_item_keyring(str(attribute.deserialize(attribute.get_value(stored))), error)

    # -- the item path ------------------------------------------------------------------------------
    # PynamoDB's generic loops would call EncryptedAttribute.serialize/deserialize, which see only the
    # value. These replace them for encrypted models, with the same semantics for plain attributes,
    # and seal each encrypted value to the item's primary key (read back from the serialized item, so
    # the reader binds exactly what the writer bound).

    @reporting
    def _stash_serialize_item(self, null_check: bool = True) -> Dict[str, Dict[str, Any]]:
        plan = self._stash_plan()
        values = self.attribute_values
        item: Dict[str, Dict[str, Any]] = {}
        for name, attribute, stored, attr_type, direct, container in plan.plain:
            value = values.get(name) if direct else getattr(self, name)
            if value is None or container or type(value) is MapAttribute:
                serialized = _serialize_plain(attribute, name, value, container, null_check)
                if serialized is not None:
                    item[stored] = serialized
                continue
            attr_value = attribute.serialize(value)  # the common case of _serialize_plain, inline: it is hot
            if attr_value is not None:
                item[stored] = {attr_type: attr_value}
            elif null_check and not attribute.null:
                raise AttributeNullError(name)
        if not plan.fields and not plan.nested:
            return item

        runtime = self._stash_runtime(self._stash_instance_keyring(EncryptionError))
        pending = []
        encrypted = 0
        for field in runtime.fields:
            value = values.get(field.name)
            if value is None or (field.absent is not None and field.absent(value)):  # nothing to store
                if null_check and not field.null:
                    raise AttributeNullError(field.name)
                digest = values.get(field.hmac_python) if field.is_key and field.hmac_python else None
                if digest is not None:  # a key read back as a bare HMAC (a KEYS_ONLY index result)
                    item[field.hmac] = {STRING: digest}  # type: ignore[index]
                continue
            encoded = field.encode(value)
            field.write_key(item, encoded)
            pending.append((field, encoded))
            encrypted += len(encoded[0])
        nested = [(stored, cls, is_list, getattr(self, name)) for name, _, stored, cls, is_list in plan.nested]
        if not pending and all(value is None for *_, value in nested):
            return item
        item_key = plan.item_key(item)
        if item_key is None:
            raise EncryptionError(f"{type(self).__name__}: an item needs its primary key to be encrypted")
        for field, encoded in pending:
            field.write(item, encoded, item_key)
        if _audit.wanted():
            written = [field.name for field, _ in pending]
            written += [name for name, *_ in plan.nested if values.get(name) is not None]
            _audit.record("encrypt", type(self).__name__, runtime.table, written, (runtime.keyring.primary_key_id,))
        for (name, attribute, *_), (stored, map_class, is_list, value) in zip(plan.nested, nested):
            if value is None:
                if null_check and not attribute.null:
                    raise AttributeNullError(name)
                continue
            item[stored] = _seal_nested(runtime, map_class, is_list, value, stored, item_key, null_check)
        # Encryption adds ~41 bytes a value; the size is worth counting only when encrypted values are
        # large (counting costs ~5% of a small item's round trip). Otherwise DynamoDB's own check applies.
        size = item_size(item) if encrypted > 32 * 1024 or (plan.nested and nested) else 0
        if size > MAX_ITEM_SIZE:
            sizes = {field.name: item_size({field.source: item[field.source]}) for field, _ in pending}
            largest = max(sizes, key=sizes.__getitem__) if sizes else "none"
            growth = sum(sizes.values()) - encrypted
            raise EncryptionError(
                f"{type(self).__name__}: the item would be {size} bytes once encrypted (encryption adds "
                f"{growth}), over DynamoDB's {MAX_ITEM_SIZE} (400 KB); its largest encrypted attribute is "
                f"{largest} ({sizes.get(largest, 0)} bytes)",
                code="item_too_large",
            )
        return item

    @reporting
    def _stash_deserialize_item(self, attribute_values: Dict[str, Dict[str, Any]]) -> None:
        self._stash_fill(attribute_values, _MODEL_READ)

    def _stash_fill(self, attribute_values: Dict[str, Dict[str, Any]], read: _ReadMode) -> None:
        """Set this instance's values from a stored item, its encrypted fields opened as ``read`` says."""
        plan = self._stash_plan()
        self.attribute_values = values = {}
        _pynamodb.set_discriminator_and_defaults(self, defaults=plan.has_defaults)
        for name, attribute, stored, _, direct, _ in plan.plain if read.plain else plan.compound_parts:
            stored_value = attribute_values.get(stored)
            if stored_value and NULL not in stored_value:
                value = attribute.deserialize(attribute.get_value(stored_value))
                if direct:
                    values[name] = value
                else:
                    setattr(self, name, value)
        if not plan.fields and not plan.nested:
            return
        runtime = self._stash_runtime(self._stash_raw_keyring(attribute_values))
        names: Optional[List[str]] = [] if _audit.wanted() else None
        keys: List[str] = []
        try:
            self._stash_decrypt(plan, runtime, attribute_values, values, names, keys, read)
        except StashError as error:
            if names is not None:
                _audit.record("decrypt", type(self).__name__, runtime.table, names, keys, outcome=error.code)
            raise
        if names:
            _audit.record("decrypt", type(self).__name__, runtime.table, names, keys)

    def _stash_decrypt(
        self, plan: _Plan, runtime: _Runtime, attribute_values: Dict[str, Dict[str, Any]], values: Dict[str, Any],
        names: Optional[List[str]], keys: List[str], read: _ReadMode,
    ) -> None:
        """Open the item's encrypted values into ``values``; name them in ``names`` when auditing."""
        item_key = plan.item_key(attribute_values, DecryptionError)
        for name, _, stored, map_class, is_list in plan.nested:
            stored_value = attribute_values.get(stored)
            if not stored_value or NULL in stored_value:
                continue
            values[name] = _open_nested(runtime, map_class, is_list, stored_value, stored, item_key, read)
            if names is not None:
                names.append(name)
        for field in runtime.fields:
            if field.read(attribute_values, item_key, read, values) and names is not None:
                names.append(field.name)
                keys.append(_crypto.read_key_id(attribute_values[field.source][BINARY]))
        for name, compound in self._stash_compounds.items():
            stored_compound = values.get(name)
            if stored_compound is None or all(getattr(self, part) is None for part in compound.parts):
                continue  # none of its parts read (a KEYS_ONLY index): nothing to check it against
            try:
                computed = getattr(self, name)
            except EncryptionError:  # a part with no equality form (a NaN): it cannot match either
                computed = None
            if computed is None or not _crypto.digests_equal(computed, stored_compound):
                raise DecryptionError(
                    f"{type(self).__name__}.{name}: the stored compound HMAC does not match the item "
                    "(read a compound with all its parts)",
                    code="hmac_mismatch",
                )

    @classmethod
    def _stash_instantiate(cls, attribute_values: Dict[str, Dict[str, Any]]) -> Any:
        # PynamoDB builds instances from items (from_raw_data: get, query, scan, batch_get, TransactGet)
        # with the base class's deserializer, past the override above: this replaces that too.
        try:
            instance = cls._stash_new(attribute_values)
            instance._stash_fill(attribute_values, _MODEL_READ)
        except StashError as error:
            report_error(error)
            raise
        return instance

    @classmethod
    @reporting
    def _stash_load(
        cls: type[_M],
        attribute_values: Dict[str, Dict[str, Any]],
        *,
        whole_item: bool,
        policy: Optional[str] = None,
        plain: bool = True,
    ) -> _M:
        """An instance from a stored item, as :meth:`from_raw_data` makes it, read as the caller says.

        :param whole_item: the item was read whole (a stream image, a raw item, a full scan): an HMAC
            without its value is then always refused.
        :param policy: a plaintext policy other than ``Meta.plaintext_policy`` (the migration tools).
        :param plain: also read the plain attributes (else only those a compound HMAC needs: for readers
            of the encrypted values alone, which pass the plain ones through as stored).
        :raises ValueError: (PynamoDB's) for a discriminator naming a class that is not a ``cls``.
        :raises DecryptionError: as :meth:`_FieldRuntime.read` says.
        """
        instance = cls._stash_new(attribute_values)
        instance._stash_fill(attribute_values, _ReadMode(policy, whole_item, plain))
        return instance

    @classmethod
    def _stash_new(cls: type[_M], attribute_values: Dict[str, Dict[str, Any]]) -> _M:
        """An empty instance of the class the item's discriminator names (``cls`` without one).

        :raises ValueError: (PynamoDB's) for a discriminator naming a class that is not a ``cls``.
        """
        stored_cls = _pynamodb.discriminator_class(cls, attribute_values)
        if stored_cls and not issubclass(stored_cls, cls):
            raise ValueError(f"Cannot instantiate a {cls.__name__} from the returned class: {stored_cls.__name__}")
        model = stored_cls or cls
        # Model.__init__ only fills attribute_values, which _stash_fill starts afresh.
        instance: _M = object.__new__(model) if model.__init__ is Model.__init__ else model(_user_instantiated=False)
        return instance

    # -- the update path ----------------------------------------------------------------------------

    def update(
        self, actions: List[Action], condition: Optional[Condition] = None, *, add_version_condition: bool = True
    ) -> Any:
        """PynamoDB's ``update``, with ``x.set(v)``/``x.remove()`` applied to both stored attributes.

        :raises UnsupportedQueryError: for an action on a stored ``__source``/``__hmac`` name, or one
            that belongs to another model.
        :raises EncryptionError: with code ``item_too_large`` when DynamoDB refuses the update because the
            item would pass 400 KB (or its encrypted values alone would, before any request): the
            message gives what encryption adds to the values it sets and the largest of them.
        """
        with self._stash_operation():
            expanded = self._stash_expand(actions)
            sealed = _sealed_sizes(expanded, (stored for _, _, stored, _, _ in self._stash_plan().nested))
            if sum(sealed.values()) > MAX_ITEM_SIZE:
                raise self._stash_too_large(actions, sealed, "its encrypted values alone would be")
            try:
                return super().update(expanded, condition=condition, add_version_condition=add_version_condition)
            except UpdateError as error:
                if not sealed or "item size" not in (error.cause_response_message or "").lower():
                    raise
                raise self._stash_too_large(actions, sealed, "DynamoDB refused it: the item would be") from None

    def _stash_too_large(self, actions: List[Action], sealed: Dict[str, int], what: str) -> EncryptionError:
        plaintext = sum(
            len(action.attribute.codec.encode(action.value)) for action in actions
            if isinstance(action, PendingEncryptedAction) and isinstance(action.attribute, EncryptedAttribute)
            and action.value is not None
        )
        largest = max(sealed, key=sealed.__getitem__)
        return EncryptionError(
            f"{type(self).__name__}: update: {what} over DynamoDB's {MAX_ITEM_SIZE} (400 KB); the encrypted "
            f"values it sets take {sum(sealed.values())} bytes stored (encryption adds about "
            f"{max(sum(sealed.values()) - plaintext, 0)}), the largest {largest} ({sealed[largest]} bytes)",
            code="item_too_large",
        )

    def save(self, condition: Optional[Condition] = None, *, add_version_condition: bool = True) -> Dict[str, Any]:
        with self._stash_operation():
            return super().save(condition=condition, add_version_condition=add_version_condition)

    def delete(self, condition: Optional[Condition] = None, *, add_version_condition: bool = True) -> Any:
        with self._stash_operation():
            return super().delete(condition=condition, add_version_condition=add_version_condition)

    def refresh(self, consistent_read: bool = False) -> None:
        with self._stash_operation():
            super().refresh(consistent_read=consistent_read)

    @classmethod
    def _stash_scope(cls) -> _audit.Scope:
        table = _logical_table(cls.Meta)
        return _audit.Scope(cls.__name__, str(table or ""))

    @classmethod
    def _stash_audited(cls, results: ResultIterator[_M]) -> ResultIterator[_M]:
        """The same results, whose decryption becomes one audit event when the iteration ends."""
        results.__class__ = _AuditedResults
        results._stash_reads = cls._stash_scope()  # type: ignore[attr-defined]
        return results

    @classmethod
    def _stash_operation(cls) -> Any:
        """One model operation for the audit trail: its work becomes one event per kind."""
        table = _logical_table(cls.Meta)
        return _audit.operation(cls.__name__, str(table or ""))

    def get_update_kwargs_from_instance(
        self,
        actions: List[Action],
        condition: Optional[Condition] = None,
        return_values_on_condition_failure: Optional[str] = None,
        *,
        add_version_condition: bool = True,
    ) -> Dict[str, Any]:
        return super().get_update_kwargs_from_instance(
            self._stash_expand(actions),
            condition=condition,
            return_values_on_condition_failure=return_values_on_condition_failure,
            add_version_condition=add_version_condition,
        )

    def _stash_expand(self, actions: List[Action]) -> List[Action]:
        if not isinstance(actions, list):
            return actions  # PynamoDB raises its own TypeError
        plan = self._stash_plan()
        if not (plan.fields or plan.nested or self._stash_compounds) and not any(
            isinstance(action, PendingEncryptedAction) for action in actions
        ):
            return actions  # nothing encrypted: as PynamoDB sends them, and no keyring needed
        runtime = self._stash_runtime(self._stash_instance_keyring(EncryptionError))
        expanded: List[Action] = []
        item_key: Optional[bytes] = None
        for action in actions:
            if not isinstance(action, PendingEncryptedAction):
                target = action.values[0] if getattr(action, "values", None) else None
                if isinstance(target, Path) and not self._stash_plain_target(target, action):
                    raise UnsupportedQueryError(
                        f"{type(self).__name__}: {'.'.join(target.path)!r} holds encrypted data; update it "
                        "through its EncryptedAttribute's or EncryptedMapAttribute's set()/remove()"
                    )
                expanded.append(action)
                continue
            declared = action.attribute
            root = declared.model if isinstance(declared, EncryptedAttribute) else None
            root = root or getattr(declared, "stash_root", None) or getattr(declared, "_stash_root", None)
            if root is None or not isinstance(self, root):
                # A base model's attribute is fine on a subclass instance (which copies its fields).
                raise UnsupportedQueryError(f"{declared._describe()}: this action belongs to another model")
            path = list(declared.attr_path)
            codec = getattr(declared, "codec", None)
            if action.value is None or (codec is not None and codec.absent is not None and codec.absent(action.value)):
                # set(None), or a value its PynamoDB attribute stores as nothing (an empty set): REMOVE
                expanded.append(RemoveAction(Path(path)))
                if getattr(declared, "equality", False):
                    expanded.append(RemoveAction(Path([*path[:-1], declared.logical_name + HMAC_SUFFIX])))
                continue
            if item_key is None:
                item_key = self._stash_item_key()
            if isinstance(declared, EncryptedMapAttribute):
                stored = _seal_nested(runtime, type(declared), False, action.value, ".".join(path), item_key, True)
                expanded.append(SetAction(Path(path), Value(stored)))
                continue
            legacy = RemoveAction(Path([declared.logical_name]))
            if len(path) == 1 and plaintext_policy(type(self)) == "read_plaintext" and legacy not in actions:
                # During a migration, a new value also drops the stale plaintext beside it.
                expanded.append(legacy)
            field = runtime.by_path[declared.template_path()]
            sealed: Dict[str, Any] = {}
            field.write(sealed, field.encode(action.value), item_key)
            expanded += [SetAction(Path([*path[:-1], name]), Value(stored)) for name, stored in sealed.items()]
        if self._stash_compounds:
            expanded += self._stash_compound_actions(actions, runtime.keyring)
        written = [
            ".".join(action.attribute.attr_path).replace(SOURCE_SUFFIX, "") for action in actions
            if isinstance(action, PendingEncryptedAction) and action.value is not None
        ]
        if written and _audit.wanted():
            _audit.record("encrypt", type(self).__name__, runtime.table, written, (runtime.keyring.primary_key_id,))
        return expanded

    def _stash_compound_actions(self, actions: List[Action], keyring: Keyring) -> List[Action]:
        """Keep compound HMACs in step with an update of their parts (from this instance's values), under
        the item's ``keyring``."""
        updated: Dict[str, Any] = {}
        unknown: set[str] = set()
        attributes = self.get_attributes()
        for action in actions:
            if isinstance(action, PendingEncryptedAction):
                if isinstance(action.attribute, EncryptedAttribute) and len(action.attribute.attr_path) == 1:
                    updated[action.attribute.python_name] = action.value
                continue
            target = action.values[0] if getattr(action, "values", None) else None
            if not isinstance(target, Path) or len(target.path) != 1:
                continue
            name = _pynamodb.python_name(self, target.path[0])
            operand = action.values[1] if len(action.values) > 1 else None
            if isinstance(action, RemoveAction):
                updated[name] = None
            elif isinstance(action, SetAction) and isinstance(operand, Value) and name in attributes:
                attribute = attributes[name]
                updated[name] = attribute.deserialize(attribute.get_value(operand.value))
            else:
                unknown.add(name)
        compound_actions: List[Action] = []
        for compound in self._stash_compounds.values():
            touched = set(compound.parts)
            if touched & unknown:
                raise UnsupportedQueryError(
                    f"{compound._describe()}: update its parts with set() or remove(), so that it can follow"
                )
            if not touched & set(updated):
                continue
            parts = tuple(updated[p] if p in updated else getattr(self, p) for p in compound.parts)
            if any(part is None for part in parts):
                compound_actions.append(RemoveAction(Path([compound.attr_name])))
            else:
                digest = Value({STRING: compound.digest(parts, keyring)})
                compound_actions.append(SetAction(Path([compound.attr_name]), digest))
        return compound_actions

    def _stash_plain_target(self, target: Path, action: Action) -> bool:
        """Whether a plain update action on ``target`` leaves every encrypted value as it is.

        Refused: paths to ``__source``/``__hmac`` values, to an encrypted attribute's base name (which
        would store a plaintext beside it; removing it is fine), and anything inside an encrypted map
        other than its typed
        plain fields and removing it whole; list positions of encrypted maps are bound into their
        ciphertexts, so no path into such a list is allowed.
        """
        segments = [segment.split("[", 1)[0] for segment in target.path]
        if any(segment.endswith(RESERVED_SUFFIXES) for segment in segments):
            return False
        plan = self._stash_plan()
        if segments[0] in {field.logical_name for field in plan.fields}:
            # Only removing a stale plaintext left from before the attribute was encrypted.
            return isinstance(action, RemoveAction) and len(target.path) == 1
        if segments[0] not in {stored for _, _, stored, _, _ in plan.nested}:
            return True
        if target.path == segments[:1] and isinstance(action, RemoveAction):  # the whole map or list
            return True
        attribute = target.attribute
        return (
            len(segments) > 1
            and "[" not in "".join(target.path)
            and isinstance(attribute, Attribute)
            and not isinstance(attribute, (EncryptedAttribute, EncryptedMapAttribute, HmacAttribute))
            and not contains_encrypted(attribute)
        )

    def _stash_item_key(self) -> bytes:
        hash_value, range_value = _pynamodb.serialized_keys(self)
        plan = self._stash_plan()
        item: Dict[str, Dict[str, Any]] = {}
        for key, value in ((plan.hash_key, hash_value), (plan.range_key, range_value)):
            if key is not None and value is not None:
                item[key[0]] = {key[1]: value}
        item_key = plan.item_key(item)
        if item_key is None:
            raise EncryptionError(f"{type(self).__name__}: an item needs its primary key to be encrypted")
        return item_key

    # -- projections ------------------------------------------------------------------------------

    @classmethod
    def _stash_projection(
        cls, attributes_to_get: Optional[Iterable[Any]], index_name: Optional[str] = None
    ) -> Optional[List[str]]:
        """The names to project: encrypted fields by their stored names, plus what decryption needs (the
        key, and the discriminator and tenant attribute where the index read projects them)."""
        if attributes_to_get is None:
            return None
        models: List[type[EncryptedModel]] = [cls]
        discriminator = _pynamodb.discriminator_attribute(cls)
        if discriminator is not None:  # a query on a base model returns its subclasses' fields too
            models += [m for m in discriminator.get_registered_subclasses(cls) if issubclass(m, EncryptedModel)]
        if not any(model._stash_fields or model._stash_plan().nested for model in models):
            return attributes_to_get  # type: ignore[return-value]  # nothing to decrypt: as PynamoDB sends it
        if isinstance(attributes_to_get, str):
            attributes_to_get = [attributes_to_get]
        fields_by_name: Dict[str, EncryptedAttribute[Any]] = {}
        for model in reversed(models):
            for name, f in model._stash_fields.items():
                fields_by_name.update(dict.fromkeys((name, f.logical_name, f.attr_name), f))
                if f.hmac_attribute is not None:
                    fields_by_name[f.hmac_attribute.attr_name] = f
        projected = _index_projects(cls, index_name)
        names: List[str] = []
        for entry in attributes_to_get:
            if isinstance(entry, Attribute):
                entry = entry.attr_name if not isinstance(entry, EncryptedAttribute) else entry.python_name
            field = fields_by_name.get(entry) if isinstance(entry, str) else None
            if field is None:
                names.append(entry)
                continue
            # What the index holds of it: on an index keyed on its HMAC that does not project the value,
            # the HMAC alone (the attribute reads None, as the index has no value to give).
            stored = [field.attr_name] + ([field.hmac_attribute.attr_name] if field.hmac_attribute else [])
            names += [name for name in stored if projected(name)] or stored
        names += [attribute.attr_name for attribute in _pynamodb.key_attributes(cls) if attribute is not None]
        tenant = cls._stash_tenant_attribute()
        for attribute in (_pynamodb.discriminator_attribute(cls), tenant[1] if tenant else None):
            # Not projected by the index: asking for it is an error; the items are read as ``cls``.
            if attribute is not None and projected(attribute.attr_name):
                names.append(attribute.attr_name)
        return list(dict.fromkeys(names))

    @classmethod
    def get(
        cls: type[_M],
        hash_key: Any,
        range_key: Optional[Any] = None,
        consistent_read: bool = False,
        attributes_to_get: Optional[Sequence[str]] = None,
    ) -> _M:
        with cls._stash_operation():
            return super().get(
                hash_key,
                range_key=range_key,
                consistent_read=consistent_read,
                attributes_to_get=cls._stash_projection(attributes_to_get),
            )

    @classmethod
    def batch_get(
        cls: type[_M],
        items: Iterable[Any],
        consistent_read: Optional[bool] = None,
        attributes_to_get: Optional[Sequence[str]] = None,
    ) -> Iterator[_M]:
        """PynamoDB's ``batch_get``, taking plaintext keys, with backoff on unprocessed keys.

        Keys go in pages of 100 (DynamoDB's limit); duplicates are fetched once. Keys DynamoDB leaves
        unprocessed are requested again after an exponential, jittered delay.

        :raises ValueError: for a key that is not a hash key (or a (hash, range) pair); the message
            does not quote it.
        :raises GetError: when ``Meta.max_retry_attempts`` rounds in a row return none of the keys still
            unprocessed (a round that makes progress resets the count, as PynamoDB keeps going then).
        """
        projection = cls._stash_projection(attributes_to_get)
        unique: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
        with cls._stash_operation():
            for item in items:  # once per stored key: two spellings may normalize to one HMAC
                key = cls._stash_batch_key(item)
                unique.setdefault(cls._stash_key_identity(key), key)
        keys = list(unique.values())
        reads = cls._stash_scope()
        try:
            yield from cls._stash_batch_pages(keys, consistent_read, projection, reads)
        finally:
            reads.close()

    @classmethod
    def _stash_batch_pages(
        cls: type[_M], keys: List[Dict[str, Any]], consistent_read: Optional[bool], projection: Any,
        reads: _audit.Scope,
    ) -> Iterator[_M]:
        for start in range(0, len(keys), BATCH_GET_PAGE_LIMIT):
            pending = keys[start : start + BATCH_GET_PAGE_LIMIT]
            stalled = 0  # rounds in a row that returned nothing: only those count against max_retry_attempts
            while pending:
                page, unprocessed = _pynamodb.batch_get_page(cls, pending, consistent_read, projection)
                for raw in page:
                    yield _from_raw_data_counted(cls, raw, reads)
                if not unprocessed:
                    break
                stalled = 0 if len(unprocessed) < len(pending) else stalled + 1
                if stalled >= cls.Meta.max_retry_attempts:
                    raise GetError("Failed to batch get items: max_retry_attempts exceeded")
                _backoff(stalled + 1)
                pending = unprocessed

    @classmethod
    def _stash_key_identity(cls, key: Dict[str, Any]) -> Tuple[Tuple[str, str], ...]:
        """What makes two serialized keys the same stored key: DynamoDB compares numbers by value (as
        PynamoDB's set of keys does: ``2`` and ``2.0`` are one key)."""
        identity = []
        for attribute in _pynamodb.key_attributes(cls):
            if attribute is None:
                continue
            value = key[attribute.attr_name]
            if attribute.attr_type == NUMBER and isinstance(value, str):
                with contextlib.suppress(ValueError):  # not a number DynamoDB stores: it will say so
                    value = canonical_number(value)
            identity.append((attribute.attr_name, repr(value)))
        return tuple(identity)

    @classmethod
    def _stash_batch_key(cls, item: Any) -> Dict[str, Any]:
        hash_attribute, range_attribute = _pynamodb.key_attributes(cls)
        if range_attribute is None:
            return {hash_attribute.attr_name: hash_attribute.serialize(item)}
        if isinstance(item, (str, bytes)) or not isinstance(item, Iterable):
            raise ValueError(f"{cls.__name__}.batch_get: each key is a (hash key, range key) pair")
        pair = tuple(item)
        if len(pair) != 2:
            raise ValueError(f"{cls.__name__}.batch_get: each key is a (hash key, range key) pair")
        return {
            hash_attribute.attr_name: hash_attribute.serialize(pair[0]),
            range_attribute.attr_name: range_attribute.serialize(pair[1]),
        }

    @classmethod
    def query(
        cls: type[_M],
        hash_key: Any,
        range_key_condition: Optional[Condition] = None,
        filter_condition: Optional[Condition] = None,
        consistent_read: bool = False,
        index_name: Optional[str] = None,
        scan_index_forward: Optional[bool] = None,
        limit: Optional[int] = None,
        last_evaluated_key: Optional[Dict[str, Dict[str, Any]]] = None,
        attributes_to_get: Optional[Iterable[str]] = None,
        page_size: Optional[int] = None,
        rate_limit: Optional[float] = None,
    ) -> ResultIterator[_M]:
        """PynamoDB's ``query``, taking plaintext for HMAC keys and conditions.

        With a truncated HMAC (``Equality(hmac_bits=...)``) in the key or the conditions, the results are
        checked after decryption and false positives dropped; ``limit`` then counts exact matches.
        """
        exact = cls._stash_exact_constraints(range_key_condition, filter_condition)
        if index_name:
            key_attribute = _pynamodb.index_hash_key_attribute(_pynamodb.indexes(cls)[index_name])
            field = getattr(key_attribute, "field", None)
            if field is not None and field.truncated:
                exact.append((field, (hash_key,)))
        with cls._stash_operation():  # hashing the key and the conditions
            results = super().query(
                hash_key,
                range_key_condition=range_key_condition,
                filter_condition=filter_condition,
                consistent_read=consistent_read,
                index_name=index_name,
                scan_index_forward=scan_index_forward,
                limit=None if exact else limit,
                last_evaluated_key=last_evaluated_key,
                attributes_to_get=cls._stash_projection(attributes_to_get, index_name),
                page_size=page_size or (limit if exact else None),
                rate_limit=rate_limit,
            )
        if exact:
            return ExactResults(cls, results, exact, limit)  # type: ignore[return-value]
        return cls._stash_audited(results) if _audit.settings.enabled else results

    @classmethod
    def scan(
        cls: type[_M],
        filter_condition: Optional[Condition] = None,
        segment: Optional[int] = None,
        total_segments: Optional[int] = None,
        limit: Optional[int] = None,
        last_evaluated_key: Optional[Dict[str, Dict[str, Any]]] = None,
        page_size: Optional[int] = None,
        consistent_read: Optional[bool] = None,
        index_name: Optional[str] = None,
        rate_limit: Optional[float] = None,
        attributes_to_get: Optional[Sequence[str]] = None,
    ) -> ResultIterator[_M]:
        """PynamoDB's ``scan``; false positives of truncated HMACs are dropped, as for :meth:`query`."""
        exact = cls._stash_exact_constraints(filter_condition)
        results = super().scan(
            filter_condition=filter_condition,
            segment=segment,
            total_segments=total_segments,
            limit=None if exact else limit,
            last_evaluated_key=last_evaluated_key,
            page_size=page_size or (limit if exact else None),
            consistent_read=consistent_read,
            index_name=index_name,
            rate_limit=rate_limit,
            attributes_to_get=cls._stash_projection(attributes_to_get, index_name),
        )
        if exact:
            return ExactResults(cls, results, exact, limit)  # type: ignore[return-value]
        return cls._stash_audited(results) if _audit.settings.enabled else results

    @classmethod
    def count(
        cls: type[_M],
        hash_key: Optional[Any] = None,
        range_key_condition: Optional[Condition] = None,
        filter_condition: Optional[Condition] = None,
        consistent_read: bool = False,
        index_name: Optional[str] = None,
        limit: Optional[int] = None,
        rate_limit: Optional[float] = None,
    ) -> int:
        """PynamoDB's ``count``; with a truncated HMAC it reads the items to count exact matches only."""
        exact = cls._stash_exact_constraints(range_key_condition, filter_condition)
        if index_name and hash_key is not None:
            field = getattr(_pynamodb.index_hash_key_attribute(_pynamodb.indexes(cls)[index_name]), "field", None)
            exact += [(field, (hash_key,))] if field is not None and field.truncated else []
        if not exact:
            with cls._stash_operation():
                return super().count(
                    hash_key,
                    range_key_condition=range_key_condition,
                    filter_condition=filter_condition,
                    consistent_read=consistent_read,
                    index_name=index_name,
                    limit=limit,
                    rate_limit=rate_limit,
                )
        matches = cls.query(
            hash_key, range_key_condition=range_key_condition, filter_condition=filter_condition,
            consistent_read=consistent_read, index_name=index_name, limit=limit, rate_limit=rate_limit,
        )
        return sum(1 for _ in matches)

    @classmethod
    def _stash_exact_constraints(cls, *conditions: Optional[Condition]) -> List[Tuple[EncryptedAttribute[Any], Any]]:
        """The truncated-HMAC comparisons of read conditions, each an obligation every result must meet.

        :raises UnsupportedQueryError: if one sits under ``|`` or ``~``, where the results could not be
            checked exactly.
        """
        found: List[Tuple[EncryptedAttribute[Any], Any]] = []

        def visit(condition: Any, exact_allowed: bool) -> None:
            if isinstance(condition, (ExactComparison, ExactIn)):
                if not exact_allowed:
                    raise UnsupportedQueryError(
                        f"{condition.field._describe()}: a truncated HMAC can only be combined with &"
                    )
                found.append((condition.field, condition.expected))
            elif isinstance(condition, Condition):
                inner_allowed = exact_allowed and isinstance(condition, And)
                for value in condition.values:
                    visit(value, inner_allowed)

        for condition in conditions:
            visit(condition, True)
        return found


_pynamodb.install_item_hooks(
    EncryptedModel,
    serialize=EncryptedModel._stash_serialize_item,
    deserialize=EncryptedModel._stash_deserialize_item,
    instantiate=EncryptedModel.__dict__["_stash_instantiate"],
)
