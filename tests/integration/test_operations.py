"""Operations on live tables: plaintext policy, encrypt-existing, rotate, verify, status, hmac."""

from __future__ import annotations

import json
import random
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import boto3
import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from pynamodb_stash import ConfigurationError, DecryptionError, EncryptedAttribute, EncryptedModel, Keyring
from pynamodb_stash._cli import main
from pynamodb_stash.operations import encrypt_existing, rotate, status, verify

ITEMS = 40


def models(url: str, table: str, keyring: Keyring, policy: str = "read_plaintext") -> Tuple[Any, Any]:
    class Legacy(Model):
        class Meta:
            table_name = table
            host = url
            region = "us-east-1"

        pk = UnicodeAttribute(hash_key=True)
        email = UnicodeAttribute()
        name = UnicodeAttribute()
        plan = UnicodeAttribute()

    class Member(EncryptedModel):
        class Meta:
            table_name = table
            host = url
            region = "us-east-1"
            plaintext_policy = policy

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True)
        name = EncryptedAttribute(str)
        plan = UnicodeAttribute()

    Member.Meta.keyring = keyring  # type: ignore[attr-defined]
    return Legacy, Member


@pytest.fixture
def legacy_table(ddb_url: str, table_name: str) -> Iterator[Tuple[Any, Any, Keyring]]:
    keyring = Keyring.generate()
    Legacy, Member = models(ddb_url, table_name, keyring)
    Legacy.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    with Legacy.batch_write() as batch:
        for i in range(ITEMS):
            batch.save(Legacy(pk=f"m{i:03d}", email=f"person{i}@example.com", name=f"Person {i}", plan="free"))
    yield Legacy, Member, keyring
    Legacy.delete_table()


def raw_items(model: Any) -> Dict[str, Dict[str, Any]]:
    client = boto3.client("dynamodb", endpoint_url=model.Meta.host, region_name="us-east-1")
    items = client.scan(TableName=model.Meta.table_name, ConsistentRead=True)["Items"]
    return {item["pk"]["S"]: item for item in items}


def assert_all_encrypted(model: Any) -> None:
    for item in raw_items(model).values():
        assert "email" not in item and "name" not in item
        assert "email__source" in item and "email__hmac" in item and "name__source" in item
        assert b"Person" not in item["name__source"]["B"]


def test_the_plaintext_policy(ddb_url: str, legacy_table: Tuple[Any, Any, Keyring]) -> None:
    _, Member, keyring = legacy_table
    assert Member.get("m001").name == "Person 1"  # read_plaintext
    _, Strict = models(ddb_url, Member.Meta.table_name, keyring, policy="forbid")
    with pytest.raises(DecryptionError) as raised:
        Strict.get("m001")
    assert raised.value.code == "plaintext_found" and "Person" not in str(raised.value)
    _, Wrong = models(ddb_url, Member.Meta.table_name, keyring, policy="maybe")
    with pytest.raises(ConfigurationError):
        Wrong.get("m001")


def test_encrypt_existing_is_complete_and_idempotent(legacy_table: Tuple[Any, Any, Keyring]) -> None:
    _, Member, _ = legacy_table
    dry = encrypt_existing(Member, dry_run=True)
    assert (dry.scanned, dry.rewritten) == (ITEMS, ITEMS) and "email" in raw_items(Member)["m000"]

    report = encrypt_existing(Member, segments=3)
    assert (report.scanned, report.rewritten, report.ok) == (ITEMS, ITEMS, True)
    assert_all_encrypted(Member)
    assert Member.get("m007").email == "person7@example.com"
    assert [m.pk for m in Member.scan(Member.email == "person7@example.com")] == ["m007"]
    assert raw_items(Member)["m007"]["plan"] == {"S": "free"}  # plain attributes untouched

    again = encrypt_existing(Member)
    assert (again.scanned, again.rewritten, again.unchanged) == (ITEMS, 0, ITEMS)


