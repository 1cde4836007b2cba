"""The console script: `keygen` prints a usable keyring; `demo` runs end to end, and leaks nothing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stdout

import pytest

from pynamodb_stash import Keyring
from pynamodb_stash._cli import main
from pynamodb_stash._demo import run_demo


def test_keygen_prints_a_keyring_that_loads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", "--key-id", "2026-11", "--index-key-id", "idx-a"]) == 0
    printed = capsys.readouterr().out.strip()
    keyring = Keyring.from_string(printed)
    assert keyring.primary_key_id == "2026-11" and keyring.index_key_id == "idx-a"
    assert main(["keygen"]) == 0
    assert capsys.readouterr().out.strip() != printed  # fresh keys every time


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pynamodb_stash._cli", "keygen"], capture_output=True, text=True, check=True
    )
    keyring = Keyring.from_string(result.stdout.strip())
    assert len(keyring.key_ids) == 1 and keyring.key_ids[0].startswith("k-")


def test_demo_on_dynamodb_local(ddb_url: str) -> None:
    out = io.StringIO()
    run_demo(ddb_url, out=out)
    text = out.getvalue()
    assert "by old email -> [], by new email -> ['user#2']" in text
    assert "plaintext email found in the stored item: no" in text
    assert "YES" not in text
    # Stored values are shown by type and size only: no ciphertext or HMAC reaches the output.
    assert "email__hmac     S, 22 characters" in text
    assert "b'" not in text and "\\x" not in text


def test_demo_on_the_embedded_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYNAMODB_STASH_KEYRING", raising=False)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["demo"]) == 0
    assert "done: DynamoDB only ever saw ciphertext and HMACs." in out.getvalue()


def test_demo_uses_the_keyring_from_the_environment(ddb_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    keyring = Keyring.generate(key_id="from-env")
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", keyring.export_secret_string())
    out = io.StringIO()
    run_demo(ddb_url, out=out)
    assert "primary='from-env'" in out.getvalue()
    assert keyring.export_secret_string().split(":")[-1] not in out.getvalue()


def test_cli_reports_a_bad_keyring_in_one_line(ddb_url: str, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", "stash-keyring:v1:not-base64-json")
    assert main(["demo", "--endpoint", ddb_url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pynamodb-stash: configuration_error: environment variable PYNAMODB_STASH_KEYRING")
    assert err.count("\n") == 1
    assert os.environ["PYNAMODB_STASH_KEYRING"].split(":")[-1] not in err
