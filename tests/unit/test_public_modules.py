"""Public names show their public module, and every module of the package imports on its own."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pynamodb_stash
from pynamodb_stash import EncryptedModel, Keyring, kms, operations, testing

PACKAGE = Path(pynamodb_stash.__file__).parent


def test_public_names_show_their_public_module() -> None:
    for name in pynamodb_stash.__all__:
        module = getattr(getattr(pynamodb_stash, name), "__module__", "pynamodb_stash")
        assert module in ("pynamodb_stash", "pynamodb_stash.exceptions"), name
    assert repr(Keyring) == "<class 'pynamodb_stash.Keyring'>"
    assert EncryptedModel.__module__ == "pynamodb_stash"
    for public in (kms, operations, testing):
        for name in public.__all__:
            found = getattr(getattr(public, name), "__module__", public.__name__)
            assert found in (public.__name__, "pynamodb_stash", "pynamodb_stash.exceptions"), (public, name)


def test_a_public_value_pickles_by_its_public_path() -> None:
    keyring = Keyring.generate()
    assert pickle.loads(pickle.dumps(type(keyring))) is Keyring


def test_every_module_imports_on_its_own() -> None:
    """A module imported first (a tool, a test, a plugin) must not depend on another being imported before."""
    names = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('pynamodb_stash')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module('pynamodb_stash.' + name)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=120)
