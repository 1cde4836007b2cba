"""Client-side, field-level encryption for PynamoDB models.

Declare sensitive attributes as :class:`EncryptedAttribute` on an :class:`EncryptedModel`; values are
encrypted before they leave the process, stored as ``x__source`` (ciphertext) and, with
``equality=True``, ``x__hmac`` (a keyed HMAC that keys, indexes and conditions can use with plaintext).
"""

from ._attributes import EncryptedAttribute, EncryptedMapAttribute, Equality
from ._audit import AuditEvent, audit
from ._crypto import Key
from ._hmac_attributes import CompoundHmacAttribute, HmacAttribute, HmacDigest
from ._items import ItemResult, bulk_decrypt_items, bulk_encrypt_items, decrypt_item, encrypt_item
from ._keyring import Keyring, KeyringSource, TenantKeyrings, configure, lock_context, tenant
from ._model import EncryptedModel
from ._public import show_as_public as _show_as_public
from .exceptions import (
    ConfigurationError,
    DecryptionError,
    EncryptionError,
    KeyNotFoundError,
    KeyProviderError,
    StashError,
    UnsupportedQueryError,
)

__version__ = "0.1.0"

__all__ = [
    "AuditEvent",
    "CompoundHmacAttribute",
    "ConfigurationError",
    "DecryptionError",
    "EncryptedAttribute",
    "EncryptedMapAttribute",
    "EncryptedModel",
    "EncryptionError",
    "Equality",
    "HmacAttribute",
    "HmacDigest",
    "ItemResult",
    "Key",
    "KeyNotFoundError",
    "KeyProviderError",
    "Keyring",
    "KeyringSource",
    "StashError",
    "TenantKeyrings",
    "UnsupportedQueryError",
    "audit",
    "bulk_decrypt_items",
    "bulk_encrypt_items",
    "configure",
    "decrypt_item",
    "encrypt_item",
    "lock_context",
    "tenant",
]


_show_as_public(__name__, globals(), __all__)
