"""The stored HMACs: :class:`HmacDigest`, :class:`HmacAttribute` and :class:`CompoundHmacAttribute`.

An ``EncryptedAttribute(..., equality=True)`` ``x`` has a companion :class:`HmacAttribute` stored as
``x__hmac``; index classes declare their own to key an index on it. Its ``serialize`` hashes a plaintext
key or condition value under the model's keyring. A :class:`CompoundHmacAttribute` stores one HMAC over
several attributes of its model.

This module sits below ``_attributes``: an HMAC attribute reaches the encrypted field it belongs to
through :class:`~._protocols.HashedField`, a compound hashes an encrypted part by the part's own rules
through :class:`HashedPart`, and both reach their model through :class:`~._protocols.StashModel`.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any, NoReturn, Optional, TypeVar, cast, overload

from pynamodb.attributes import Attribute
from pynamodb.constants import STRING
from pynamodb.expressions.condition import Comparison, In

from . import _pynamodb
from ._codecs import canonical_number, safe_reason
from ._expressions import _EqualityOnly
from ._protocols import HashedField, StashModel
from .exceptions import ConfigurationError, EncryptionError

if TYPE_CHECKING:
    from ._keyring import Keyring

_A = TypeVar("_A", bound=Attribute[Any])

HMAC_SUFFIX = "__hmac"


class HmacDigest(str):
    """A stored HMAC, as read from ``x__hmac``.

    Key and condition values of this type are sent as they are; any other value is hashed first. Wrap
    a digest obtained elsewhere (boto3, the AWS CLI) in it to use it as a key: ``User.get(HmacDigest(d))``.
    """

    __slots__ = ()
    __module__ = "pynamodb_stash"


class HashedPart:
    """An attribute with an equality form of its own (``EncryptedAttribute``): a compound HMAC hashes such
    a part by its :meth:`hmac_input`, normalized as its ``Equality`` says, and any other part by its stored
    form."""

    __slots__ = ()

    def hmac_input(self, value: Any, encoded: Optional[bytes] = None) -> bytes:
        raise NotImplementedError


class HmacAttribute(_EqualityOnly, Attribute[str]):
    """The stored equality HMAC of an encrypted attribute, ``<name>__hmac``.

    Declare one on an index class to key the index on an encrypted attribute's HMAC::

        class EmailIndex(GlobalSecondaryIndex):
            class Meta: ...
            email = HmacAttribute(hash_key=True)     # or HmacAttribute(of="email")

    Models create their own companions; users only declare ``HmacAttribute`` on indexes. Any value
    given to it as a key or condition is hashed first, unless it is an :class:`HmacDigest`.

    :param of: the Python name of the model's ``EncryptedAttribute(..., equality=True)`` (default: the
        name this attribute is declared under).
    :raises ConfigurationError: when the model is created, if ``of`` names no equality attribute.
    """

    __module__ = "pynamodb_stash"
    attr_type = STRING

    def __init__(
        self,
        of: str | None = None,
        *,
        hash_key: bool = False,
        range_key: bool = False,
        attr_name: str | None = None,
    ) -> None:
        super().__init__(hash_key=hash_key, range_key=range_key, null=True, attr_name=attr_name)
        self.of = of
        self.declared_name = attr_name
        self.python_name = ""
        self.field: HashedField | None = None
        self.is_companion = False
        self.declared_by: HmacAttribute | None = None
        """On a model's own copy of an index attribute: the attribute declared on the index class."""
        self._shared_scope: tuple[object, ...] | None = None
        self._ambiguous = False
        self.compound: CompoundHmacAttribute | None = None
        """On an index attribute: the model's compound HMAC it holds, when ``of`` names one."""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.python_name = name
        self.of = self.of or name
        if not self.declared_name and self.field is None:
            self.attr_name = self.of + HMAC_SUFFIX

    def bind(self, field: HashedField, *, where: str) -> None:
        """Tie this attribute to the encrypted field whose HMAC it holds."""
        expected = field.logical_name + HMAC_SUFFIX
        if self.declared_name and self.declared_name != expected:
            raise ConfigurationError(f"{where}: attr_name must be {expected!r} to match {field._describe()}")
        self.attr_name = expected
        self.field = field

    def copy_for_model(self) -> HmacAttribute:
        """An unbound copy, for a model's own copy of the index class this attribute is declared on."""
        own = copy.copy(self)
        own.attr_path = list(self.attr_path)
        own.field = None
        own.declared_by = self.declared_by or self
        own._shared_scope = None
        own._ambiguous = False
        return own

    def bind_shared(self, field: HashedField, scope: tuple[object, ...], *, where: str) -> None:
        """Bind an index class's own attribute, used in conditions such as ``MyIndex.email == v``.

        Models on different tables or keyrings may share an index class; its attribute then cannot know
        which HMAC is meant, and refuses to serialize rather than hash for the wrong one.
        """
        if self.field is None:
            self.bind(field, where=where)
            self._shared_scope = scope
        elif self._shared_scope != scope:
            self._ambiguous = True

    def _describe(self) -> str:
        if self.compound is not None:
            return self.compound._describe()
        return self.field._describe() + HMAC_SUFFIX if self.field is not None else f"HmacAttribute({self.of!r})"

    def serialize(self, value: Any) -> str:
        if isinstance(value, HmacDigest):
            return str(value)
        if self.compound is not None:
            return self.compound.serialize(value)
        if self._ambiguous:
            raise ConfigurationError(
                f"{self._describe()}: this index class is shared by models with different HMAC keys; "
                "build the condition on the model's attribute (Model.attr == value) instead"
            )
        field = self.field
        if field is None or field.model is None:
            raise ConfigurationError(f"{self._describe()} is not bound to an encrypted attribute of a model")
        return field.model._stash_runtime().by_path[field.logical_name].digest(value)

    def deserialize(self, value: Any) -> HmacDigest:
        return HmacDigest(value)

    # A model's companion follows its field: reading it gives the HMAC of the field's current value
    # (else the HMAC read from the table), and a plaintext written to it (a positional hash key) goes
    # to the field.
    @overload
    def __get__(self: _A, instance: None, owner: Any) -> _A: ...

    @overload
    def __get__(self: _A, instance: Any, owner: Any) -> str: ...

    def __get__(self, instance: Any, owner: Any) -> Any:
        if (
            instance is not None
            and self.is_companion
            and self.field is not None
            and self.field.model is not None  # a nested field's HMAC is the one read from the table
            and not _pynamodb.is_map_class_object(self, instance)
        ):
            item: StashModel = instance
            plaintext = item.attribute_values.get(self.field.python_name)
            if plaintext is not None:  # under the item's own keyring (its tenant's, with TenantKeyrings)
                runtime = item._stash_runtime(item._stash_instance_keyring(EncryptionError))
                return HmacDigest(runtime.by_path[self.field.logical_name].digest(plaintext))
        return super().__get__(instance, owner)

    def __set__(self, instance: Any, value: Any) -> None:
        if self.is_companion and self.field is not None and value is not None and not isinstance(value, HmacDigest):
            setattr(instance, self.field.python_name, value)
            return
        super().__set__(instance, value)

    def __eq__(self, other: Any) -> Comparison:  # type: ignore[override]
        if self.field is not None and self.field.truncated:  # kept exact, as on the field itself
            return cast(Comparison, self.field == other)
        return Attribute.__eq__(self, other)

    def __ne__(self, other: Any) -> Comparison:  # type: ignore[override]
        if self.field is not None and self.field.truncated:
            return cast(Comparison, self.field != other)
        return Attribute.__ne__(self, other)

    def is_in(self, *values: Any) -> In:
        if self.field is not None and self.field.truncated:
            return self.field.is_in(*values)
        return Attribute.is_in(self, *values)

    def set(self, value: Any) -> NoReturn:
        self._unsupported("set() on an HMAC (set the encrypted attribute instead)")

    def remove(self) -> NoReturn:
        self._unsupported("remove() on an HMAC (remove the encrypted attribute instead)")


