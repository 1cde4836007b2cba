"""The expressions of encrypted attributes: which operators they refuse, and the conditions and update
actions they build that need their item or a checking read.

Ciphertexts and HMACs support equality only: :class:`_EqualityOnly` makes every other operator raise
when the expression is built, and ``size()`` too. A comparison on a truncated HMAC also matches other
values, so it is an :class:`ExactComparison` or :class:`ExactIn` that only a read removing the false
positives may send (:data:`filtering_reads`). ``set()``/``remove()`` on an encrypted attribute make a
:class:`PendingEncryptedAction`, which the model expands for its item. The attribute classes are not
imported here: an expression holds the attribute that built it through :class:`~._protocols.Described`.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Generic, NoReturn, Tuple, TypeVar

from pynamodb.attributes import Attribute
from pynamodb.expressions.condition import Comparison, In
from pynamodb.expressions.operand import Path
from pynamodb.expressions.update import Action

from . import _pynamodb
from ._protocols import Described
from .exceptions import UnsupportedQueryError

_F = TypeVar("_F", bound=Described)


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


filtering_reads: ContextVar[bool] = ContextVar("pynamodb_stash_filtering_reads", default=False)
"""Set while a read removes false positives, the only place a truncated-HMAC condition may be sent."""


class _Exact(Generic[_F]):
    """A condition on a truncated HMAC: it also matches other values, so only a read may send it, and
    that read checks each decrypted item against the plaintexts kept here."""

    field: _F
    expected: Tuple[Any, ...]

    def serialize(self, placeholder_names: dict[str, str], expression_attribute_values: dict[str, str]) -> str:
        if not filtering_reads.get():
            raise UnsupportedQueryError(
                f"{self.field._describe()}: a truncated HMAC also matches other values; it can filter reads "
                "(query, scan, count), not guard a write"
            )
        return super().serialize(placeholder_names, expression_attribute_values)  # type: ignore[misc, no-any-return]


class ExactComparison(_Exact[_F], Comparison):
    def __init__(self, path: Path, value: Any, field: _F, expected: Tuple[Any, ...]) -> None:
        super().__init__("=", path, value)  # type: ignore[no-untyped-call]
        self.field, self.expected = field, expected


class ExactIn(_Exact[_F], In):
    def __init__(self, path: Path, values: Any, field: _F, expected: Tuple[Any, ...]) -> None:
        super().__init__(path, *values)  # type: ignore[no-untyped-call]
        self.field, self.expected = field, expected


class PendingEncryptedAction(Action, Generic[_F]):
    """``x.set(v)`` or ``x.remove()`` on an encrypted attribute or map, waiting for its item.

    ``EncryptedModel.update`` and ``TransactWrite.update`` expand it into actions on the stored
    attributes. Anywhere else it refuses to serialize, so nothing can write it unencrypted.
    """

    format_string = "{0} = <encrypted>"

    def __init__(self, attribute: _F, value: Any) -> None:
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
