"""``EncryptedAttribute`` and its equality companion ``HmacAttribute``.

An ``EncryptedAttribute`` ``x`` is stored as ``x__source`` (binary ciphertext). With ``equality=True``
the model also declares a companion ``HmacAttribute`` stored as ``x__hmac``: a real PynamoDB attribute,
so table keys, index keys, conditions and projections on it work through PynamoDB's own code, and
its ``serialize`` turns plaintext into the HMAC wherever PynamoDB serializes a key or a condition value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast, overload

from pynamodb.attributes import Attribute
from pynamodb.constants import BINARY, STRING
from pynamodb.expressions.condition import Comparison, In
from pynamodb.expressions.operand import Path, _Size
from pynamodb.expressions.update import Action

from ._codecs import Codec, codec_for
from .exceptions import ConfigurationError, EncryptionError, UnsupportedQueryError

if TYPE_CHECKING:
    from ._model import EncryptedModel

_T = TypeVar("_T")
_A = TypeVar("_A", bound=Attribute[Any])

SOURCE_SUFFIX = "__source"
HMAC_SUFFIX = "__hmac"


class HmacDigest(str):
    """A stored HMAC, as read from ``x__hmac``.

    Key and condition values of this type are sent as they are; any other value is hashed first. Wrap
    a digest obtained elsewhere (boto3, the AWS CLI) in it to use it as a key: ``User.get(HmacDigest(d))``.
    """

    __slots__ = ()


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
        hold equal values (and how often a value occurs), never the value.
    :param hash_key: make ``<name>__hmac`` the table's hash key (needs ``equality=True``).
    :param range_key: make ``<name>__hmac`` the table's range key (needs ``equality=True``).
    :param null: whether the value may be missing (``None`` stores neither attribute).
    :param attr_name: the stored base name (default: the Python name).
    :param hmac_scope: share HMACs with other attributes or tables that use the same scope name. By
        default each (logical table, attribute) has its own HMAC key, so equal values in two attributes
        or tables do not match.
    :raises ConfigurationError: at class creation, for an unsupported type or an inconsistent option.

    Conditions: ``==``, ``!=`` and ``is_in`` compare the HMAC; ``exists()``/``does_not_exist()`` test
    ``__source``; anything else raises :class:`UnsupportedQueryError` when the expression is built.
    Updates: ``set(v)`` writes both stored attributes, ``remove()`` (or ``set(None)``) removes both.
    """

    attr_type = BINARY

    def __init__(
        self,
        type_: type[_T] | Attribute[_T] = str,  # type: ignore[assignment]
        *,
        equality: bool = False,
        hash_key: bool = False,
        range_key: bool = False,
        null: bool | None = None,
        attr_name: str | None = None,
        hmac_scope: str | None = None,
    ) -> None:
        super().__init__(hash_key=hash_key, range_key=range_key, null=null)
        try:
            self.codec: Codec[_T] = codec_for(type_)
        except TypeError as exc:
            raise ConfigurationError(f"EncryptedAttribute: {exc}") from None
        if hmac_scope is not None and not equality:
            raise ConfigurationError("EncryptedAttribute: hmac_scope needs equality=True")
        self.type_ = type_
        self.equality = equality
        self.hmac_scope = hmac_scope
        self.declared_name = attr_name
        self.python_name = ""
        self.logical_name = attr_name or ""
        self.model: type[EncryptedModel] | None = None
        self.hmac_attribute: HmacAttribute | None = None

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

    def _describe(self) -> str:
        owner = self.model.__name__ if self.model is not None else "<unbound>"
        return f"{owner}.{self.python_name}"

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

    def _equality(self, operation: str) -> HmacAttribute:
        if self.hmac_attribute is None:
            raise UnsupportedQueryError(
                f"{self._describe()}: {operation} needs EncryptedAttribute(..., equality=True)"
            )
        return self.hmac_attribute

    def __eq__(self, other: Any) -> Comparison:  # type: ignore[override]
        return cast(Comparison, self._equality("==") == other)

    def __ne__(self, other: Any) -> Comparison:  # type: ignore[override]
        return cast(Comparison, self._equality("!=") != other)

    def is_in(self, *values: Any) -> In:
        return self._equality("is_in()").is_in(*values)

    def hmac(self, value: _T) -> str:
        """The string stored in ``<name>__hmac`` for ``value``, for use with boto3 or the AWS CLI.

        :raises UnsupportedQueryError: if the attribute has no ``equality=True``.
        :raises EncryptionError: if ``value`` is not of the declared type.
        """
        return self._equality("hmac()").serialize(value)

    # -- updates ------------------------------------------------------------------------------------

    def set(self, value: Any) -> Action:  # type: ignore[override]
        """An update action that encrypts ``value`` for the item it is applied to (None removes)."""
        return PendingEncryptedAction(self, value)

    def remove(self) -> Action:  # type: ignore[override]
        return PendingEncryptedAction(self, None)


