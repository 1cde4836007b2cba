"""``EncryptedAttribute``, its equality companion ``HmacAttribute``, and ``EncryptedMapAttribute``.

An ``EncryptedAttribute`` ``x`` is stored as ``x__source`` (binary ciphertext). With ``equality=True``
the model also declares a companion ``HmacAttribute`` stored as ``x__hmac``: a real PynamoDB attribute,
so table keys, index keys, conditions and projections on it work through PynamoDB's own code, and
its ``serialize`` turns plaintext into the HMAC wherever PynamoDB serializes a key or a condition value.
An ``EncryptedMapAttribute`` holds such fields inside a map. The attributes never encrypt or decrypt by
themselves: they cannot see the item a ciphertext belongs to, so the model does it (``_model.py``).
"""

from __future__ import annotations

import copy
import json
import unicodedata
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional, Tuple, TypeVar, Union, cast, overload

from pynamodb.attributes import Attribute, ListAttribute, MapAttribute
from pynamodb.constants import BINARY, STRING
from pynamodb.expressions.condition import Comparison, In
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action
from typing_extensions import Literal

from . import _pynamodb
from ._codecs import Codec, ValueRejected, WrongType, canonical_number, codec_for, safe_reason
from .exceptions import ConfigurationError, EncryptionError, UnsupportedQueryError

if TYPE_CHECKING:
    from ._keyring import Keyring
    from ._model import EncryptedModel

_T = TypeVar("_T")
_V = TypeVar("_V")
_A = TypeVar("_A", bound=Attribute[Any])

SOURCE_SUFFIX = "__source"
HMAC_SUFFIX = "__hmac"
RESERVED_SUFFIXES = (SOURCE_SUFFIX, HMAC_SUFFIX)


class HmacDigest(str):
    """A stored HMAC, as read from ``x__hmac``.

    Key and condition values of this type are sent as they are; any other value is hashed first. Wrap
    a digest obtained elsewhere (boto3, the AWS CLI) in it to use it as a key: ``User.get(HmacDigest(d))``.
    """

    __slots__ = ()


_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "lower": str.lower,
    "nfc": lambda text: unicodedata.normalize("NFC", text),
    "trim": str.strip,
}


@dataclass(frozen=True)
class Equality:
    """How an equality index hashes values, for ``EncryptedAttribute(str, equality=Equality(...))``.

    :param normalize: applied to a ``str`` value before it is hashed, in order: ``"lower"``,
        ``"nfc"`` (Unicode NFC), ``"trim"``, or any function of ``str`` to ``str``. Lookups then match
        every value with the same normalized form (``"Alice@Example.com "`` finds ``"alice@example.com"``),
        while ``x__source`` keeps the exact value. Widening matches is what it leaks: see the docs.
    :param prefix: written before the stored HMAC (``"EMAIL#"``), for single-table designs that share one
        key attribute among entity types.
    :param hmac_bits: store only this many bits of the HMAC (a multiple of 8, at most 128). Different
        values then collide on purpose, which blunts frequency analysis of low-cardinality attributes;
        reads (query, scan, count, index queries) remove the false positives after decrypting, so they
        return exact matches. Such an HMAC cannot be a table key, nor guard a write.
    """

    normalize: Union[str, Callable[[str], str], Tuple[Union[str, Callable[[str], str]], ...]] = ()
    prefix: str = ""
    hmac_bits: int = 128

    def __post_init__(self) -> None:
        if not isinstance(self.hmac_bits, int) or self.hmac_bits % 8 or not 8 <= self.hmac_bits <= 128:
            raise ConfigurationError("Equality(hmac_bits=...) is a multiple of 8 from 8 to 128")
        if not isinstance(self.prefix, str) or not (self.prefix.isascii() and self.prefix.isprintable()):
            raise ConfigurationError("Equality(prefix=...) is printable ASCII")

    def normalizers(self) -> Tuple[Callable[[str], str], ...]:
        steps = self.normalize if isinstance(self.normalize, tuple) else (self.normalize,)
        resolved = []
        for step in steps:
            if callable(step):
                resolved.append(step)
            elif step in _NORMALIZERS:
                resolved.append(_NORMALIZERS[step])
            else:
                raise ConfigurationError(f"Equality: unknown normalization {step!r} (lower, nfc, trim or a function)")
        return tuple(resolved)


