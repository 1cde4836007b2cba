"""The public front: ``pynamodb_stash.__all__`` is exactly the contract (after httpx's test of the same name)."""

from __future__ import annotations

import subprocess
import sys
import types

import pynamodb_stash
from pynamodb_stash import exceptions

# DESIGN.md "Public API (contract)" plus the documented helpers HmacDigest and Key.
EXPECTED = [
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
ERRORS = [
    "ConfigurationError",
    "DecryptionError",
    "EncryptionError",
    "KeyNotFoundError",
    "KeyProviderError",
    "StashError",
    "UnsupportedQueryError",
]


def test_all_is_sorted() -> None:
    assert pynamodb_stash.__all__ == sorted(pynamodb_stash.__all__)
    assert len(set(pynamodb_stash.__all__)) == len(pynamodb_stash.__all__)


def test_all_is_exactly_the_contract() -> None:
    assert pynamodb_stash.__all__ == EXPECTED


def test_every_exported_name_exists() -> None:
    for name in pynamodb_stash.__all__:
        assert getattr(pynamodb_stash, name, None) is not None, name


def test_every_contract_name_is_importable() -> None:
    missing = [name for name in EXPECTED if not hasattr(pynamodb_stash, name)]
    assert missing == []


def test_nothing_else_public_leaks() -> None:
    """Public names are __all__, submodules and dunders; implementation lives in _private modules."""
    public = {
        name
        for name, value in vars(pynamodb_stash).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(pynamodb_stash.__all__)


def test_public_submodules_are_exceptions_operations_and_the_kms_extra() -> None:
    # Under pytest, also the pytest plugin `testing` (loaded through the package's pytest11 entry point),
    # and "@py_builtins"/"@pytest_ar": pytest rewrites the asserts of every package that ships a plugin.
    submodules = {
        name for name, value in vars(pynamodb_stash).items()
        if isinstance(value, types.ModuleType) and not name.startswith(("_", "@"))
    }
    assert submodules <= {"exceptions", "kms", "operations", "testing"}


def test_importing_the_package_imports_no_extra() -> None:
    code = "import sys, pynamodb_stash; print('pynamodb_stash.kms' in sys.modules, 'boto3' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_version() -> None:
    assert isinstance(pynamodb_stash.__version__, str)
    assert pynamodb_stash.__version__.count(".") >= 2


def test_exceptions_module_exports_the_error_tree() -> None:
    assert exceptions.__all__ == ERRORS
    for name in ERRORS:
        assert getattr(exceptions, name) is getattr(pynamodb_stash, name)
        assert issubclass(getattr(exceptions, name), exceptions.StashError)
        assert issubclass(getattr(exceptions, name), Exception)


def test_error_codes_are_stable_and_distinct() -> None:
    codes = {name: getattr(exceptions, name).code for name in ERRORS}
    assert codes == {
        "ConfigurationError": "configuration_error",
        "DecryptionError": "decryption_failed",
        "EncryptionError": "encryption_failed",
        "KeyNotFoundError": "key_not_found",
        "KeyProviderError": "key_provider_error",
        "StashError": "stash_error",
        "UnsupportedQueryError": "unsupported_query",
    }


def test_error_code_can_be_overridden_per_instance() -> None:
    error = exceptions.DecryptionError("x", code="missing_key_attributes")
    assert error.code == "missing_key_attributes"
    assert exceptions.DecryptionError.code == "decryption_failed"
    assert exceptions.DecryptionError("x").code == "decryption_failed"


def test_key_not_found_is_a_decryption_failure_with_its_own_code() -> None:
    """A value whose key is missing cannot be read (``except DecryptionError`` catches it), yet its code and
    class tell a rotation or configuration state apart from tampering."""
    assert issubclass(exceptions.KeyNotFoundError, exceptions.DecryptionError)
    assert issubclass(exceptions.KeyNotFoundError, exceptions.KeyProviderError)
    assert exceptions.KeyNotFoundError.code != exceptions.DecryptionError.code
