"""The package's modules import one way: each only modules of its own layer or below (docs/internals.md),
and none imports a module that imports it back, at any depth. Imports inside functions count; imports
under ``if TYPE_CHECKING:`` are for annotations only and do not."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pynamodb_stash

PACKAGE = Path(pynamodb_stash.__file__).parent

# Lowest first. A module may import modules of its own layer or of a layer above it in this list.
LAYERS: List[List[str]] = [
    ["exceptions", "_public", "_crypto", "_codecs", "_pynamodb"],
    ["_audit", "_keyring"],
    ["_protocols", "_expressions", "_hmac_attributes", "_attributes"],
    ["_wire"],
    ["_layout"],
    ["_plain_values", "_binding"],
    ["_fields"],
    ["_item_codec"],
    ["_updates", "_reads"],
    ["_model"],
    ["_items", "_operations_scan", "_operations_rewrite", "operations"],
    ["_keystore_format", "_keystore_aws", "_keystore_legacy", "_keystore_records", "_keystore_lifecycle", "kms"],
    ["_cli_report", "_cli_commands", "_cli", "_demo"],
    ["_local_dynamodb", "_testing_tables", "_testing_never_stored", "testing"],
    ["__init__"],
]
LAYER = {module: depth for depth, layer in enumerate(LAYERS) for module in layer}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> Set[str]:
    """The package modules ``path`` imports at run time (``from . import x``, ``from .x import y``,
    ``import pynamodb_stash.x``), inside functions too, not under ``if TYPE_CHECKING:``."""
    found: Set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 and module:
                found.add(module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif module.startswith("pynamodb_stash."):
                found.add(module.split(".")[1])
            elif module == "pynamodb_stash":
                found.update(alias.name for alias in node.names if alias.name in LAYER)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("pynamodb_stash."))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {name for name in found if (PACKAGE / f"{name}.py").exists()}


def _graph() -> Dict[str, Set[str]]:
    return {path.stem: _imports(path) - {path.stem} for path in sorted(PACKAGE.glob("*.py"))}


def test_every_module_has_a_layer() -> None:
    assert sorted(set(_graph()) - set(LAYER)) == [], "place new modules in LAYERS and in docs/internals.md"
    assert sorted(set(LAYER) - set(_graph())) == [], "a module in LAYERS no longer exists"


def test_modules_import_only_their_layer_or_below() -> None:
    upward = [
        f"{module} imports {imported}"
        for module, imports in _graph().items()
        for imported in sorted(imports)
        if LAYER.get(imported, -1) > LAYER.get(module, -1)
    ]
    assert upward == []


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _graph()
    cycles: List[str] = []

    def reach(start: str, node: str, path: List[str], seen: Set[str]) -> None:
        for imported in sorted(graph.get(node, ())):
            if imported == start:
                cycles.append(" -> ".join([*path, start]))
            elif imported not in seen:
                seen.add(imported)
                reach(start, imported, [*path, imported], seen)

    for module in graph:
        reach(module, module, [module], {module})
    assert cycles == []


def test_the_checker_sees_imports_inside_functions_and_skips_type_checking(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "from ._wire import item_size\n"
        "if TYPE_CHECKING:\n    from ._model import EncryptedModel\n"
        "def f():\n    from . import _items\n    from pynamodb_stash._reads import results\n",
        encoding="utf-8",
    )
    assert _imports(sample) == {"_wire", "_items", "_reads"}
