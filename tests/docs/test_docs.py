"""Every ```python block of the README and of docs/*.md runs, page by page, against DynamoDB Local.

A page's blocks share one namespace, in order, so a page reads as one program. Models in the docs name
no host: PynamoDB's settings point them at the test server, boto3's endpoint variables point DynamoDB at
DynamoDB Local and KMS at moto's, and ``$PYNAMODB_STASH_KEYRING`` holds a fresh keyring, as
`pynamodb-stash keygen` would give.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List

import boto3
import pynamodb.settings
import pytest

from pynamodb_stash import Keyring, configure

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> List[str]:
    return _BLOCK.findall(page.read_text(encoding="utf-8"))


@pytest.fixture
def docs_environment(ddb_url: str, kms_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(pynamodb.settings.default_settings_dict, "host", ddb_url)
    monkeypatch.setitem(pynamodb.settings.default_settings_dict, "region", "us-east-1")
    # boto3 clients in the docs name no endpoint, as in production; these send them to the local servers.
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", ddb_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", kms_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", Keyring.generate().export_secret_string())
    client = boto3.client("dynamodb", endpoint_url=ddb_url, region_name="us-east-1")
    before = set(client.list_tables()["TableNames"])
    yield
    configure(keyring=None)
    for table in set(client.list_tables()["TableNames"]) - before:
        client.delete_table(TableName=table)


def test_the_feature_pages_have_snippets() -> None:
    with_snippets = {page.name for page in PAGES if python_blocks(page)}
    assert {"README.md", "getting-started.md", "querying.md", "keys.md", "storage-format.md"} <= with_snippets


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_page_runs(page: Path, docs_environment: None) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for number, block in enumerate(python_blocks(page), start=1):
        code = compile(block, f"{page.name} (python block {number})", "exec")
        exec(code, namespace)