class _EqualityOnly:
    """Rejects, when the expression is built, every operator that cannot work on ciphertext or HMACs."""

    def _unsupported(self, operation: str) -> NoReturn:
        raise UnsupportedQueryError(
            f"{self._describe()}: {operation} is not supported on an encrypted attribute; "
            "use ==, !=, is_in() (with equality=True), exists() or does_not_exist()"
        )

    def _describe(self) -> str:
        raise NotImplementedError

    def __lt__(self, other: Any) -> NoReturn:
        self._unsupported("<")

    def __le__(self, other: Any) -> NoReturn:
        self._unsupported("<=")

    def __gt__(self, other: Any) -> NoReturn:
        self._unsupported(">")

    def __ge__(self, other: Any) -> NoReturn:
        self._unsupported(">=")

    def __getitem__(self, item: Any) -> NoReturn:
        self._unsupported("indexing")

    def between(self, lower: Any, upper: Any) -> NoReturn:
        self._unsupported("between()")

    def startswith(self, prefix: str) -> NoReturn:
        self._unsupported("startswith()")

    def contains(self, item: Any) -> NoReturn:
        self._unsupported("contains()")

    def is_type(self) -> NoReturn:
        self._unsupported("is_type()")

    def __add__(self, other: Any) -> NoReturn:
        self._unsupported("+")

    def __radd__(self, other: Any) -> NoReturn:
        self._unsupported("+")

    def __sub__(self, other: Any) -> NoReturn:
        self._unsupported("-")

    def __rsub__(self, other: Any) -> NoReturn:
        self._unsupported("-")

    def __or__(self, other: Any) -> NoReturn:
        self._unsupported("| (if_not_exists)")

    def append(self, other: Any) -> NoReturn:
        self._unsupported("append()")

    def prepend(self, other: Any) -> NoReturn:
        self._unsupported("prepend()")

    def add(self, *values: Any) -> NoReturn:
        self._unsupported("add()")

    def delete(self, *values: Any) -> NoReturn:
        self._unsupported("delete()")


