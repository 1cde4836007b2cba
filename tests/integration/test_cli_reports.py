"""Reports say what happened (issue 16, point 15) and when the keyring is another one (point 7): failing
items by primary key, "would rewrite" in a dry run, no "rewritten" where nothing is written, plaintext
counted as such, and progress driven by the clock with an estimate of the time left. No output holds a
value, a ciphertext, an HMAC or a key."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import boto3
import pytest
from stashtest import secret_forms

from pynamodb_stash import Keyring
from pynamodb_stash._cli import main
from pynamodb_stash._cli_report import Progress
from pynamodb_stash.operations import Report, encrypt_existing

CONSOLE_SCRIPT = str(Path(sys.executable).with_name("pynamodb-stash"))
ITEMS = 40

MODELS = """
    from pynamodb.attributes import UnicodeAttribute
    from pynamodb.models import Model
    from pynamodb_stash import EncryptedAttribute, EncryptedModel

    class Legacy(Model):
        class Meta:
            table_name = {table!r}
            host = {host!r}
            region = "us-east-1"

        pk = UnicodeAttribute(hash_key=True)
        email = UnicodeAttribute()
        name = UnicodeAttribute()

    class Member(EncryptedModel):
        class Meta:
            table_name = {table!r}
            host = {host!r}
            region = "us-east-1"
            plaintext_policy = "read_plaintext"

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True)
        name = EncryptedAttribute(str)

    class Account(EncryptedModel):
        class Meta:
            table_name = {table!r} + "-accounts"
            host = {host!r}
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"

        email = EncryptedAttribute(str, equality=True, hash_key=True)
        note = EncryptedAttribute(str)
"""


class App:
    def __init__(self, module: Any, name: str, keyring: Keyring, url: str, directory: Path) -> None:
        self.module, self.name, self.keyring, self.url, self.directory = module, name, keyring, url, directory
        self.client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")

    def target(self, model: str = "Member") -> List[str]:
        return [f"{self.name}:{model}", "--endpoint", self.url]

    def raw(self, table: str = "") -> Dict[str, Dict[str, Any]]:
        table = table or self.module.Member.Meta.table_name
        items = self.client.scan(TableName=table, ConsistentRead=True)["Items"]
        return {(item["pk"] if "pk" in item else item["email__hmac"])["S"]: item for item in items}

    def assert_nothing_secret(self, text: str, *tables: str) -> None:
        """No plaintext, ciphertext, HMAC or key byte of the app's tables and keyring is in ``text``."""
        blobs: List[bytes] = []
        hmacs: List[str] = []
        for table in tables or (self.module.Member.Meta.table_name,):
            for item in self.raw(table).values():
                for name, value in item.items():
                    if name.endswith("__source"):
                        blobs.append(bytes(value["B"]))
                    elif name.endswith("__hmac"):
                        hmacs.append(value["S"])
        assert blobs or hmacs
        for form in secret_forms(*blobs, *secrets_of(self.keyring), min_length=12):
            assert form not in text
        assert not [h for h in hmacs if h in text]
        assert "@example.com" not in text and "Person " not in text


def secrets_of(keyring: Keyring) -> List[bytes]:
    import base64
    import json

    payload = keyring.export_secret_string().split(":", 2)[2]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return [base64.urlsafe_b64decode(k + "=" * (-len(k) % 4)) for k in [*data["keys"].values(), data["index"]["key"]]]


