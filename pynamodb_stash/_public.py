"""Public names show the module that exports them, not the private module that defines them."""

from __future__ import annotations

from typing import Any, Iterable, Mapping


def show_as_public(module: str, namespace: Mapping[str, Any], names: Iterable[str]) -> None:
    """Set ``__module__`` to ``module`` on each of ``names`` (in ``namespace``) defined in a private
    module of the package, so that reprs, tracebacks, pickles and the docs name the public path."""
    for name in names:
        value = namespace[name]
        if getattr(value, "__module__", "").startswith("pynamodb_stash._"):
            value.__module__ = module