class EncryptedAttribute(_EqualityOnly, Attribute[_T]):
    """An attribute whose value is encrypted on the client and stored as ``<name>__source``.

    :param type_: the Python type of the value (``str, bytes, int, float, Decimal, bool, datetime, date,
        dict, list, set``; dict and list as JSON, set of str) or a PynamoDB ``Attribute`` instance whose
        ``serialize``/``deserialize`` encode the plaintext.
    :param equality: also store ``<name>__hmac``, a keyed HMAC of the value, so that ``==``, ``!=``,
        ``is_in``, keys and indexes can find the item by its plaintext. The HMAC reveals which items
        hold equal values (and how often a value occurs), never the value. Not for ``float`` (binary
        floats do not compare exactly): use ``Decimal``.
    :param hash_key: make ``<name>__hmac`` the table's hash key (needs ``equality=True``).
    :param range_key: make ``<name>__hmac`` the table's range key (needs ``equality=True``).
    :param null: whether the value may be missing (``None`` stores neither attribute).
    :param attr_name: the stored base name (default: the Python name).
    :param hmac_scope: share HMACs with other attributes or tables that use the same scope name. By
        default each (logical table, attribute) has its own HMAC key, so equal values in two attributes
        or tables do not match.
    :param identity_bound: bind each value to the claims of the :func:`lock_context` it is written in;
        reading it needs the same claims. Writing or reading it outside a lock context raises.
    :raises ConfigurationError: at class creation, for an unsupported type or an inconsistent option.

    Conditions: ``==``, ``!=`` and ``is_in`` compare the HMAC; ``exists()``/``does_not_exist()`` test
    ``__source``; anything else raises :class:`UnsupportedQueryError` when the expression is built.
    Updates: ``set(v)`` writes both stored attributes, ``remove()`` (or ``set(None)``) removes both.
    """

    attr_type = BINARY

    @overload
    def __init__(
        self: EncryptedAttribute[Optional[_V]],
        type_: type[_V] | Attribute[_V],
        *,
        equality: bool | Equality = ...,
        hash_key: bool = ...,
        range_key: bool = ...,
        null: Literal[True],
        attr_name: str | None = ...,
        hmac_scope: str | None = ...,
        identity_bound: bool = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        type_: type[_T] | Attribute[_T] = ...,
        *,
        equality: bool | Equality = ...,
        hash_key: bool = ...,
        range_key: bool = ...,
        null: Literal[False] | None = ...,
        attr_name: str | None = ...,
        hmac_scope: str | None = ...,
        identity_bound: bool = ...,
    ) -> None: ...

    def __init__(
        self,
        type_: Any = str,
        *,
        equality: bool | Equality = False,
        hash_key: bool = False,
        range_key: bool = False,
        null: bool | None = None,
        attr_name: str | None = None,
        hmac_scope: str | None = None,
        identity_bound: bool = False,
    ) -> None:
        super().__init__(hash_key=hash_key, range_key=range_key, null=null)
        try:
            self.codec: Codec[_T] = codec_for(type_)
        except TypeError as exc:
            raise ConfigurationError(f"EncryptedAttribute: {exc}") from None
        if hmac_scope is not None and not equality:
            raise ConfigurationError("EncryptedAttribute: hmac_scope needs equality=True")
        if equality and type_ is float:
            # 0.1 + 0.2 != 0.3 and NaN equals nothing: an HMAC would match what == does not, or miss.
            raise ConfigurationError(
                "EncryptedAttribute(float) cannot have equality=True: binary floats do not compare "
                "exactly; declare EncryptedAttribute(Decimal, equality=True) for numbers looked up by value"
            )
        if hmac_scope is not None and isinstance(equality, Equality) and equality.hmac_bits < 128:
            # A truncated HMAC is a prefix of the full one: sharing its key with an untruncated attribute
            # would reveal full-precision equality.
            raise ConfigurationError(
                "EncryptedAttribute: a truncated HMAC (hmac_bits < 128) cannot share an hmac_scope"
            )
        self.type_ = type_
        self.equality = bool(equality)
        self.equality_options = equality if isinstance(equality, Equality) else Equality()
        self._normalizers = self.equality_options.normalizers()
        if self._normalizers and type_ is not str:
            raise ConfigurationError("EncryptedAttribute: Equality(normalize=...) applies to str values only")
        self.identity_bound = identity_bound
        self.hmac_scope = hmac_scope
        self.declared_name = attr_name
        self.python_name = ""
        self.logical_name = attr_name or ""
        self.model: type[EncryptedModel] | None = None
        self.hmac_attribute: HmacAttribute | None = None
        self.stash_root: type[EncryptedModel] | None = None
        """For a field of an EncryptedMapAttribute: the model the map is declared on."""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.python_name = name
        self.logical_name = self.declared_name or name
        self.attr_name = self.logical_name + SOURCE_SUFFIX

    @overload
    def __get__(self: _A, instance: None, owner: Any) -> _A: ...

    @overload
    def __get__(self: _A, instance: Any, owner: Any) -> _T: ...

    def __get__(self, instance: Any, owner: Any) -> Any:
        return super().__get__(instance, owner)

    def __set__(self, instance: Any, value: Any) -> None:
        """Assign as the declared type does: ``EncryptedAttribute(MapAttribute())`` makes a dict a
        ``MapAttribute``, as PynamoDB's ``MapAttribute`` does."""
        coerce = self.codec.coerce
        super().__set__(instance, value if coerce is None or value is None else coerce(value))

    def hmac_input(self, value: Any, encoded: bytes | None = None) -> bytes:
        """The bytes hashed for ``value``: normalized as the equality index says, then canonical.

        :raises WrongType: if ``value`` is not of the declared type (the message omits it).
        :raises ValueRejected: if it cannot be encoded or has no equality form (a NaN, a number
            DynamoDB cannot store). A user normalizer may raise anything: callers name only its type.
        """
        if not self._normalizers:
            return self.codec.hmac_input(value, encoded)
        if not isinstance(value, str):
            raise WrongType(f"expected str, got {type(value).__name__}")
        for normalize in self._normalizers:
            value = normalize(value)
            if not isinstance(value, str):
                raise ValueRejected("a normalization function did not return a str")
        return self.codec.hmac_input(cast(_T, value))

    def hmac_text(self, digest: str) -> str:
        """The stored form of an HMAC: its ``Equality.prefix`` then the digest."""
        return self.equality_options.prefix + digest

    @property
    def hmac_size(self) -> int:
        """Bytes of HMAC stored (16 unless truncated)."""
        return self.equality_options.hmac_bits // 8

    @property
    def truncated(self) -> bool:
        return self.equality_options.hmac_bits < 128

    def _describe(self) -> str:
        root = self.model or self.stash_root
        owner = root.__name__ if root is not None else "<unbound>"
        return f"{owner}.{self.python_name if len(self.attr_path) == 1 else self.template_path()}"

    def template_path(self) -> str:
        """The attribute's path in the item, without list indices: ``email``, ``profile.address.street``.

        Ciphertexts and HMACs are bound to it.
        """
        return ".".join([*self.attr_path[:-1], self.logical_name])

    # The model encrypts and decrypts whole items (it knows the item's key; an attribute doesn't).
    # Anything else reaching these is a value outside its item, and must not be written or trusted.

    def serialize(self, value: Any) -> NoReturn:
        raise UnsupportedQueryError(
            f"{self._describe()} can only be encrypted as part of its item: compare it with == "
            "(equality=True), update it with .set() through Model.update(), or save the item"
        )

    def deserialize(self, value: Any) -> NoReturn:
        raise UnsupportedQueryError(f"{self._describe()} can only be decrypted as part of its item")

    # -- queries ------------------------------------------------------------------------------------

    def _equality(self, operation: str) -> Path:
        """The path of ``x__hmac``, whose values are hashed; UnsupportedQueryError without equality."""
        if not self.equality:
            raise UnsupportedQueryError(
                f"{self._describe()}: {operation} needs EncryptedAttribute(..., equality=True)"
            )
        if self.hmac_attribute is not None and len(self.attr_path) == 1:
            return Path(self.hmac_attribute)
        return Path([*self.attr_path[:-1], self.logical_name + HMAC_SUFFIX])

    def _hmac_value(self, value: Any) -> Any:
        if len(self.attr_path) == 1:
            return value  # the companion's own serialize hashes it
        return {STRING: self.hmac(value)}

    def __eq__(self, other: Any) -> Comparison:  # type: ignore[override]
        path = self._equality("==")
        if self.truncated:
            return ExactComparison(path, Value({STRING: self.hmac(other)}), self, (other,))
        return cast(Comparison, path == self._hmac_value(other))

    def __ne__(self, other: Any) -> Comparison:  # type: ignore[override]
        path = self._equality("!=")
        if self.truncated:
            self._unsupported("!= with a truncated HMAC (it would also drop values that collide)")
        return cast(Comparison, path != self._hmac_value(other))

    def is_in(self, *values: Any) -> In:
        path = self._equality("is_in()")
        if self.truncated:
            digests = [Value({STRING: self.hmac(value)}) for value in values]
            return ExactIn(path, digests, self, values)
        return path.is_in(*(self._hmac_value(value) for value in values))

    def hmac(self, value: _T) -> str:
        """The string stored in ``<name>__hmac`` for ``value``, for use with boto3 or the AWS CLI.

        :raises UnsupportedQueryError: if the attribute has no ``equality=True``.
        :raises EncryptionError: if ``value`` is not of the declared type.
        """
        self._equality("hmac()")
        if self.hmac_attribute is not None and len(self.attr_path) == 1:
            return self.hmac_attribute.serialize(value)
        root = self.stash_root
        if root is None:  # e.g. Model.items[0].field: PynamoDB builds list elements afresh, unrooted
            raise UnsupportedQueryError(
                f"{self._describe()}: conditions on encrypted fields of list elements are not supported"
            )
        return root._stash_runtime().by_path[self.template_path()].digest(value)

    # -- updates ------------------------------------------------------------------------------------

    def set(self, value: Any) -> Action:  # type: ignore[override]
        """An update action that encrypts ``value`` for the item it is applied to (None removes)."""
        return PendingEncryptedAction(self, value)

    def remove(self) -> Action:  # type: ignore[override]
        return PendingEncryptedAction(self, None)