@pytest.fixture
def app(ddb_url: str, table_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    """A legacy plaintext table of ITEMS members, and the module declaring its models."""
    name = f"cli_reports_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODELS).format(table=table_name, host=ddb_url))
    keyring = Keyring.generate(key_id="k-ours", index_key_id="idx-ours")
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", keyring.export_secret_string())
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    module.Legacy.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    with module.Legacy.batch_write() as batch:
        for i in range(ITEMS):
            batch.save(module.Legacy(pk=f"m{i:03d}", email=f"person{i}@example.com", name=f"Person {i}"))
    try:
        yield App(module, name, keyring, ddb_url, tmp_path)
    finally:
        module.Legacy.delete_table()
        sys.modules.pop(name, None)


def cli(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> Tuple[str, str]:
    assert main(list(argv)) == status
    out, err = capsys.readouterr()
    return out, err


def test_verify_names_the_failing_items_by_primary_key(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    encrypt_existing(app.module.Member)
    items = app.raw()
    swapped = dict(items["m003"], name__source=items["m004"]["name__source"])  # another item's ciphertext
    orphan = {k: v for k, v in items["m007"].items() if k != "email__source"}  # an HMAC without its value
    for item in (swapped, orphan):
        app.client.put_item(TableName=app.module.Member.Meta.table_name, Item=item)
    out, err = cli(capsys, "verify", *app.target(), "--segments", "2", status=1)
    assert "failed: decryption_failed: 1, hmac_without_value: 1" in out
    assert "failed items (2):" in out and "  pk='m003': decryption_failed" in out
    assert "  pk='m007': hmac_without_value" in out
    assert "rewritten" not in out and "would rewrite" not in out
    app.assert_nothing_secret(out + err)


def test_an_item_keyed_by_an_hmac_is_named_without_it(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    Account = app.module.Account
    Account.create_table(wait=True)
    try:
        for i in range(5):
            Account(f"owner{i}@example.com", note=f"Person {i}'s note").save()
        table = Account.Meta.table_name
        items = list(app.raw(table).values())
        items[2]["note__source"] = items[3]["note__source"]
        app.client.put_item(TableName=table, Item=items[2])
        out, err = cli(capsys, "verify", *app.target("Account"), status=1)
        assert re.search(r"^  item with HMAC key email__hmac, scan position [1-5]: decryption_failed$", out, re.M)
        app.assert_nothing_secret(out + err, table)
    finally:
        Account.delete_table()


def test_a_dry_run_says_would_rewrite_and_status_scan_rewrites_nothing(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = cli(capsys, "encrypt-existing", *app.target(), "--dry-run")
    assert f"scanned {ITEMS}: would rewrite {ITEMS}, already encrypted 0" in out and "rewritten" not in out
    assert all("email" in item for item in app.raw().values())  # nothing written

    cli(capsys, "encrypt-existing", *app.target())
    out, err = cli(capsys, "status", *app.target(), "--scan")
    assert f"scanned {ITEMS}: {ITEMS} read and authenticated, still in plaintext 0; failed: none" in out
    assert "rewritten" not in out and "values by key id: k-ours: 80" in out
    app.assert_nothing_secret(out + err)


def test_rotate_counts_plaintext_items_as_plaintext(app: App, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    encrypt_existing(app.module.Member, segment=0, total_segments=2)  # half the table; the rest is plaintext
    encrypted = sum("email__source" in item for item in app.raw().values())
    assert 0 < encrypted < ITEMS
    rotated = app.keyring.with_new_primary(bytes(range(1, 33)), key_id="k-next")
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", rotated.export_secret_string())
    out, _ = cli(capsys, "rotate", *app.target())
    assert (f"scanned {ITEMS}: rewritten {encrypted}, already under the primary key 0, "
            f"still in plaintext {ITEMS - encrypted} (run encrypt-existing)") in out
    out, _ = cli(capsys, "rotate", *app.target(), "--dry-run")
    assert f"would rewrite 0, already under the primary key {encrypted}, still in plaintext {ITEMS - encrypted}" in out
    out, _ = cli(capsys, "verify", *app.target())
    assert f"{encrypted} read and authenticated, still in plaintext {ITEMS - encrypted} (run encrypt-existing)" in out


def test_another_keyring_is_said_to_be_another(app: App, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    encrypt_existing(app.module.Member)
    other = Keyring.generate(key_id="k-theirs", index_key_id="idx-theirs")
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", other.export_secret_string())
    note = "no stored value is under a key of this keyring (key ids found: k-ours; keyring holds: k-theirs)"
    for command in (["verify", *app.target()], ["status", *app.target(), "--scan"]):
        out, err = cli(capsys, *command, status=1)
        assert note in out and f"failed: key_not_found: {ITEMS}" in out
        assert out.count("\n  pk='m") == ITEMS
        app.assert_nothing_secret(out + err)
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", app.keyring.export_secret_string())
    out, _ = cli(capsys, "verify", *app.target())
    assert "no stored value" not in out


def test_progress_is_timed_not_paged_and_estimates_the_time_left(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    out, err = cli(capsys, "encrypt-existing", *app.target(), "--max-write-rate", "10")  # ~4 s, one page
    elapsed = time.monotonic() - started
    lines = [line for line in err.splitlines() if line.startswith("... scanned ")]
    assert 1 <= len(lines) <= elapsed / 2 + 1, err
    assert re.fullmatch(rf"\.\.\. scanned \d+ of ~{ITEMS} \(\d+%\): rewritten \d+, failed 0; \d+ items/s, about "
                        r"\d+ s left", lines[0]), lines[0]
    assert f"rewritten {ITEMS}" in out

    started = time.monotonic()
    _, err = cli(capsys, "rotate", *app.target(), "--page-size", "1", "--max-write-rate", "1000")
    lines = [line for line in err.splitlines() if line.startswith("... ")]
    assert len(lines) <= (time.monotonic() - started) / 2 + 1  # not a line per page


def test_progress_on_a_terminal_ends_its_line_before_the_summary(app: App) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(app.directory), os.environ.get("PYTHONPATH", "")])}
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [CONSOLE_SCRIPT, "encrypt-existing", *app.target(), "--max-write-rate", "15"],
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, close_fds=True,
    )
    os.close(slave)
    output = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        try:
            chunk = os.read(master, 4096) if ready else b""
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert process.wait(timeout=30) == 0
    text = output.decode().replace("\r\n", "\n")
    assert re.search(rf"\rscanned \d+ of ~{ITEMS} \(\d+%\): rewritten", text), text  # redrawn in place
    summary = text.index(f"scanned {ITEMS}: rewritten {ITEMS}")
    assert text[summary - 1] == "\n"  # on a line of its own, not after the progress line
    app.assert_nothing_secret(text)


def test_the_progress_line() -> None:
    progress = Progress(sys.stderr, expected=1000)
    report = Report("rotate", dry_run=True, scanned=250, rewritten=200)
    report.failures["decryption_failed"] += 2
    assert progress.line(None, 1.0) == "scanned 0 of ~1000 (0%); 0 items/s"
    assert progress.line(report, 5.0) == (
        "scanned 250 of ~1000 (25%): would rewrite 200, failed 2; 50 items/s, about 15 s left"
    )
    assert progress.line(Report("verify", scanned=250), 100.0).endswith("2 items/s, about 5 min 0 s left")
    assert "more items than the table's approximate count" in progress.line(Report(scanned=1200), 10.0)
    unknown = Progress(sys.stderr, expected=None)
    assert unknown.line(report, 5.0) == "scanned 250: would rewrite 200, failed 2; 50 items/s"
