"""docs/testing.md shows a user's test module: it is example_user_suite.py, verbatim, and it passes when
pytest runs it as a user would (its own process, the plugin loaded by its entry point, no conftest.py), on
this session's DynamoDB Local. The page's other claims about the fixtures are tested in
tests/integration/test_pytest_plugin*.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "testing.md"
EXAMPLE = Path(__file__).with_name("example_user_suite.py")


def test_the_page_shows_the_example_verbatim() -> None:
    blocks = re.findall(r"^```py\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks


def test_the_page_is_in_the_site_and_the_readme() -> None:
    assert "testing.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "(docs/testing.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_example_suite_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ddb_url: str) -> None:
    monkeypatch.setenv("PYNAMODB_STASH_DDB_URL", ddb_url)
    monkeypatch.delenv("PYNAMODB_STASH_KEYRING", raising=False)  # the fixtures provide the keyring
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n    ignore:Boto3 will no longer support Python:Warning\n")
    pytester.makepyfile(test_patients=EXAMPLE.read_text(encoding="utf-8"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_no_plaintext_reaches_dynamodb PASSED*"])