filtering_reads: ContextVar[bool] = ContextVar("pynamodb_stash_filtering_reads", default=False)
"""Set while a read removes false positives, the only place a truncated-HMAC condition may be sent."""


class _Exact:
    """A condition on a truncated HMAC: it also matches other values, so only a read may send it, and
    that read checks each decrypted item against the plaintexts kept here."""

    field: EncryptedAttribute[Any]
    expected: Tuple[Any, ...]

    def serialize(self, placeholder_names: dict[str, str], expression_attribute_values: dict[str, str]) -> str:
        if not filtering_reads.get():
            raise UnsupportedQueryError(
                f"{self.field._describe()}: a truncated HMAC also matches other values; it can filter reads "
                "(query, scan, count), not guard a write"
            )
        return super().serialize(placeholder_names, expression_attribute_values)  # type: ignore[misc, no-any-return]


class ExactComparison(_Exact, Comparison):
    def __init__(self, path: Path, value: Any, field: EncryptedAttribute[Any], expected: Tuple[Any, ...]) -> None:
        super().__init__("=", path, value)  # type: ignore[no-untyped-call]
        self.field, self.expected = field, expected


class ExactIn(_Exact, In):
    def __init__(self, path: Path, values: Any, field: EncryptedAttribute[Any], expected: Tuple[Any, ...]) -> None:
        super().__init__(path, *values)  # type: ignore[no-untyped-call]
        self.field, self.expected = field, expected