class CompoundHmacAttribute(HmacAttribute):
    """One stored HMAC over several attributes of the model, usable as a key or in conditions.

    ::

        class User(EncryptedModel):
            email = EncryptedAttribute(str, equality=True)
            kind = UnicodeAttribute()
            email_kind = CompoundHmacAttribute("email", "kind")   # stored as email_kind__hmac

        User.scan(User.email_kind == ("alice@example.com", "admin"))

    Its value is computed from the parts whenever the item is written (and verified when it is read);
    an item missing a part stores none (a sparse index). Queries take a tuple of the parts' plaintexts.
    Parts may be encrypted or plain top-level attributes; encrypted parts are normalized as their own
    ``Equality`` says. It reveals which items share the whole combination.

    :raises ConfigurationError: when the model is created, for a part that is not a top-level attribute.
    """

    __module__ = "pynamodb_stash"

    def __init__(
        self, *parts: str, hash_key: bool = False, range_key: bool = False, attr_name: str | None = None,
        prefix: str = "",
    ) -> None:
        super().__init__(hash_key=hash_key, range_key=range_key, attr_name=attr_name)
        if len(parts) < 2 or not all(isinstance(part, str) and part for part in parts):
            raise ConfigurationError("CompoundHmacAttribute takes the names of two or more attributes")
        self.parts = parts
        self.prefix = prefix
        self.model: type[StashModel] | None = None

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.python_name = name
        self.of = name
        if not self.declared_name:
            self.attr_name = name + HMAC_SUFFIX

    def _describe(self) -> str:
        return f"{self.model.__name__ if self.model else '<unbound>'}.{self.python_name}"

    def serialize(self, value: Any) -> str:
        """The compound HMAC of a tuple of the parts' plaintexts, under the current keyring (a key or a
        condition value has no item: with ``TenantKeyrings``, the tenant set with ``tenant()``)."""
        if isinstance(value, HmacDigest):
            return str(value)
        return self.digest(value)

    def digest(self, value: Any, keyring: Keyring | None = None) -> str:
        """The compound HMAC of a tuple of the parts' plaintexts under ``keyring`` (default: the current one).

        :raises EncryptionError: if a part does not fit its attribute (the message omits the values).
        """
        model = self.model
        if model is None:
            raise ConfigurationError(f"{self._describe()} is not bound to a model")
        if not isinstance(value, (tuple, list)) or len(value) != len(self.parts):
            raise EncryptionError(f"{self._describe()}: expected a tuple of {len(self.parts)} values {self.parts}")
        encoded = b"C"
        attributes = model.get_attributes()
        try:
            for name, part in zip(self.parts, value):
                attribute = attributes[name]
                if isinstance(attribute, HashedPart):
                    data = attribute.hmac_input(part)
                else:
                    serialized = attribute.serialize(part)
                    if attribute.attr_type == "N":
                        serialized = canonical_number(serialized)  # DynamoDB returns "2" for "2.0"
                    elif attribute.attr_type == "NS":
                        serialized = sorted(canonical_number(n) for n in serialized)
                    elif attribute.attr_type in ("SS", "BS"):
                        serialized = sorted(serialized)  # sets have no order
                    data = attribute.attr_type.encode() + _canonical_json(serialized)
                encoded += len(data).to_bytes(4, "big") + data
        except EncryptionError:
            raise
        except Exception as exc:  # a plain attribute's own error may quote the value
            raise EncryptionError(
                f"{self._describe()}: a part does not fit its attribute: {safe_reason(exc)}"
            ) from None
        keyring = keyring or model._stash_keyring()
        hasher = keyring.hasher("compound", model._stash_table(), self.attr_name)
        return self.prefix + hasher.digest(encoded)

    @overload
    def __get__(self: _A, instance: None, owner: Any) -> _A: ...

    @overload
    def __get__(self: _A, instance: Any, owner: Any) -> str: ...

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is not None and self.model is not None and not _pynamodb.is_map_class_object(self, instance):
            values = tuple(getattr(instance, part) for part in self.parts)
            if any(value is None for value in values):
                return None  # no compound without all its parts: a stored one is never written back
            # Under the item's own keyring (its tenant's, with TenantKeyrings), like every field of the item.
            item: StashModel = instance
            keyring = item._stash_runtime(item._stash_instance_keyring(EncryptionError)).keyring
            return HmacDigest(self.digest(values, keyring))
        return Attribute.__get__(self, instance, owner)

    def copy_for_model(self) -> CompoundHmacAttribute:
        """An unbound copy, so that each model class (and table) computes its own compound."""
        own = copy.copy(self)
        own.attr_path = list(self.attr_path)
        own.model = None
        return own

    def __set__(self, instance: Any, value: Any) -> None:
        Attribute.__set__(self, instance, value)


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_bytes_as_text).encode()


def _bytes_as_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return repr(sorted(value))
    raise TypeError(type(value).__name__)
