"""Write the known-answer vectors of the current wire format: ``python tests/vectors/generate.py``.

Values are encrypted with fixed nonces (``_crypto.fixed_nonces``), so the output is deterministic. A
released vector file is frozen: every later version of pynamodb-stash must decrypt it (the test suite
loads every ``v*.json`` here). New cases go into a new file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import vector_models as vm

from pynamodb_stash import _crypto

HERE = Path(__file__).resolve().parent


def nonces(label: str, count: int = 64) -> List[bytes]:
    return [hashlib.sha256(f"{label}/{i}".encode()).digest()[:12] for i in range(count)]


def flip(raw: Dict[str, Any], attribute: str, index: int) -> Dict[str, Any]:
    tampered = copy.deepcopy(raw)
    blob = bytearray(tampered[attribute]["B"])
    blob[index] ^= 0x01
    tampered[attribute]["B"] = bytes(blob)
    return tampered


def main() -> None:
    valid, invalid = [], []
    current = vm.models(vm.keyring())
    old = vm.models(vm.old_keyring())
    for number, (model_name, values) in enumerate(vm.VALUES):
        with _crypto.fixed_nonces(nonces(f"valid/{number}")):
            raw = current[model_name](**values).serialize()
        decoded = current[model_name].from_raw_data(raw)  # nested maps compare as the maps they decode to
        valid.append({
            "model": model_name,
            "keyring": "current",
            "nonces": f"valid/{number}",
            "raw": vm.raw_to_json(raw),
            "expected": {name: vm.to_json_value(getattr(decoded, name) if model_name == "NestedItem" else value)
                         for name, value in values.items()},
        })
    with _crypto.fixed_nonces(nonces("valid/old")):
        raw = old["KeyedItem"](email="bob@example.com", seq=7, note="written under k1").serialize()
    valid.append({
        "model": "KeyedItem",
        "keyring": "current",
        "nonces": None,  # written under the old key k1, which the current keyring only decrypts
        "raw": vm.raw_to_json(raw),
        "expected": {name: vm.to_json_value(v) for name, v in
                     {"email": "bob@example.com", "seq": 7, "note": "written under k1"}.items()},
    })

    base = vm.raw_from_json(valid[1]["raw"])
    other = vm.raw_from_json(valid[2]["raw"])
    cases = {
        "flipped version byte": flip(base, "text__source", 0),
        "flipped key id": flip(base, "text__source", 3),
        "flipped nonce": flip(base, "text__source", 5),
        "flipped ciphertext": flip(base, "text__source", 20),
        "flipped tag": flip(base, "text__source", len(base["text__source"]["B"]) - 1),
        "truncated": {**base, "text__source": {"B": base["text__source"]["B"][:-1]}},
        "extended": {**base, "text__source": {"B": base["text__source"]["B"] + b"\x00"}},
        "empty": {**base, "text__source": {"B": b""}},
        "moved to another item": {**base, "pk": other["pk"]},
        "moved to another attribute": {**base, "blob__source": base["count__source"]},
        "hmac swapped from another item": {**base, "text__hmac": other["text__hmac"]},
        "string where ciphertext belongs": {**base, "text__source": {"S": "plaintext"}},
    }
    for why, raw in cases.items():
        error = "KeyNotFoundError" if why == "flipped key id" else "DecryptionError"
        invalid.append({"model": "TypedItem", "keyring": "current", "why": why,
                        "raw": vm.raw_to_json(raw), "error": error})
    invalid.append({"model": "KeyedItem", "keyring": "old", "why": "written under k2, read with a keyring of k1 only",
                    "raw": valid[3]["raw"], "error": "KeyNotFoundError"})
    nested = vm.raw_from_json(valid[5]["raw"])
    first, second = nested["history"]["L"]
    swapped = {**nested, "history": {"L": [second, first]}}
    moved = copy.deepcopy(nested)
    moved["profile"]["M"]["address"]["M"]["street__source"] = first["M"]["street__source"]
    moved["profile"]["M"]["address"]["M"]["street__hmac"] = first["M"]["street__hmac"]
    for why, raw in {"list elements swapped": swapped, "a list element's value moved into a map": moved}.items():
        invalid.append({"model": "NestedItem", "keyring": "current", "why": why,
                        "raw": vm.raw_to_json(raw), "error": "DecryptionError"})

    out = {"format_version": _crypto.FORMAT_VERSION, "valid": valid, "invalid": invalid}
    target = HERE / f"v{_crypto.FORMAT_VERSION}.json"
    if target.exists() and "--force" not in sys.argv:
        sys.exit(f"{target.name} exists and is frozen; pass --force only before it is released")
    target.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(valid)} valid and {len(invalid)} invalid vectors to {target}")


if __name__ == "__main__":
    main()