class PendingEncryptedAction(Action):
    """``x.set(v)`` or ``x.remove()`` on an encrypted attribute or map, waiting for its item.

    ``EncryptedModel.update`` and ``TransactWrite.update`` expand it into actions on the stored
    attributes. Anywhere else it refuses to serialize, so nothing can write it unencrypted.
    """

    format_string = "{0} = <encrypted>"

    def __init__(self, attribute: EncryptedAttribute[Any] | EncryptedMapAttribute, value: Any) -> None:
        is_map_value = _pynamodb.is_map_value(value)
        if isinstance(value, (Attribute, Path, Action)) and not is_map_value:
            raise UnsupportedQueryError(
                f"{attribute._describe()}: set() from another attribute or expression is not supported"
            )
        hmac_attribute = getattr(attribute, "hmac_attribute", None)
        if hmac_attribute is not None and (hmac_attribute.is_hash_key or hmac_attribute.is_range_key):
            raise UnsupportedQueryError(
                f"{attribute._describe()} is part of the table's primary key and cannot be updated"
            )
        super().__init__(Path(attribute.attr_path))
        self.attribute = attribute
        self.value = value

    def serialize(self, placeholder_names: dict[str, str], expression_attribute_values: dict[str, str]) -> str:
        raise UnsupportedQueryError(
            f"{self.attribute._describe()}: encrypted update actions must go through the model's update() "
            "or TransactWrite.update()"
        )

    def __repr__(self) -> str:
        return f"{self.attribute._describe()} = <encrypted>" if self.value is not None else (
            f"REMOVE {self.attribute._describe()}"
        )


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
        self.field: EncryptedAttribute[Any] | None = None
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

    def bind(self, field: EncryptedAttribute[Any], *, where: str) -> None:
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

    def bind_shared(self, field: EncryptedAttribute[Any], scope: tuple[object, ...], *, where: str) -> None:
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
            plaintext = instance.attribute_values.get(self.field.python_name)
            if plaintext is not None:  # under the item's own keyring (its tenant's, with TenantKeyrings)
                runtime = instance._stash_runtime(instance._stash_instance_keyring(EncryptionError))
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