class PendingEncryptedAction(Action):
    """``x.set(v)`` or ``x.remove()`` on an encrypted attribute, waiting for the item it applies to.

    ``EncryptedModel.update`` and ``TransactWrite.update`` expand it into actions on ``x__source`` and
    ``x__hmac``. Anywhere else it refuses to serialize, so nothing can write it unencrypted.
    """

    format_string = "{0} = <encrypted>"

    def __init__(self, attribute: EncryptedAttribute[Any], value: Any) -> None:
        if value is not None and isinstance(value, (Attribute, Path, Action)):
            attribute._unsupported("set() from another attribute or expression")
        hmac_attribute = attribute.hmac_attribute
        if hmac_attribute is not None and (hmac_attribute.is_hash_key or hmac_attribute.is_range_key):
            raise UnsupportedQueryError(
                f"{attribute._describe()} is part of the table's primary key and cannot be updated"
            )
        super().__init__(Path(attribute))
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

    def bind_shared(self, field: EncryptedAttribute[Any], scope: tuple[object, ...], *, where: str) -> None:
        """Bind an index class's own attribute, used in conditions such as ``MyIndex.email == v``.

        Models on different tables or keyrings may share an index class; its attribute then cannot know
        which HMAC is meant, and refuses to serialize rather than hash for the wrong one.
        """
        if self.field is None:
            self.bind(field, where=where)
            self._shared_scope = scope
        elif getattr(self, "_shared_scope", scope) != scope:
            self._ambiguous = True

    def _describe(self) -> str:
        return self.field._describe() + HMAC_SUFFIX if self.field is not None else f"HmacAttribute({self.of!r})"

    def serialize(self, value: Any) -> str:
        if isinstance(value, HmacDigest):
            return str(value)
        if getattr(self, "_ambiguous", False):
            raise ConfigurationError(
                f"{self._describe()}: this index class is shared by models with different HMAC keys; "
                "build the condition on the model's attribute (Model.attr == value) instead"
            )
        field = self.field
        if field is None or field.model is None:
            raise ConfigurationError(f"{self._describe()} is not bound to an encrypted attribute of a model")
        model = field.model
        try:
            hashed = field.codec.hmac_input(value)
        except (TypeError, ValueError) as exc:
            raise EncryptionError(f"{model.__name__}.{field.python_name}: {exc}") from None
        return model._stash_hasher(field).digest(hashed)

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
        if instance is not None and self.is_companion and self.field is not None:
            plaintext = instance.attribute_values.get(self.field.python_name)
            if plaintext is not None:
                return HmacDigest(self.serialize(plaintext))
        return super().__get__(instance, owner)

    def __set__(self, instance: Any, value: Any) -> None:
        if self.is_companion and self.field is not None and value is not None and not isinstance(value, HmacDigest):
            setattr(instance, self.field.python_name, value)
            return
        super().__set__(instance, value)

    def set(self, value: Any) -> NoReturn:
        self._unsupported("set() on an HMAC (set the encrypted attribute instead)")

    def remove(self) -> NoReturn:
        self._unsupported("remove() on an HMAC (remove the encrypted attribute instead)")


def _refuse_size_of_encrypted_attributes() -> None:
    """Make ``size(x)`` raise at build time for encrypted attributes and their HMACs.

    ``size()`` is the one PynamoDB expression function that does not go through the attribute, and on
    ``x__source`` it would compare the ciphertext's length: a silently wrong answer.
    """
    build = _Size.__init__

    def __init__(self: _Size, path: Any) -> None:
        attribute = path.attribute if isinstance(path, Path) else path
        if isinstance(attribute, _EqualityOnly):
            attribute._unsupported("size()")
        build(self, path)

    _Size.__init__ = __init__  # type: ignore[method-assign]


_refuse_size_of_encrypted_attributes()
