"""Which keyring, logical table, HMAC key scope and audit scope a model (or one of its items) uses: the one
resolver every path calls, for an instance, a stored item and the current context (tenants)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from pynamodb.attributes import Attribute, MapAttribute
from pynamodb.constants import NULL

from . import _audit
from ._attributes import EncryptedAttribute, HmacAttribute
from ._keyring import Keyring, TenantKeyrings, current_tenant, resolve_keyring
from ._layout import logical_table
from .exceptions import ConfigurationError, DecryptionError, StashError

if TYPE_CHECKING:
    from ._model import EncryptedModel


def keyring_of(cls: type[EncryptedModel]) -> Keyring:
    """The model's keyring: ``Meta.keyring``, else the configured one, else ``$PYNAMODB_STASH_KEYRING``.

    :raises ConfigurationError: if there is none, or ``Meta.keyring`` is not a keyring.
    """
    return resolve_keyring(getattr(cls.Meta, "keyring", None), cls.__name__)


def table_of(cls: type[EncryptedModel]) -> str:
    """The logical table name bound into the model's ciphertexts and HMACs.

    :raises ConfigurationError: if the model has no table name.
    """
    name = logical_table(cls.Meta)
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{cls.__name__}.Meta needs a table_name")
    return name


def hmac_scope(
    cls: type[EncryptedModel], field: EncryptedAttribute[Any], path: Optional[str] = None
) -> Tuple[str, ...]:
    """What a field's HMAC key is derived for: its shared ``hmac_scope``, else the table and its path."""
    if field.hmac_scope is not None:
        return ("shared", field.hmac_scope)
    return ("table", table_of(cls), path or field.logical_name)


def tenant_attribute(cls: type[EncryptedModel]) -> Optional[Tuple[str, Attribute[Any]]]:
    """The plain attribute naming an item's tenant, with its Python name, if the keyring is per tenant.

    :raises ConfigurationError: if ``TenantKeyrings(attribute=...)`` names no plain attribute of the model.
    """
    source = getattr(cls.Meta, "keyring", None)
    if not isinstance(source, TenantKeyrings) or source.attribute is None:
        return None
    attribute = cls.get_attributes().get(source.attribute)
    if attribute is None or isinstance(attribute, (EncryptedAttribute, HmacAttribute, MapAttribute)):
        raise ConfigurationError(
            f"{cls.__name__}: TenantKeyrings(attribute={source.attribute!r}) needs a plain attribute"
        )
    return source.attribute, attribute


def item_keyring(
    cls: type[EncryptedModel], tenant_of_item: Optional[str], error: type[StashError]
) -> Optional[Keyring]:
    """The keyring of an item's tenant, when ``Meta.keyring`` is per tenant and the item names one (None:
    the model's own resolution applies).

    :raises StashError: ``error`` with code ``tenant_mismatch`` if :func:`tenant` set another tenant.
    """
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


def instance_keyring(instance: EncryptedModel, error: type[StashError]) -> Optional[Keyring]:
    """:func:`item_keyring` for the tenant an instance names."""
    tenant = tenant_attribute(type(instance))
    if tenant is None:
        return None
    name = getattr(instance, tenant[0])
    return item_keyring(type(instance), None if name is None else str(name), error)


def raw_keyring(
    cls: type[EncryptedModel], item: Dict[str, Dict[str, Any]], error: type[StashError] = DecryptionError
) -> Optional[Keyring]:
    """:func:`item_keyring` for the tenant a stored item names."""
    tenant = tenant_attribute(cls)
    if tenant is None:
        return None
    _, attribute = tenant
    stored = item.get(attribute.attr_name)
    if not stored or NULL in stored:
        return None
    return item_keyring(cls, str(attribute.deserialize(attribute.get_value(stored))), error)


def audit_scope(cls: type[EncryptedModel]) -> _audit.Scope:
    """An audit scope counting the model's reads into one event."""
    return _audit.Scope(cls.__name__, str(logical_table(cls.Meta) or ""))


def audit_operation(cls: type[EncryptedModel]) -> Any:
    """One model operation for the audit trail: its work becomes one event per kind."""
    return _audit.operation(cls.__name__, str(logical_table(cls.Meta) or ""))
