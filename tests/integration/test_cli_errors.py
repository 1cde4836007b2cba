"""CLI errors keep their cause (issue 16, point 11): the library's own message, the file and line of the
user's code, which endpoint or credentials failed, and usage errors before any request; never a value,
source text or another library's message."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest
from botocore.exceptions import ClientError

from pynamodb_stash import Keyring
from pynamodb_stash._cli import main
from pynamodb_stash._cli_report import aws_failure

CONSOLE_SCRIPT = str(Path(sys.executable).with_name("pynamodb-stash"))

GOOD = """
    from pynamodb.attributes import UnicodeAttribute
    from pynamodb.models import Model
    from pynamodb_stash import EncryptedAttribute, EncryptedModel

    class Member(EncryptedModel):
        class Meta:
            table_name = "cli-errors-no-such-table"
            region = "us-east-1"

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True)

    class Plain(Model):
        class Meta:
            table_name = "plain"

        pk = UnicodeAttribute(hash_key=True)

    NOT_A_CLASS = 3
"""


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Writes a module of the user's under a fresh name; returns the name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", Keyring.generate().export_secret_string())
    names: List[str] = []

    def write(source: str) -> str:
        name = f"cli_errors_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("command", ["status", "hmac", "verify"])
def test_import_errors_name_file_and_line_never_source_text(
    write_module: Callable[[str], str], tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    extra = ["email", "x"] if command == "hmac" else []
    syntax = write_module('A = 1\nTOKEN = "s3cr3t-token" +\n')
    err = run(capsys, command, f"{syntax}:Member", *extra)
    assert f"cannot import {syntax}: SyntaxError at {tmp_path / syntax}.py, line 2" in err
    assert "s3cr3t" not in err and "TOKEN" not in err

    missing = write_module("import os\n\nimport no_such_dependency_xyz\n")
    err = run(capsys, command, f"{missing}:Member", *extra)
    assert (f"cannot import {missing}: ModuleNotFoundError at {tmp_path / missing}.py, line 3: "
            "no module named 'no_such_dependency_xyz'") in err

    raising = write_module('\n\nraise ValueError("s3cr3t-password in a message")\n')
    err = run(capsys, command, f"{raising}:Member", *extra)
    assert f"cannot import {raising}: ValueError at {tmp_path / raising}.py, line 3" in err and "s3cr3t" not in err


def test_the_librarys_own_error_keeps_its_message(write_module: Callable[[str], str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    module = write_module("""
        from pynamodb.attributes import UnicodeAttribute
        from pynamodb_stash import EncryptedAttribute, EncryptedModel

        class Member(EncryptedModel):
            class Meta:
                table_name = "members"

            pk = UnicodeAttribute(hash_key=True)
            email = EncryptedAttribute(str, hmac_scope="emails")
    """)
    err = run(capsys, "status", f"{module}:Member")
    assert f"cannot import {module}: configuration_error at {tmp_path / module}.py, line 10" in err
    assert "EncryptedAttribute: hmac_scope needs equality=True" in err


def test_a_missing_attribute_is_not_called_a_wrong_class(write_module: Callable[[str], str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    module = write_module(GOOD)
    assert "has no attribute 'Nope' (its EncryptedModel classes: Member)" in run(capsys, "status", f"{module}:Nope")
    assert "is not an EncryptedModel (it is a PynamoDB Model)" in run(capsys, "status", f"{module}:Plain")
    assert "is not an EncryptedModel (it is a int)" in run(capsys, "status", f"{module}:NOT_A_CLASS")
    assert "no module named 'not_there_xyz' (run from the directory" in run(capsys, "status", "not_there_xyz:M")


def test_an_unreachable_endpoint_is_named(write_module: Callable[[str], str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    module = write_module(GOOD)
    err = run(capsys, "verify", f"{module}:Member", "--endpoint", "http://127.0.0.1:9")
    assert "TableError: cannot reach the endpoint http://127.0.0.1:9" in err and "--endpoint" in err


def test_a_missing_table_names_the_endpoint_and_region(write_module: Callable[[str], str], ddb_url: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    module = write_module(GOOD)
    err = run(capsys, "verify", f"{module}:Member", "--endpoint", ddb_url, "--region", "eu-west-3")
    assert f"table 'cli-errors-no-such-table' does not exist at {ddb_url} (region eu-west-3)" in err
    assert "--region" in err


def test_missing_credentials_are_named(write_module: Callable[[str], str], tmp_path: Path, ddb_url: str) -> None:
    """A real process with no credentials anywhere: not in the environment, files or instance metadata."""
    module = write_module(GOOD)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("AWS_") and key != "PYNAMODB_STASH_DDB_URL"}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", PYTHONPATH=str(tmp_path),
               PYNAMODB_STASH_KEYRING=os.environ["PYNAMODB_STASH_KEYRING"])
    result = subprocess.run([CONSOLE_SCRIPT, "verify", f"{module}:Member", "--endpoint", ddb_url],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert f"no AWS credentials found for {ddb_url} (region us-east-1)" in result.stderr
    assert "AWS_ACCESS_KEY_ID" in result.stderr and result.stderr.count("\n") == 1


def test_aws_answers_are_named_by_code_never_by_their_text() -> None:
    def refused(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "item {'ssn': '078-05-1120'} refused"}}, "Scan")

    for code, words in (("UnrecognizedClientException", "refused the AWS credentials"),
                        ("ExpiredTokenException", "have expired"), ("AccessDeniedException", "access denied"),
                        ("ResourceNotFoundException", "check the table name, --region"),
                        ("ThrottlingException", "throttled"), ("ValidationException", "refused the request")):
        from pynamodb.exceptions import ScanError

        text = aws_failure(ScanError("Failed to scan table: item {'ssn': '078-05-1120'}", refused(code)), "E")
        assert text.startswith("ScanError: ") and code in text and words in text and "078-05" not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "{m}", "--page-size", "0"], "argument --page-size: must be at least 1 (got 0)"),
        (["verify", "{m}", "--segments", "-2"], "argument --segments: must be at least 1 (got -2)"),
        (["rotate", "{m}", "--segments", "x"], "argument --segments: 'x' is not an integer"),
        (["rotate", "{m}", "--segment", "-1", "--total-segments", "2"], "argument --segment: must be at least 0"),
        (["rotate", "{m}", "--segment", "2", "--total-segments", "2"], "--segment is from 0 to --total-segments - 1"),
        (["rotate", "{m}", "--segment", "1"], "--segment and --total-segments go together"),
        (["rotate", "{m}", "--segments", "2", "--segment", "0", "--total-segments", "2"], "give one or the other"),
        (["encrypt-existing", "{m}", "--max-write-rate", "0"], "--max-write-rate: must be a positive number"),
        (["encrypt-existing", "{m}", "--max-write-rate", "nan"], "--max-write-rate: must be a positive number"),
        (["encrypt-existing", "{m}", "--dry-run", "--checkpoint", "c.json"], "no progress to record in --checkpoint"),
        (["hmac", "{m}", "email", "x", "--type", "money"], "argument --type: invalid choice: 'money'"),
        (["verify", "no-colon"], "'no-colon' is not MODULE:Model"),
        (["keystore", "destroy-keyset", "--table", "t", "--keyset", "k", "--schedule-kms-key-deletion",
          "--allowed-kms-key-id", "a", "--pending-window-days", "5", "--yes"], "must be from 7 to 30 (got 5)"),
        (["keystore", "promote", "--table", "t", "--keyset", "k", "--allowed-kms-key-id", "a"], "--key-id is required"),
        (["keystore", "list", "--table", "t", "--keyset", "k"], "--allowed-kms-key-id is required"),
    ],
)
def test_arguments_are_checked_before_any_request(
    argv: List[str], message: str, write_module: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = write_module(GOOD)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a request before the arguments were checked")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    with pytest.raises(SystemExit) as raised:
        main([part.format(m=f"{module}:Member") for part in argv])
    err = capsys.readouterr().err
    assert raised.value.code == 2 and message in err and message in str(raised.value)
    assert err.count("\n") == 1 and "--help'" in err


def test_an_unexpected_error_is_named_without_its_text(write_module: Callable[[str], str], ddb_url: str,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from pynamodb_stash import operations

    module = write_module(GOOD)

    def failing(*args: Any, **kwargs: Any) -> None:
        raise ValueError("could not parse '078-05-1120'")

    monkeypatch.setattr(operations, "status", failing)
    err = run(capsys, "status", f"{module}:Member")
    assert err.startswith("pynamodb-stash: unexpected ValueError at ") and "test_cli_errors.py, line" in err
    assert "078-05" not in err
