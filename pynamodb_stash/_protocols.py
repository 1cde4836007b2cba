"""The interfaces the attribute declarations rely on, written down instead of imported.

The attributes reach the model they are declared on (to hash a key or a condition value under its
keyring and logical table) and the expressions reach the attribute that built them (to name it in an
error). Importing those classes would make the declarations depend on the layers built on them, so each
side states here what it uses of the other, and nothing more: :class:`StashModel` is every member of
``EncryptedModel`` that ``_attributes`` and ``_hmac_attributes`` touch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Protocol

if TYPE_CHECKING:
    from pynamodb.attributes import Attribute
    from pynamodb.expressions.condition import Comparison, In

    from ._keyring import Keyring
    from .exceptions import StashError


class FieldHasher(Protocol):
    """One encrypted field bound to a keyring and a table: what turns a plaintext into its stored HMAC."""

    def digest(self, value: Any) -> str:
        """The HMAC stored for ``value``. :raises EncryptionError: if ``value`` is not of the declared type."""
        ...


class StashRuntime(Protocol):
    """A model's fields bound to one keyring, as ``StashModel._stash_runtime`` returns them."""

    @property
    def keyring(self) -> Keyring: ...

    @property
    def by_path(self) -> Mapping[str, FieldHasher]:
        """Every encrypted field by its template path (``email``, ``profile.address.street``)."""
        ...


class StashModel(Protocol):
    """What the attributes use of the model class they are declared on (``EncryptedModel``).

    The ``_stash_*`` members are classmethods unless noted, so they are called on the class (a key or a
    condition value has no item) as well as on an instance (an item's own tenant keyring).
    """

    attribute_values: Dict[str, Any]
    """An instance's values by Python name (PynamoDB's)."""

    @classmethod
    def get_attributes(cls) -> Dict[str, Attribute[Any]]: ...

    @classmethod
    def _stash_keyring(cls) -> Keyring:
        """The current keyring (with ``TenantKeyrings``, the tenant's set with ``tenant()``)."""
        ...

    @classmethod
    def _stash_table(cls) -> str:
        """The logical table name HMAC keys and associated data are bound to."""
        ...

    @classmethod
    def _stash_runtime(cls, keyring: Optional[Keyring] = None) -> StashRuntime:
        """The fields bound to ``keyring`` (default: the current one)."""
        ...

    def _stash_instance_keyring(self, error: type[StashError]) -> Optional[Keyring]:
        """An instance's own keyring (its tenant's), or None for the current one; raises ``error``."""
        ...


class Described(Protocol):
    """An attribute an expression belongs to: where it is, and how an error names it."""

    attr_path: List[str]

    def _describe(self) -> str: ...


class HashedField(Protocol):
    """What an ``HmacAttribute`` uses of the ``EncryptedAttribute`` whose HMAC it stores."""

    python_name: str
    logical_name: str

    @property
    def model(self) -> type[StashModel] | None:
        """The model the field is declared on; None for a field of an ``EncryptedMapAttribute``."""
        ...

    @property
    def truncated(self) -> bool: ...

    def _describe(self) -> str: ...

    def __eq__(self, other: Any) -> Comparison: ...  # type: ignore[override]

    def __ne__(self, other: Any) -> Comparison: ...  # type: ignore[override]

    def is_in(self, *values: Any) -> In: ...
