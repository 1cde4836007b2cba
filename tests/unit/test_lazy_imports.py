"""Cold start: importing the package and using a model load nothing heavy that the operation does not need.

A Lambda function pays for every module at its cold start (bench/bench_coldstart.py measures it). The
KMS key store (boto3), the command line (argparse), the operations tools, the demo and the pytest plugin
load only when asked for. Each check runs in a fresh interpreter: this test process has loaded them all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import List

import pytest

HEAVY = [
    "argparse",
    "boto3",
    "moto",
    "pytest",
    "pynamodb_stash._cli",
    "pynamodb_stash._cli_commands",
    "pynamodb_stash._demo",
    "pynamodb_stash.kms",
    "pynamodb_stash.operations",
    "pynamodb_stash.testing",
]

USE_A_MODEL = """
from pynamodb.attributes import UnicodeAttribute
from pynamodb_stash import EncryptedAttribute, EncryptedModel, Keyring

class User(EncryptedModel):
    class Meta:
        table_name = "users"
        region = "us-east-1"
        keyring = Keyring.generate()

    pk = UnicodeAttribute(hash_key=True)
    email = EncryptedAttribute(str, equality=True)

raw = User(pk="u1", email="alice@example.com").serialize()
assert User.from_raw_data(raw).email == "alice@example.com"
"""


def loaded_after(code: str) -> List[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("code", ["import pynamodb_stash", USE_A_MODEL], ids=["import", "first-round-trip"])
def test_nothing_heavy_is_loaded(code: str) -> None:
    loaded = loaded_after(code)
    assert [name for name in HEAVY if name in loaded] == []