def test_no_concurrent_write_is_lost(legacy_table: Tuple[Any, Any, Keyring]) -> None:
    _, Member, _ = legacy_table
    last: Dict[str, str] = {}
    stop = threading.Event()

    def application() -> None:
        generator = random.Random(7)
        n = 0
        while not stop.is_set() or n < 60:
            pk = f"m{generator.randrange(ITEMS):03d}"
            n += 1
            value = f"written {n}"
            if n % 2:
                Member(pk=pk, email=f"{pk}@example.com", name=value, plan="pro").save()
            else:
                Member.get(pk, consistent_read=True).update(actions=[Member.name.set(value)])
            last[pk] = value

    writer = threading.Thread(target=application)
    writer.start()
    try:
        report = encrypt_existing(Member, segments=4, page_size=3)
    finally:
        stop.set()
        writer.join()
    # An application update() of one attribute mid-migration leaves the others in plaintext beside it:
    # the state a table writer would forge, so the backfill reports such items and leaves them.
    assert set(report.failures) <= {"suspicious_plaintext"}
    suspicious = encrypt_existing(Member)  # also finishes items the application touched after the scan
    assert set(suspicious.failures) <= {"suspicious_plaintext"}
    finished = encrypt_existing(Member, trust_suspicious=True)  # the operator knows the application did it
    assert finished.ok and finished.rewritten == suspicious.failures["suspicious_plaintext"]
    assert_all_encrypted(Member)
    for pk, value in last.items():
        assert Member.get(pk, consistent_read=True).name == value


def test_an_interrupted_run_resumes_from_its_checkpoint(
    legacy_table: Tuple[Any, Any, Keyring], tmp_path: Path
) -> None:
    _, Member, _ = legacy_table
    checkpoint = tmp_path / "run.json"

    def stop_after_two_pages(report: Any) -> None:
        if report.scanned >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encrypt_existing(Member, checkpoint=str(checkpoint), page_size=5, progress=stop_after_two_pages)
    saved = json.loads(checkpoint.read_text())
    assert saved["table"] == Member.Meta.table_name and saved["segments"]["0"]["done"] is False

    rest = encrypt_existing(Member, checkpoint=str(checkpoint), page_size=5)
    # The page being processed when it stopped is read again (its items, already done, are unchanged).
    assert (rest.scanned, rest.rewritten, rest.unchanged) == (ITEMS - 5, ITEMS - 10, 5)
    assert_all_encrypted(Member)
    finished = encrypt_existing(Member, checkpoint=str(checkpoint))
    assert finished.scanned == 0  # the checkpoint says every segment is done


def test_a_checkpoint_of_another_table_is_refused(
    ddb_url: str, legacy_table: Tuple[Any, Any, Keyring], tmp_path: Path
) -> None:
    _, Member, keyring = legacy_table
    checkpoint = tmp_path / "other.json"
    checkpoint.write_text(json.dumps({"table": "another", "total_segments": 1, "segments": {}}))
    with pytest.raises(ConfigurationError):
        encrypt_existing(Member, checkpoint=str(checkpoint))
    checkpoint.write_text("not json")
    with pytest.raises(ConfigurationError):
        encrypt_existing(Member, checkpoint=str(checkpoint))


def test_workers_split_the_table_by_segment(legacy_table: Tuple[Any, Any, Keyring]) -> None:
    _, Member, _ = legacy_table
    reports = [encrypt_existing(Member, segment=i, total_segments=3) for i in range(3)]
    assert sum(r.scanned for r in reports) == ITEMS and sum(r.rewritten for r in reports) == ITEMS
    assert_all_encrypted(Member)
    with pytest.raises(ConfigurationError):
        encrypt_existing(Member, segment=3, total_segments=3)


def test_rotate_moves_every_value_to_the_primary_key(ddb_url: str, legacy_table: Tuple[Any, Any, Keyring]) -> None:
    _, Member, keyring = legacy_table
    encrypt_existing(Member)
    before = raw_items(Member)
    rotated = keyring.with_new_primary(bytes(range(32)), key_id="k2")
    Member.Meta.keyring = rotated
    assert verify(Member).key_ids == {"k1": ITEMS * 2}
    report = rotate(Member, segments=2)
    assert (report.rewritten, report.ok) == (ITEMS, True)
    assert verify(Member).key_ids == {"k2": ITEMS * 2}
    after = raw_items(Member)
    assert all(after[pk]["email__hmac"] == before[pk]["email__hmac"] for pk in before)  # HMACs unchanged
    assert rotate(Member).rewritten == 0


def test_verify_reports_failures_by_reason(legacy_table: Tuple[Any, Any, Keyring]) -> None:
    _, Member, _ = legacy_table
    encrypt_existing(Member)
    client = boto3.client("dynamodb", endpoint_url=Member.Meta.host, region_name="us-east-1")
    item = raw_items(Member)["m003"]
    item["name__source"] = raw_items(Member)["m004"]["name__source"]
    client.put_item(TableName=Member.Meta.table_name, Item=item)
    report = verify(Member, segments=2)
    assert report.scanned == ITEMS and dict(report.failures) == {"decryption_failed": 1} and not report.ok


