"""The encrypted declarations: ``EncryptedAttribute``, its ``Equality`` options, ``EncryptedMapAttribute``,
the checks on the names they are stored under, and the masked repr of models and maps.

An ``EncryptedAttribute`` ``x`` is stored as ``x__source`` (binary ciphertext). With ``equality=True``
the model also declares a companion ``HmacAttribute`` stored as ``x__hmac`` (``_hmac_attributes``): a
real PynamoDB attribute, so table keys, index keys, conditions and projections on it work through
PynamoDB's own code, and its ``serialize`` turns plaintext into the HMAC wherever PynamoDB serializes a
key or a condition value. An ``EncryptedMapAttribute`` holds such fields inside a map. The attributes
never encrypt or decrypt by themselves: they cannot see the item a ciphertext belongs to, so the model
does it.

Imports go one way: ``_protocols`` <- ``_expressions`` <- ``_hmac_attributes`` <- this module. The model
is reached through :class:`~._protocols.StashModel`, never imported.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Optional, Tuple, TypeVar, Union, cast, overload

from pynamodb.attributes import Attribute, ListAttribute, MapAttribute
from pynamodb.constants import BINARY, STRING
from pynamodb.expressions.condition import Comparison, In
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action
from typing_extensions import Literal

from ._codecs import Codec, ValueRejected, WrongType, codec_for
from ._expressions import ExactComparison as ExactComparison
from ._expressions import ExactIn as ExactIn
from ._expressions import PendingEncryptedAction as PendingEncryptedAction
from ._expressions import _EqualityOnly
from ._expressions import filtering_reads as filtering_reads
from ._hmac_attributes import HMAC_SUFFIX as HMAC_SUFFIX
from ._hmac_attributes import CompoundHmacAttribute as CompoundHmacAttribute
from ._hmac_attributes import HashedPart
from ._hmac_attributes import HmacAttribute as HmacAttribute
from ._hmac_attributes import HmacDigest as HmacDigest
from ._protocols import StashModel
from .exceptions import ConfigurationError, UnsupportedQueryError

# The names imported "as" themselves moved to _expressions and _hmac_attributes: the model layer still
# imports them from here, until it imports them from there.

_T = TypeVar("_T")
_V = TypeVar("_V")
_A = TypeVar("_A", bound=Attribute[Any])

SOURCE_SUFFIX = "__source"
RESERVED_SUFFIXES = (SOURCE_SUFFIX, HMAC_SUFFIX)


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

    __module__ = "pynamodb_stash"

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


class EncryptedAttribute(_EqualityOnly, HashedPart, Attribute[_T]):
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

    __module__ = "pynamodb_stash"
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
        self.model: type[StashModel] | None = None
        self.hmac_attribute: HmacAttribute | None = None
        self.stash_root: type[StashModel] | None = None
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

    @property
    def hashes_encoding(self) -> bool:
        """Whether :meth:`hmac_input` is the typed plaintext itself (no normalizer, no canonical form)."""
        return not self._normalizers and self.codec.canonical is None

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

    def _compared(self, value: Any, operation: str) -> Any:
        """``value``, refused if the attribute stores it as no value (a wrapped PynamoDB set attribute's
        empty set), which no stored HMAC can equal.

        :raises UnsupportedQueryError: for such a value.
        """
        absent = self.codec.absent
        if absent is not None and absent(value):
            raise UnsupportedQueryError(
                f"{self._describe()}: {operation} with a value stored as no value (an empty set) matches "
                "nothing stored; use does_not_exist()"
            )
        return value

    def __eq__(self, other: Any) -> Comparison:  # type: ignore[override]
        path = self._equality("==")
        other = self._compared(other, "==")
        if self.truncated:
            return ExactComparison(path, Value({STRING: self.hmac(other)}), self, (other,))
        return cast(Comparison, path == self._hmac_value(other))

    def __ne__(self, other: Any) -> Comparison:  # type: ignore[override]
        path = self._equality("!=")
        other = self._compared(other, "!=")
        if self.truncated:
            self._unsupported("!= with a truncated HMAC (it would also drop values that collide)")
        return cast(Comparison, path != self._hmac_value(other))

    def is_in(self, *values: Any) -> In:
        path = self._equality("is_in()")
        values = tuple(self._compared(value, "is_in()") for value in values)
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

    __module__ = "pynamodb_stash"

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


