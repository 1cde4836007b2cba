"""`pynamodb-stash keygen`: unique key ids, so that a wrong keyring names the missing key (issue 16, point
7), and local keyring rotation: --rotate, --add-key, --promote, --drop-old (point 14)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
from pynamodb.attributes import UnicodeAttribute
from stashtest import created, table_meta

from pynamodb_stash import EncryptedAttribute, EncryptedModel, KeyNotFoundError, Keyring
from pynamodb_stash._cli import main

KEY_ID = re.compile(r"k-\d{8}-[0-9a-f]{8}")
INDEX_KEY_ID = re.compile(r"idx-\d{8}-[0-9a-f]{8}")
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("pynamodb-stash"))


def keygen(capsys: pytest.CaptureFixture[str], *argv: str) -> Tuple[Keyring, str, str]:
    assert main(["keygen", *argv]) == 0
    out, err = capsys.readouterr()
    return Keyring.from_string(out), out.strip(), err


def secrets_of(text: str) -> List[bytes]:
    """The secret key bytes of a keyring string (to check that no other output holds them)."""
    payload = text.strip().split(":", 2)[2]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    encoded = [*data["keys"].values(), data["index"]["key"]]
    return [base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)) for key in encoded]


def assert_no_key_bytes(output: str, *keyrings: str) -> None:
    for secret in (s for ring in keyrings for s in secrets_of(ring)):
        b64, urlsafe = base64.b64encode(secret).decode(), base64.urlsafe_b64encode(secret).decode()
        for form in (secret.hex(), b64[:16], urlsafe[:16]):
            assert form not in output


def test_keygen_makes_unique_valid_key_ids(capsys: pytest.CaptureFixture[str]) -> None:
    first, _, _ = keygen(capsys)
    second, _, _ = keygen(capsys)
    for keyring in (first, second):
        assert KEY_ID.fullmatch(keyring.primary_key_id) and INDEX_KEY_ID.fullmatch(keyring.index_key_id)
    assert first.primary_key_id != second.primary_key_id and first.index_key_id != second.index_key_id
    chosen, _, _ = keygen(capsys, "--key-id", "2026-11", "--index-key-id", "idx-a")
    assert (chosen.primary_key_id, chosen.index_key_id) == ("2026-11", "idx-a")
    with pytest.raises(SystemExit) as raised:
        main(["keygen", "--key-id", "has space"])
    assert raised.value.code == 2 and "1 to 64 characters" in capsys.readouterr().err


@pytest.fixture
def secret_table(ddb_url: str, table_name: str) -> Iterator[Any]:
    class Secret(EncryptedModel):
        Meta = table_meta(ddb_url, table_name, None)
        pk = UnicodeAttribute(hash_key=True)
        value = EncryptedAttribute(str, equality=True)

    yield from created(Secret)


def test_a_wrong_keyring_says_the_key_is_not_in_it(secret_table: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Two keygen runs, two teams: a value of one read with the other's keyring names the missing key id,
    rather than looking like tampering ("not authentic")."""
    ours, _, _ = keygen(capsys)
    theirs, _, _ = keygen(capsys)
    secret_table.Meta.keyring = ours
    secret_table(pk="a", value="ours").save()
    secret_table.Meta.keyring = theirs
    with pytest.raises(KeyNotFoundError) as raised:
        secret_table.get("a")
    assert f"key id {ours.primary_key_id!r} is not in the keyring" in str(raised.value)


def test_rotate_prints_the_next_keyring(secret_table: Any, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    before, before_text, _ = keygen(capsys)
    secret_table.Meta.keyring = before
    secret_table(pk="old", value="written before").save()
    old_hmac = secret_table.value.hmac("written before")

    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", before_text)
    after, after_text, err = keygen(capsys, "--rotate")
    assert KEY_ID.fullmatch(after.primary_key_id) and after.primary_key_id != before.primary_key_id
    assert after.key_ids == (after.primary_key_id, before.primary_key_id)  # the old key, decrypt-only
    assert after.index_key_id == before.index_key_id
    assert f"decrypt-only: {before.primary_key_id}" in err and "pynamodb-stash rotate" in err and "--drop-old" in err
    assert_no_key_bytes(err, before_text, after_text)

    secret_table.Meta.keyring = after
    assert secret_table.get("old").value == "written before"  # old values read
    assert secret_table.value.hmac("written before") == old_hmac  # the same index key: lookups still work
    secret_table(pk="new", value="written after").save()
    secret_table.Meta.keyring = before
    with pytest.raises(KeyNotFoundError):
        secret_table.get("new")  # written under the new primary

    # From a file instead of the environment, with a chosen id.
    source = tmp_path / "keyring.txt"
    source.write_text(after_text + "\n")
    monkeypatch.delenv("PYNAMODB_STASH_KEYRING")
    third, _, _ = keygen(capsys, "--rotate", "--from-file", str(source), "--key-id", "k-third")
    assert third.key_ids == ("k-third", after.primary_key_id, before.primary_key_id)


def test_a_rolling_rotation_adds_promotes_then_drops(capsys: pytest.CaptureFixture[str]) -> None:
    """Through the console script, reading the keyring from standard input (`--from -`)."""
    start, start_text, _ = keygen(capsys)
    result = subprocess.run([CONSOLE_SCRIPT, "keygen", "--add-key", "--from", "-"], input=start_text + "\n",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    added = Keyring.from_string(result.stdout)
    assert added.primary_key_id == start.primary_key_id and len(added.key_ids) == 2  # new key: decrypt-only
    new_id = added.key_ids[1]
    assert f"keygen --promote {new_id}" in result.stderr

    result = subprocess.run([CONSOLE_SCRIPT, "keygen", "--promote", new_id, "--from", "-"], input=result.stdout,
                            capture_output=True, text=True, timeout=60)
    promoted = Keyring.from_string(result.stdout)
    assert promoted.key_ids == (new_id, start.primary_key_id)

    result = subprocess.run([CONSOLE_SCRIPT, "keygen", "--drop-old"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYNAMODB_STASH_KEYRING": result.stdout})
    dropped = Keyring.from_string(result.stdout)
    assert dropped.key_ids == (new_id,) and dropped.index_key_id == start.index_key_id
    assert_no_key_bytes(result.stderr, start_text, result.stdout)


def test_rotation_errors_are_one_line_without_key_material(capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYNAMODB_STASH_KEYRING", raising=False)
    assert main(["keygen", "--rotate"]) == 1
    err = capsys.readouterr().err
    assert "PYNAMODB_STASH_KEYRING" in err and "--from -" in err and err.count("\n") == 1

    _, text, _ = keygen(capsys)
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", text[:-3])  # damaged
    assert main(["keygen", "--rotate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pynamodb-stash: configuration_error: environment variable PYNAMODB_STASH_KEYRING")
    assert text.split(":")[-1][:12] not in err
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", text)
    assert main(["keygen", "--promote", "k-nope"]) == 1
    assert "'k-nope' is not an encryption key" in capsys.readouterr().err

    for argv, message in (
        (["--from-file", "x"], "--from-file reads the current keyring"),
        (["--rotate", "--index-key-id", "idx-2"], "a rotation keeps the index key"),
        (["--drop-old", "--key-id", "k-2"], "--key-id names a new key"),
        (["--rotate", "--drop-old"], "not allowed with argument"),
    ):
        with pytest.raises(SystemExit) as raised:
            main(["keygen", *argv])
        err = capsys.readouterr().err
        assert raised.value.code == 2 and message in err and err.count("\n") == 1