class EncryptedMapAttribute(MapAttribute[str, Any]):
    """A typed map whose :class:`EncryptedAttribute` fields are encrypted one by one.

    Declare fields as on a PynamoDB ``MapAttribute``; ``EncryptedAttribute`` fields are encrypted,
    others stay plain, at any depth (a map in a map) and inside ``ListAttribute(of=...)``. The stored
    value keeps its nesting (``profile -> address -> street__source``), and each ciphertext is bound to
    its full path, list positions included, as well as to the item: a nested value moved to another
    attribute, list element or item fails to decrypt.

    An ``equality=True`` field gets ``<name>__hmac`` beside it, usable in conditions and filters
    (``User.profile.ssn == "123-45-6789"``); DynamoDB cannot index nested attributes, so a nested field
    cannot be a table or index key.

    :raises ConfigurationError: at class creation, for a nested key or an unsupported declaration.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            where = f"{cls.__name__}.{name}"
            if isinstance(value, Attribute) and not isinstance(value, EncryptedAttribute):
                element = getattr(value, "element_type", None)
                nested_list = isinstance(element, type) and issubclass(element, EncryptedMapAttribute)
                if isinstance(value, EncryptedMapAttribute) or nested_list:
                    check_plain_name(where, name, value)
                    check_path_name(where, value.attr_name)
                else:
                    check_plain_attribute(where, name, value)
            if not isinstance(value, EncryptedAttribute):
                continue
            if value.is_hash_key or value.is_range_key:
                raise ConfigurationError(f"{where}: DynamoDB cannot use a nested attribute as a key")
            if value.truncated:
                raise ConfigurationError(f"{where}: truncated HMACs are for top-level attributes")
            check_encrypted_name(where, value.logical_name)
            if value.equality:
                companion_name = name + HMAC_SUFFIX
                if companion_name in vars(cls):
                    raise ConfigurationError(f"{cls.__name__}.{companion_name} clashes with the HMAC of {where}")
                companion = HmacAttribute(of=name, attr_name=value.logical_name + HMAC_SUFFIX)
                companion.is_companion = True
                companion.field = value
                value.hmac_attribute = companion
                setattr(cls, companion_name, companion)
                companion.__set_name__(cls, companion_name)

    def __set_name__(self, owner: type[Any], name: str) -> None:
        super().__set_name__(owner, name)
        if hasattr(owner, "_stash_runtime"):
            _root_local_copies(self, owner)

    def _describe(self) -> str:
        root = getattr(self, "_stash_root", None)
        path = getattr(self, "attr_path", None) or [type(self).__name__]  # a map value has no path
        return f"{root.__name__ if root else '<unbound>'}.{'.'.join(str(part) for part in path)}"

    def __repr__(self) -> str:
        return masked_repr(self)

    # The model encrypts whole items; a map value reaching these is outside its item.
    def serialize(self, values: Any, *, null_check: bool = True) -> NoReturn:
        raise UnsupportedQueryError(f"{self._describe()} can only be encrypted as part of its item")

    def deserialize(self, values: Any) -> NoReturn:
        raise UnsupportedQueryError(f"{self._describe()} can only be decrypted as part of its item")

    def set(self, value: Any) -> Action:  # type: ignore[override]
        """An update action that encrypts the whole map for the item it is applied to (None removes)."""
        return PendingEncryptedAction(self, value)

    def remove(self) -> Action:  # type: ignore[override]
        return PendingEncryptedAction(self, None)


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

    def __init__(
        self, *parts: str, hash_key: bool = False, range_key: bool = False, attr_name: str | None = None,
        prefix: str = "",
    ) -> None:
        super().__init__(hash_key=hash_key, range_key=range_key, attr_name=attr_name)
        if len(parts) < 2 or not all(isinstance(part, str) and part for part in parts):
            raise ConfigurationError("CompoundHmacAttribute takes the names of two or more attributes")
        self.parts = parts
        self.prefix = prefix
        self.model: type[EncryptedModel] | None = None

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
                if isinstance(attribute, EncryptedAttribute):
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
            keyring = instance._stash_runtime(instance._stash_instance_keyring(EncryptionError)).keyring
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


def masked_repr(container: Any) -> str:
    """``Name(a=1, secret=<encrypted>, secret__hmac=<hmac>)``: a model's or map's repr (PynamoDB's shows
    every value) with encrypted values and HMACs masked, at any depth, so logging an item leaks neither."""
    attributes = type(container).get_attributes()
    shown = []
    for name, value in container.attribute_values.items():
        attribute = attributes.get(name)
        if isinstance(attribute, EncryptedAttribute):
            text = "<encrypted>"
        elif isinstance(attribute, HmacAttribute):
            text = "<hmac>"
        else:
            text = repr(value)
        shown.append(f"{name}={text}")
    return f"{type(container).__name__}({', '.join(shown)})"


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_bytes_as_text).encode()


def _bytes_as_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return repr(sorted(value))
    raise TypeError(type(value).__name__)


def check_encrypted_name(where: str, logical: str) -> None:
    """:raises ConfigurationError: if an encrypted attribute's stored base name is reserved or holds
        a path separator (paths are bound into its ciphertexts)."""
    if logical.endswith(RESERVED_SUFFIXES):
        raise ConfigurationError(f"{where}: names ending in __source or __hmac are reserved")
    if any(mark in logical for mark in ".[]"):
        raise ConfigurationError(f"{where}: an encrypted attribute's name has no '.', '[' or ']'")


def check_path_name(where: str, stored_name: str) -> None:
    """:raises ConfigurationError: if the stored name of an encrypted map (or list of them) holds a path
        separator: the paths of its fields are bound into their ciphertexts, and must be spelled one way."""
    if any(mark in stored_name for mark in ".[]"):
        raise ConfigurationError(f"{where}: an encrypted map's name has no '.', '[' or ']'")


def check_plain_name(where: str, name: str, attribute: Attribute[Any]) -> None:
    """:raises ConfigurationError: if a plain attribute's Python or stored name ends in a reserved suffix."""
    if name.endswith(RESERVED_SUFFIXES) or attribute.attr_name.endswith(RESERVED_SUFFIXES):
        raise ConfigurationError(f"{where}: names ending in __source or __hmac are reserved")


