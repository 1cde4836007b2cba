"""PynamoDB's private names are pinned: they live in ``pynamodb_stash/_pynamodb.py`` only, exist with the
parameters passed there, and the PynamoDB code the library copies or bypasses is fingerprinted.

A PynamoDB release that changes one of these fails a test here naming the ``_pynamodb`` function to
review. To see it fail: copy PynamoDB somewhere, edit e.g. ``BatchWrite.commit``, and run this module
with that copy first on ``PYTHONPATH``.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import pytest
from pynamodb import _util
from pynamodb.attributes import AttributeContainer, MapAttribute
from pynamodb.expressions.operand import _Size
from pynamodb.models import BatchWrite, Model

import pynamodb_stash
from pynamodb_stash import _pynamodb

PACKAGE = Path(pynamodb_stash.__file__).parent

# Every private PynamoDB member the library uses, with the _pynamodb function that uses it.
PRIVATE_NAMES = {
    "_container_serialize": "install_item_hooks",
    "_container_deserialize": "install_item_hooks",
    "_instantiate": "install_item_hooks, new_map_instance",
    "_Size": "wrap_size_operand",
    "_set_discriminator": "set_discriminator_and_defaults",
    "_set_defaults": "set_discriminator_and_defaults",
    "_is_map_attribute_class_object": "is_map_class_object",
    "_is_attribute_container": "is_map_value",
    "_dynamo_to_python_attr": "python_name",
    "_indexes": "indexes",
    "_hash_key_attribute": "key_attributes, index_hash_key_attribute",
    "_range_key_attribute": "key_attributes",
    "_model": "bind_index",
    "_get_discriminator_attribute": "discriminator_attribute",
    "_get_discriminator_class": "discriminator_class",
    "_get_hash_range_key_serialized_values": "serialized_keys",
    "_get_keys": "key_item",
    "_get_save_args": "save_arguments",
    "_get_connection": "connection, base_connection",
    "_connection": "reset_connection",
    "_batch_get_page": "batch_get_page",
    "_util": "simple_value (the module pynamodb._util)",
}

# (what, the PynamoDB code, its SHA-256 prefix at 6.1.0, the library code to review when it changes)
FINGERPRINTS: list[tuple[str, Callable[[], Any], str, str]] = [
    ("AttributeContainer._container_serialize", lambda: AttributeContainer._container_serialize,
     "4cef002eb52f1b87", "_pynamodb.install_item_hooks and _item_codec.serialize_plain, which repeats its rules"),
    ("AttributeContainer._container_deserialize", lambda: AttributeContainer._container_deserialize,
     "2ec7039de86525d8", "_pynamodb.install_item_hooks and _item_codec.fill, which repeats it"),
    ("AttributeContainer._instantiate", lambda: AttributeContainer._instantiate,
     "e69d6616b1c92bc8", "_pynamodb.install_item_hooks, _pynamodb.new_map_instance, _item_codec.new_instance"),
    ("Model.from_raw_data", lambda: Model.from_raw_data, "9cd31c87747b4125", "_pynamodb.install_item_hooks"),
    ("BatchWrite.commit", lambda: BatchWrite.commit, "43251333b62f918d", "_reads.EncryptedBatchWrite.commit"),
    ("Model.batch_get", lambda: Model.batch_get, "06f58ac367e8812f", "_reads.batch_get"),
    ("Model._batch_get_page", lambda: Model._batch_get_page, "77729f755b9097ad", "_pynamodb.batch_get_page"),
    ("_Size", lambda: _Size, "30d9fc9c3a758d9e", "_pynamodb.wrap_size_operand"),
    ("AttributeContainer.to_simple_dict", lambda: AttributeContainer.to_simple_dict, "233c23b639e3d28a",
     "_model.EncryptedModel.to_simple_dict, which repeats it on the stored form"),
    ("_util.attr_value_to_simple_dict", lambda: _util.attr_value_to_simple_dict, "8f1d7ac1618f07af",
     "_pynamodb.simple_value"),
]


def test_the_installed_pynamodb_is_in_the_supported_range() -> None:
    version = tuple(int(part) for part in metadata.version("pynamodb").split(".")[:2])
    assert (6, 1) <= version < (7, 0), "pyproject.toml pins pynamodb>=6.1,<7"


@pytest.mark.parametrize(("what", "code", "expected", "review"), FINGERPRINTS, ids=[f[0] for f in FINGERPRINTS])
def test_the_pynamodb_code_the_library_copies_or_bypasses_is_unchanged(
    what: str, code: Callable[[], Any], expected: str, review: str
) -> None:
    source = inspect.getsource(code())
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    assert digest == expected, f"PynamoDB's {what} changed: review {review} (pynamodb_stash/)"


@pytest.mark.parametrize(
    ("owner", "name", "parameters"),
    [
        (Model, "_set_defaults", ["_user_instantiated"]),
        (Model, "_dynamo_to_python_attr", ["dynamo_key"]),
        (Model, "_get_discriminator_class", ["attribute_values"]),
        (Model, "_get_save_args", ["condition", "add_version_condition"]),
        (Model, "_batch_get_page", ["keys_to_get", "consistent_read", "attributes_to_get"]),
        (Model, "_hash_key_attribute", []),
        (Model, "_range_key_attribute", []),
        (__import__("pynamodb.indexes", fromlist=["Index"]).Index, "_hash_key_attribute", []),
        (Model, "_get_discriminator_attribute", []),
        (Model, "_get_hash_range_key_serialized_values", []),
        (Model, "_get_keys", []),
        (Model, "_get_connection", []),
        (Model, "_set_discriminator", []),
        (MapAttribute, "_is_map_attribute_class_object", ["instance"]),
        (MapAttribute, "_is_attribute_container", []),
        (AttributeContainer, "_instantiate", ["attribute_values"]),
        (AttributeContainer, "_container_serialize", ["null_check"]),
        (AttributeContainer, "_container_deserialize", ["attribute_values"]),
        (_util, "attr_value_to_simple_dict", ["attribute_value", "force"]),
    ],
)
def test_each_private_member_exists_with_the_parameters_passed(owner: Any, name: str, parameters: list[str]) -> None:
    member = getattr(owner, name)
    names = [p for p in inspect.signature(member).parameters if p not in ("self", "cls")]
    review = PRIVATE_NAMES.get(name) or PRIVATE_NAMES["_util"]
    assert names[: len(parameters)] == parameters, f"{owner.__name__}.{name}: review _pynamodb ({review})"


def test_the_private_attributes_the_library_assigns_exist() -> None:
    assert isinstance(Model._indexes, dict) and "_connection" in vars(Model)
    assert "_model" in inspect.getsource(__import__("pynamodb.indexes", fromlist=["Index"]).Index)


def test_no_module_but_the_adapter_touches_a_private_pynamodb_name() -> None:
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name == "_pynamodb.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE_NAMES:
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pynamodb"):
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                private += [node.module or ""] if "._" in (node.module or "") else []
                offenders += [f"{path.name}:{node.lineno} import {name}" for name in private]
            elif isinstance(node, ast.Constant) and node.value in PRIVATE_NAMES:  # getattr(x, "_name")
                offenders.append(f"{path.name}:{node.lineno} {node.value!r}")
    assert offenders == []


def test_the_item_hooks_are_the_library_s() -> None:
    from pynamodb_stash import EncryptedModel, _item_codec

    assert EncryptedModel._container_serialize is _item_codec.serialize_item
    assert EncryptedModel._container_deserialize is _item_codec.deserialize_item
    assert EncryptedModel.__dict__["_instantiate"].__func__ is _item_codec.instantiate
    assert _pynamodb.install_item_hooks.__module__ == "pynamodb_stash._pynamodb"