def test_status_lists_the_schema_without_values(legacy_table: Tuple[Any, Any, Keyring]) -> None:
    _, Member, _ = legacy_table
    rows = {row["attribute"]: row for row in status(Member)}
    assert rows["email"]["stored as"] == "email__source, email__hmac" and rows["email"]["equality"] == "yes"
    assert rows["name"]["encrypted"] == "yes" and rows["plan"]["encrypted"] == "no"
    assert rows["pk"]["keys"] == "table hash key"


@pytest.fixture
def model_module(ddb_url: str, table_name: str, legacy_table: Any, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> str:
    _, Member, keyring = legacy_table
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", keyring.export_secret_string())
    (tmp_path / "ops_app_models.py").write_text(textwrap.dedent(f"""
        from pynamodb.attributes import UnicodeAttribute
        from pynamodb.models import Model
        from pynamodb_stash import EncryptedAttribute, EncryptedModel

        class Member(EncryptedModel):
            class Meta:
                table_name = {table_name!r}
                host = "http://127.0.0.1:1"
                region = "us-east-1"
                plaintext_policy = "read_plaintext"

            pk = UnicodeAttribute(hash_key=True)
            email = EncryptedAttribute(str, equality=True)
            name = EncryptedAttribute(str)
            plan = UnicodeAttribute()

        class Missing(Member):
            class Meta(Member.Meta):
                table_name = "no-such-table"

        class Plain(Model):
            class Meta:
                table_name = {table_name!r}
            pk = UnicodeAttribute(hash_key=True)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ops_app_models", raising=False)  # each test's module, on its own table
    return "ops_app_models"


def test_the_commands(model_module: str, ddb_url: str, legacy_table: Any,
                      capsys: pytest.CaptureFixture[str]) -> None:
    _, Member, _ = legacy_table
    target = [f"{model_module}:Member", "--endpoint", ddb_url]
    assert main(["status", *target]) == 0
    assert "email__source, email__hmac" in capsys.readouterr().out
    assert main(["encrypt-existing", *target, "--segments", "2", "--max-write-rate", "1000"]) == 0
    assert f"rewritten {ITEMS}" in capsys.readouterr().out
    assert main(["verify", *target]) == 0
    out = capsys.readouterr().out
    assert "failed: none" in out and "Person" not in out
    assert main(["hmac", *target, "email", "person1@example.com"]) == 0
    assert capsys.readouterr().out.strip() == Member.email.hmac("person1@example.com")


@pytest.mark.parametrize(
    ("target", "message", "status"),
    [
        ("no_such_module_xyz:Member", "cannot import no_such_module_xyz: no module named 'no_such_module_xyz'", 1),
        ("{module}:Plain", "is not an EncryptedModel (it is a PynamoDB Model)", 1),
        ("{module}:Nope", "module {module} has no attribute 'Nope' (its EncryptedModel classes: Member, Missing)", 1),
        ("{module}:Missing", "table 'no-such-table' does not exist at", 1),
        ("{module}", "is not MODULE:Model", 2),
    ],
)
def test_bad_command_input_is_one_line(model_module: str, ddb_url: str, target: str, message: str, status: int,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["verify", target.format(module=model_module), "--endpoint", ddb_url]
    if status == 2:
        with pytest.raises(SystemExit) as raised:
            main(argv)
        assert raised.value.code == 2 and message in str(raised.value)
    else:
        assert main(argv) == status
    err = capsys.readouterr().err
    assert message.format(module=model_module) in err and err.count("\n") == 1


def test_killed_with_sigkill_and_run_again_it_finishes(
    model_module: str, ddb_url: str, legacy_table: Any, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    _, Member, keyring = legacy_table
    checkpoint = tmp_path / "killed.json"
    command = [
        sys.executable, "-m", "pynamodb_stash._cli", "encrypt-existing", f"{model_module}:Member",
        "--endpoint", ddb_url, "--checkpoint", str(checkpoint), "--page-size", "2", "--max-write-rate", "40",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert worker.returncode == -signal.SIGKILL and checkpoint.exists()
    assert 0 < sum("email__source" in item for item in raw_items(Member).values()) < ITEMS

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert_all_encrypted(Member)
    assert [Member.get(f"m{i:03d}").name for i in range(ITEMS)] == [f"Person {i}" for i in range(ITEMS)]


def test_rehash_moves_every_hmac_to_a_new_index_key(legacy_table: Tuple[Any, Any, Keyring]) -> None:
    _, Member, keyring = legacy_table
    encrypt_existing(Member)
    Member.Meta.keyring = keyring.with_new_index_key(bytes(range(32, 64)), key_id="idx2")
    assert Member.get("m005").email == "person5@example.com"  # old HMACs still verify (they are stored)
    assert list(Member.scan(Member.email == "person5@example.com")) == []  # but no longer match
    report = rotate(Member, rehash=True, segments=2)
    assert (report.rewritten, report.ok) == (ITEMS, True)
    assert [m.pk for m in Member.scan(Member.email == "person5@example.com")] == ["m005"]
    assert rotate(Member, rehash=True).rewritten == 0


def test_rehash_moves_items_whose_key_is_an_hmac(ddb_url: str, table_name: str) -> None:
    keyring = Keyring.generate()

    class Account(EncryptedModel):
        class Meta:
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"

        email = EncryptedAttribute(str, equality=True, hash_key=True)
        note = EncryptedAttribute(str)
        plan = UnicodeAttribute()

    Account.Meta.table_name = table_name
    Account.Meta.keyring = keyring  # type: ignore[attr-defined]
    Account.create_table(wait=True)
    try:
        for i in range(12):
            Account(f"user{i}@example.com", note=f"note {i}", plan="free").save()
        old_keys = set(raw_items_by(Account, "email__hmac"))
        Account.Meta.keyring = keyring.with_new_index_key(bytes(range(32, 64)), key_id="idx2")  # type: ignore[attr-defined]
        report = rotate(Account, rehash=True, segments=2)
        assert (report.rewritten, report.ok) == (12, True)
        new_keys = set(raw_items_by(Account, "email__hmac"))
        assert len(new_keys) == 12 and not new_keys & old_keys  # every item moved, none left behind
        assert Account.get("user3@example.com").note == "note 3"
        assert rotate(Account, rehash=True).rewritten == 0
    finally:
        Account.delete_table()


def raw_items_by(model: Any, key: str) -> Dict[str, Dict[str, Any]]:
    client = boto3.client("dynamodb", endpoint_url=model.Meta.host, region_name="us-east-1")
    items = client.scan(TableName=model.Meta.table_name, ConsistentRead=True)["Items"]
    return {item[key]["S"]: item for item in items}


def test_rotate_and_verify_cover_nested_maps_and_subclass_fields(ddb_url: str, table_name: str) -> None:
    from pynamodb.attributes import DiscriminatorAttribute, ListAttribute

    from pynamodb_stash import EncryptedMapAttribute

    class Address(EncryptedMapAttribute):
        street = EncryptedAttribute(str, equality=True)
        city = UnicodeAttribute()

    keyring = Keyring.generate()

    class Record(EncryptedModel, discriminator="record"):
        class Meta:
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"

        pk = UnicodeAttribute(hash_key=True)
        kind = DiscriminatorAttribute()
        name = EncryptedAttribute(str)
        address = Address(null=True)
        history = ListAttribute(of=Address, null=True)

    class Patient(Record, discriminator="patient"):
        ssn = EncryptedAttribute(str, equality=True, null=True)

    Record.Meta.table_name = table_name + "-records"
    Record.Meta.keyring = keyring  # type: ignore[attr-defined]
    Record.create_table(wait=True)
    try:
        Patient(pk="p1", name="Ann", ssn="123", address=Address(street="1 Main", city="X"),
                history=[Address(street="old", city="Y")]).save()
        Record(pk="r1", name="Bob").save()
        Record.Meta.keyring = keyring.with_new_primary(bytes(range(32)), key_id="k2")  # type: ignore[attr-defined]
        assert verify(Record).key_ids == {"k1": 5}  # two names, the ssn, the street and the old street
        report = rotate(Record)
        assert (report.rewritten, report.ok) == (2, True)
        assert verify(Record).key_ids == {"k2": 5}
        patient = Record.get("p1")
        assert (patient.ssn, patient.address.street, patient.history[0].street) == ("123", "1 Main", "old")
        assert rotate(Record).rewritten == 0

        Record.Meta.keyring = Record.Meta.keyring.with_new_index_key(bytes(range(64, 96)), key_id="idx2")  # type: ignore[attr-defined]
        assert rotate(Record, rehash=True).rewritten == 1  # only the patient has HMACs
        assert [p.pk for p in Record.scan(Patient.address.street == "1 Main")] == ["p1"]
    finally:
        Record.delete_table()


# -- a table writer without keys ------------------------------------------------------------------------


def test_encrypt_existing_does_not_launder_plaintext_planted_after_the_migration(
    model_module: str, ddb_url: str, legacy_table: Tuple[Any, Any, Keyring], capsys: pytest.CaptureFixture[str]
) -> None:
    """After a migration, someone deletes ``name__source`` and writes a plaintext ``name`` of their choice.
    Reads refuse it, without telling the operator to run encrypt-existing; encrypt-existing reports it and
    leaves it, so ``verify`` keeps failing; only the flag that names the risk encrypts it."""
    _, Member, keyring = legacy_table
    encrypt_existing(Member)
    client = boto3.client("dynamodb", endpoint_url=Member.Meta.host, region_name="us-east-1")
    planted = raw_items(Member)["m005"]
    del planted["name__source"]
    planted["name"] = {"S": "Mallory's choice"}
    client.put_item(TableName=Member.Meta.table_name, Item=planted)
    _, Strict = models(ddb_url, Member.Meta.table_name, keyring, policy="forbid")
    with pytest.raises(DecryptionError) as raised:
        Strict.get("m005")
    assert raised.value.code == "plaintext_found" and "encrypt-existing" not in str(raised.value)

    report = encrypt_existing(Member)
    assert dict(report.failures) == {"suspicious_plaintext": 1} and report.rewritten == 0
    assert raw_items(Member)["m005"] == planted  # left exactly as found
    assert dict(verify(Strict).failures) == {"plaintext_found": 1}
    target = [f"{model_module}:Member", "--endpoint", ddb_url]
    assert main(["encrypt-existing", *target]) == 1
    assert "suspicious_plaintext: 1" in capsys.readouterr().out

    assert main(["encrypt-existing", *target, "--trust-suspicious-plaintext"]) == 0
    assert Strict.get("m005").name == "Mallory's choice"  # the operator vouched for it


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda item: item.update(email={"S": "x@evil.example"}) or item.pop("email__source"), "plaintext_beside_hmac"),
        (lambda item: item.pop("email__source"), "hmac_without_value"),
    ],
    ids=["plaintext-beside-hmac", "hmac-without-value"],
)
def test_encrypt_existing_never_encrypts_beside_an_orphan_hmac(
    legacy_table: Tuple[Any, Any, Keyring], edit: Any, code: str
) -> None:
    _, Member, _ = legacy_table
    encrypt_existing(Member)
    client = boto3.client("dynamodb", endpoint_url=Member.Meta.host, region_name="us-east-1")
    item = raw_items(Member)["m006"]
    edit(item)
    client.put_item(TableName=Member.Meta.table_name, Item=item)
    for trust in (False, True):
        report = encrypt_existing(Member, trust_suspicious=trust)
        assert dict(report.failures) == {code: 1} and report.rewritten == 0
    assert raw_items(Member)["m006"] == item


def test_verify_and_status_count_malformed_items_instead_of_crashing(
    model_module: str, ddb_url: str, legacy_table: Tuple[Any, Any, Keyring], capsys: pytest.CaptureFixture[str]
) -> None:
    _, Member, _ = legacy_table
    encrypt_existing(Member)
    client = boto3.client("dynamodb", endpoint_url=Member.Meta.host, region_name="us-east-1")
    junk = raw_items(Member)["m001"]
    junk["junk__source"] = {"B": b"\x07not a ciphertext"}
    client.put_item(TableName=Member.Meta.table_name, Item=junk)
    odd = raw_items(Member)["m002"]
    odd["email__hmac"] = {"S": "\u00e9" * 22}
    client.put_item(TableName=Member.Meta.table_name, Item=odd)
    assert dict(verify(Member).failures) == {"malformed_ciphertext": 1, "malformed_hmac": 1}
    assert main(["status", f"{model_module}:Member", "--endpoint", ddb_url, "--scan"]) == 1
    out = capsys.readouterr().out
    assert "malformed_ciphertext: 1" in out and "malformed_hmac: 1" in out