def check_plain_attribute(where: str, name: str, attribute: Attribute[Any]) -> None:
    """:raises ConfigurationError: as :func:`check_plain_name`, or if a plain map or list declares encrypted
        fields, which it would store without their item."""
    check_plain_name(where, name, attribute)
    if contains_encrypted(attribute):
        raise ConfigurationError(
            f"{where}: encrypted fields inside a plain {type(attribute).__name__} would be stored without "
            "their item; nested encryption needs EncryptedMapAttribute"
        )


def contains_encrypted(attribute: Any, depth: int = 0) -> bool:
    """Whether a plain map or list attribute holds encrypted fields, which it would store unbound."""
    if isinstance(attribute, (EncryptedAttribute, EncryptedMapAttribute)):
        return True
    if depth > 32:
        return False
    if isinstance(attribute, MapAttribute):
        return any(contains_encrypted(a, depth + 1) for a in type(attribute).get_attributes().values())
    if isinstance(attribute, ListAttribute) and isinstance(attribute.element_type, type):
        element = attribute.element_type
        if issubclass(element, (EncryptedAttribute, EncryptedMapAttribute)):
            return True
        if issubclass(element, MapAttribute):
            return any(contains_encrypted(a, depth + 1) for a in element.get_attributes().values())
    return False


def _root_local_copies(attribute: MapAttribute[Any, Any], root: type[Any]) -> None:
    """Tell the expression copies of a model's map attribute (``User.profile.ssn``) their model."""
    attribute._stash_root = root
    for name in type(attribute).get_attributes():
        local = attribute.__dict__.get(name)
        if isinstance(local, EncryptedAttribute):
            local.stash_root = root
        elif isinstance(local, MapAttribute):
            _root_local_copies(local, root)


def _refuse_size_of_encrypted_attributes() -> None:
    """Make ``size(x)`` raise at build time for encrypted attributes and their HMACs.

    ``size()`` is the one PynamoDB expression function that does not go through the attribute, and on
    ``x__source`` it would compare the ciphertext's length: a silently wrong answer.
    """

    def check(path: Any) -> None:
        attribute = path.attribute if isinstance(path, Path) else path
        if isinstance(attribute, _EqualityOnly):
            attribute._unsupported("size()")

    _pynamodb.wrap_size_operand(check)


_refuse_size_of_encrypted_attributes()
