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

import functools
from typing import Any, Callable, Optional, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

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
"""Set by ``configure(error_handler=...)``: hears each StashError once, where the library operation it ends
returns to the caller, and audit sink failures."""


def report_error(error: BaseException) -> None:
    """Hand ``error`` to the configured error handler, once per error object (an operation that ends in an
    error raised by an inner one does not report it again); a failing handler is ignored (and logged).

    Exceptions themselves are inert: constructing one reports nothing. The library calls this where an
    operation ends: a model operation, one step of a read's iteration, ``serialize()``/``from_raw_data()``,
    a raw-item function, an operations tool.
    """
    handler = error_handler
    if handler is None:
        return
    if isinstance(error, StashError):
        if getattr(error, "_stash_reported", False):
            return
        error._stash_reported = True  # type: ignore[attr-defined]
    try:
        handler(error)
    except Exception as failure:
        import logging

        logging.getLogger("pynamodb_stash").warning("pynamodb-stash: the error handler failed (%s)",
                                                     type(failure).__name__)


def reporting(function: _F) -> _F:
    """Decorate a function that ends a library operation: a StashError it raises is reported once."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except StashError as error:
            report_error(error)
            raise

    return wrapper  # type: ignore[return-value]
