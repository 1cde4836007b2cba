"""Known-answer vectors: every vector file ever released must keep decrypting to the same values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import generate
import pytest
import vector_models as vm

import pynamodb_stash
from pynamodb_stash import _crypto

FILES = sorted(Path(__file__).parent.glob("v*.json"))
KEYRINGS = {"current": vm.keyring, "old": vm.old_keyring}


def load(kind: str) -> List[Any]:
    cases = []
    for path in FILES:
        for number, vector in enumerate(json.loads(path.read_text(encoding="utf-8"))[kind]):
            cases.append(pytest.param(vector, id=f"{path.stem}-{kind}-{number}-{vector.get('why', vector['model'])}"))
    return cases


def test_vector_files_exist() -> None:
    assert [path.name for path in FILES][:1] == ["v1.json"]
    assert len(load("valid")) >= 7 and len(load("invalid")) >= 15


@pytest.mark.parametrize("vector", load("valid"))
def test_valid_vector_decrypts(vector: Dict[str, Any]) -> None:
    model = vm.models(KEYRINGS[vector["keyring"]]())[vector["model"]]
    item = model.from_raw_data(vm.raw_from_json(vector["raw"]))
    expected = vector["expected"]
    assert {name: vm.to_json_value(getattr(item, name)) for name in expected} == expected
    unset = set(model.get_attributes()) - set(expected) - {n for n in model.get_attributes() if n.endswith("__hmac")}
    assert all(getattr(item, name) is None for name in unset)


@pytest.mark.parametrize("vector", [v for v in load("valid") if v.values[0]["nonces"]])
def test_current_format_reproduces_vector(vector: Dict[str, Any]) -> None:
    """Encrypting the same values with the same nonces gives the same bytes (this format version only)."""
    data = vector
    model = vm.models(KEYRINGS[data["keyring"]]())[data["model"]]
    values = dict(vm.VALUES[int(data["nonces"].split("/")[1])][1])
    with _crypto.fixed_nonces(generate.nonces(data["nonces"])):
        raw = model(**values).serialize()
    assert vm.raw_to_json(raw) == data["raw"]


@pytest.mark.parametrize("vector", load("invalid"))
def test_invalid_vector_raises(vector: Dict[str, Any]) -> None:
    model = vm.models(KEYRINGS[vector["keyring"]]())[vector["model"]]
    error = getattr(pynamodb_stash, vector["error"])
    with pytest.raises(error) as raised:
        model.from_raw_data(vm.raw_from_json(vector["raw"]))
    assert type(raised.value) is error
