"""Dangerous key store commands ask (issue 16, point 13): `destroy-keyset` wants the keyset's name typed on
a terminal, or --yes, and fails when there is nothing to destroy; `rotate` follows the runbook (a
decrypt-only key, then promote after one TTL) unless told --promote-now."""

from __future__ import annotations

import os
import pty
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import boto3
import pytest

from pynamodb_stash._cli import main

CONSOLE_SCRIPT = str(Path(sys.executable).with_name("pynamodb-stash"))
REGION = "us-east-1"


@pytest.fixture
def store(ddb_url: str, kms_url: str, table_name: str) -> Iterator[Tuple[List[str], str]]:
    """A key store table with keyset "app": the command line options to reach it, and the KMS key."""
    kms_key = boto3.client("kms", endpoint_url=kms_url, region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
    options = ["--table", f"{table_name}-keys", "--endpoint", ddb_url, "--kms-endpoint", kms_url, "--region", REGION,
               "--allowed-kms-key-id", kms_key]
    assert main(["keystore", "create-table", *options[:8]]) == 0
    assert main(["keystore", "create-keyset", *options, "--keyset", "app", "--kms-key-id", kms_key]) == 0
    try:
        yield options, kms_key
    finally:
        boto3.client("dynamodb", endpoint_url=ddb_url, region_name=REGION).delete_table(TableName=f"{table_name}-keys")


def statuses(options: List[str], capsys: pytest.CaptureFixture[str]) -> Dict[str, str]:
    capsys.readouterr()
    assert main(["keystore", "list", *options, "--keyset", "app"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    return {row[0]: row[2] for row in rows if row[1] == "encryption"}


def on_a_terminal(argv: List[str], answer: str) -> Tuple[int, str]:
    """Run the console script with a terminal as its standard input and output; type ``answer`` at the prompt."""
    master, slave = pty.openpty()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    output = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        if not answered and b"to confirm: " in output:
            os.write(master, answer.encode() + b"\n")
            answered = True
        if process.poll() is not None and not ready:
            break
    os.close(master)
    return process.wait(timeout=30), output.decode(errors="replace")


def test_destroy_keyset_asks_on_a_terminal(store: Tuple[List[str], str], capsys: pytest.CaptureFixture[str]) -> None:
    options, _ = store
    argv = [CONSOLE_SCRIPT, "keystore", "destroy-keyset", *options, "--keyset", "app"]
    status, output = on_a_terminal(argv, "ap")  # a typo
    assert status == 1 and "Type the keyset's name to confirm:" in output and "nothing was destroyed" in output
    assert statuses(options, capsys)  # still there

    status, output = on_a_terminal(argv, "app")
    assert status == 0, output
    assert "keyset 'app': deleted the sealed copies of 2 keys" in output
    assert main(["keystore", "list", *options, "--keyset", "app"]) == 1
    assert "keyset_destroyed" in capsys.readouterr().err


def test_destroy_keyset_needs_yes_without_a_terminal(store: Tuple[List[str], str], capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    options, _ = store
    result = subprocess.run([CONSOLE_SCRIPT, "keystore", "destroy-keyset", *options, "--keyset", "app"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert "cannot be undone: confirm with --yes" in result.stderr and result.stderr.count("\n") == 1
    assert statuses(options, capsys)  # nothing was destroyed

    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("app\n"))  # not a terminal, whatever it holds
    with pytest.raises(SystemExit) as raised:
        main(["keystore", "destroy-keyset", *options, "--keyset", "app"])
    assert raised.value.code == 2
    assert main(["keystore", "destroy-keyset", *options, "--keyset", "app", "--yes"]) == 0
    assert "deleted the sealed copies of 2 keys" in capsys.readouterr().out

    # Nothing (left) to destroy: a failure, not "destroyed 0 keys".
    for keyset in ("app", "nobody"):
        assert main(["keystore", "destroy-keyset", *options, "--keyset", keyset, "--yes"]) == 1
        captured = capsys.readouterr()
        assert f"has no keyset {keyset!r} to destroy" in captured.err and captured.out == ""


def test_rotate_adds_a_decrypt_only_key_and_prints_the_promote_command(
    store: Tuple[List[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    options, _ = store
    (first,) = statuses(options, capsys)
    assert main(["keystore", "rotate", *options, "--keyset", "app"]) == 0
    out = capsys.readouterr().out
    assert "decrypt-only for now" in out and "within one TTL" in out
    now = statuses(options, capsys)
    (added,) = set(now) - {first}
    assert now == {first: "active", added: "decrypt_only"}  # readers learn it before anyone writes with it

    command = next(line.strip() for line in out.splitlines() if line.strip().startswith("pynamodb-stash keystore"))
    argv = shlex.split(command)
    assert argv[:3] == ["pynamodb-stash", "keystore", "promote"] and ["--key-id", added] == argv[7:9]
    assert main(argv[1:]) == 0  # the printed command runs as printed
    assert statuses(options, capsys) == {first: "decrypt_only", added: "active"}

    assert main(["keystore", "rotate", *options, "--keyset", "app", "--promote-now"]) == 0
    out = capsys.readouterr().out
    assert "is now the active key (added and promoted at once)" in out
    assert sorted(statuses(options, capsys).values()) == ["active", "decrypt_only", "decrypt_only"]


def test_add_key_prints_the_promote_command_too(store: Tuple[List[str], str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    options, _ = store
    assert main(["keystore", "add-key", *options, "--keyset", "app"]) == 0
    out: Any = capsys.readouterr().out
    assert "added decrypt-only key k-" in out and "pynamodb-stash keystore promote" in out
