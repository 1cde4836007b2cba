"""The errors pynamodb-stash raises.

Every error is a :class:`StashError` with a stable :attr:`~StashError.code`, so code can branch on
``err.code`` and logs can be grouped by it::

    StashError
    ├── ConfigurationError      a declaration, keyring or setting is wrong
    ├── EncryptionError         a value could not be encrypted (wrong type, ...)
    ├── DecryptionError         a stored value is not authentic, or not for this item/attribute/table
    ├── KeyProviderError        a key store or AWS KMS refused or failed
    │   └── KeyNotFoundError    a ciphertext names a key id the keyring does not hold (or retired);
    │                           also a DecryptionError
    └── UnsupportedQueryError   an operator or update action that cannot work on ciphertext

Messages name the model, the attribute and the key id. They never contain a plaintext, a ciphertext,
an HMAC or key material, so they are safe to log.
"""

from __future__ import annotations

from typing import Callable, Optional

__all__ = [
    "ConfigurationError",
    "DecryptionError",
    "EncryptionError",
    "KeyNotFoundError",
    "KeyProviderError",
    "StashError",
    "UnsupportedQueryError",
]


class StashError(Exception):
    """Base class of every error raised by pynamodb-stash.

    :ivar code: a short, stable, machine-readable string (``"decryption_failed"``, ...).
    """

    code: str = "stash_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        report_error(self)


class ConfigurationError(StashError):
    """A model declaration, keyring or setting is wrong; raised at class creation or first use."""

    code = "configuration_error"


class EncryptionError(StashError):
    """A value could not be encrypted, for example because it is not of the declared type."""

    code = "encryption_failed"


class DecryptionError(StashError):
    """A stored value did not verify.

    Raised when a ``__source`` was tampered with, truncated, copied from another item, attribute or
    table, written under another keyring, or when a ``__hmac`` does not match its decrypted value.
    Never accompanied by partial or unverified data.
    """

    code = "decryption_failed"


class KeyProviderError(StashError):
    """Keys could not be obtained: a key store or AWS KMS refused or failed.

    The message names the keyset and the KMS key id; the underlying error is chained (``__cause__``).
    """

    code = "key_provider_error"


class KeyNotFoundError(KeyProviderError, DecryptionError):
    """A ciphertext names a key id that the keyring does not hold, or holds as retired.

    It is also a :class:`DecryptionError`: the value cannot be read, as for any other failure to
    decrypt. The message names the key id (and its status).
    """

    code = "key_not_found"


class UnsupportedQueryError(StashError):
    """An operator, function or update action that cannot work on an encrypted attribute.

    Raised when the expression is built, never later at DynamoDB.
    """

    code = "unsupported_query"


error_handler: Optional[Callable[[BaseException], None]] = None
"""Set by ``configure(error_handler=...)``: sees every StashError as it is raised, and sink failures."""


def report_error(error: BaseException) -> None:
    """Hand ``error`` to the configured error handler; a failing handler is ignored (and logged)."""
    handler = error_handler
    if handler is None:
        return
    try:
        handler(error)
    except Exception as failure:
        import logging

        logging.getLogger("pynamodb_stash").warning("pynamodb-stash: the error handler failed (%s)",
                                                     type(failure).__name__)

