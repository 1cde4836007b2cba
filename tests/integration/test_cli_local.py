"""Local commands stay local (issue 16, point 12): `hmac` and `status` without --scan make no request;
`hmac` takes nested paths, typed values and a value on standard input. And `status` shows nested
encrypted fields with their options (point 16)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Tuple

import boto3
import pytest

from pynamodb_stash import Keyring
from pynamodb_stash._cli import main

CONSOLE_SCRIPT = str(Path(sys.executable).with_name("pynamodb-stash"))

MODELS = """
    from datetime import date, datetime
    from decimal import Decimal

    from pynamodb.attributes import ListAttribute, UnicodeAttribute
    from pynamodb_stash import EncryptedAttribute, EncryptedMapAttribute, EncryptedModel, Equality


    def squeeze(text):
        return " ".join(text.split())


    class Address(EncryptedMapAttribute):
        street = EncryptedAttribute(str, equality=True)
        city = UnicodeAttribute(null=True)


    class Profile(EncryptedMapAttribute):
        address = Address(null=True)
        diary = EncryptedAttribute(str, identity_bound=True, null=True)


    class Customer(EncryptedModel):
        class Meta:
            table_name = {table!r}
            host = "http://127.0.0.1:9"  # nothing listens: a request would fail
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=Equality(normalize=("trim", "lower"), prefix="EMAIL#"))
        nick = EncryptedAttribute(str, equality=Equality(normalize=squeeze))
        tier = EncryptedAttribute(str, equality=Equality(hmac_bits=64), null=True)
        contact = EncryptedAttribute(str, equality=True, hmac_scope="contacts", null=True)
        born = EncryptedAttribute(date, equality=True, null=True)
        seen = EncryptedAttribute(datetime, equality=True, null=True)
        balance = EncryptedAttribute(Decimal, equality=True, null=True)
        visits = EncryptedAttribute(int, equality=True, null=True)
        active = EncryptedAttribute(bool, equality=True, null=True)
        token = EncryptedAttribute(bytes, equality=True, null=True)
        notes = EncryptedAttribute(str, null=True)
        plan = UnicodeAttribute(null=True)
        address = Address(null=True)
        profile = Profile(null=True)
        history = ListAttribute(of=Address, null=True)
"""


@pytest.fixture
def app(tmp_path: Path, table_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tuple[str, Any, Keyring]]:
    """A module of the user's, with its models; the keyring in the environment, as keygen prints it."""
    name = f"cli_local_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODELS).format(table=table_name))
    keyring = Keyring.generate(key_id="k-local", index_key_id="idx-local")
    monkeypatch.setenv("PYNAMODB_STASH_KEYRING", keyring.export_secret_string())
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    yield f"{name}:Customer", module.Customer, keyring
    sys.modules.pop(name, None)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a local command opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def hmac(capsys: pytest.CaptureFixture[str], target: str, *argv: str) -> str:
    assert main(["hmac", target, *argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out.strip()


def test_status_is_local_and_shows_nested_fields_with_their_options(
    app: Tuple[str, Any, Keyring], no_network: None, capsys: pytest.CaptureFixture[str]
) -> None:
    target, _, _ = app
    assert main(["status", target]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line and not line.startswith("keyring:")}
    header = out.splitlines()[0].split()
    assert header[:3] == ["attribute", "type", "encrypted"] and "options" in header
    assert "email__source, email__hmac" in rows["email"] and "normalize=trim+lower, prefix='EMAIL#'" in rows["email"]
    assert "normalize=squeeze" in rows["nick"]
    assert "hmac_bits=64" in rows["tier"] and "hmac_scope='contacts'" in rows["contact"]
    assert rows["born"].split()[1] == "date" and rows["balance"].split()[1] == "Decimal"
    assert " fields " in rows["address"] and " fields " in rows["profile"] and " fields " in rows["history"]
    # Nested fields, at any depth and in lists of maps, by Python path, with where they are stored.
    assert "address.street__source, address.street__hmac" in rows["address.street"]
    assert "profile.address.street__source, profile.address.street__hmac" in rows["profile.address.street"]
    assert "identity_bound" in rows["profile.diary"] and "profile.diary__hmac" not in rows["profile.diary"]
    assert "history[].street__source, history[].street__hmac" in rows["history[].street"]
    assert "address.city" not in rows  # plain fields of a map are not encrypted fields
    assert "keyring: primary k-local; decrypt-only: none; index key idx-local" in out


def test_status_does_not_read_a_key_store(app: Tuple[str, Any, Keyring], no_network: None,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    class Remote:
        """A keyring source that would have to make a request, as a KMS key store's does."""

        def current(self) -> Keyring:
            raise AssertionError("status must not read the keyring source")

        def __repr__(self) -> str:
            return "Remote()"

    target, Customer, _ = app
    Customer.Meta.keyring = Remote()
    assert main(["status", target]) == 0
    assert "keyring: Remote() (not read: status reads no key store; status --scan does)" in capsys.readouterr().out
    Customer.Meta.keyring = Keyring.from_env()  # the library's own: read, as it is local
    assert main(["status", target]) == 0
    assert "keyring: primary k-local; decrypt-only: none" in capsys.readouterr().out


def test_hmac_of_a_tenant(app: Tuple[str, Any, Keyring], no_network: None, capsys: pytest.CaptureFixture[str]) -> None:
    from pynamodb_stash import TenantKeyrings, tenant

    target, Customer, _ = app
    keyrings = {name: Keyring.generate() for name in ("acme", "initech")}
    Customer.Meta.keyring = TenantKeyrings(keyrings.__getitem__)
    by_tenant = {name: hmac(capsys, target, "email", "ann@example.com", "--tenant", name) for name in keyrings}
    for name, digest in by_tenant.items():
        with tenant(name):
            assert digest == Customer.email.hmac("ann@example.com")
    assert by_tenant["acme"] != by_tenant["initech"]
    assert main(["hmac", target, "email", "ann@example.com"]) == 1  # whose keys? the library says
    assert capsys.readouterr().err.startswith("pynamodb-stash: configuration_error: ")


def test_hmac_is_local_and_reaches_nested_fields(
    app: Tuple[str, Any, Keyring], ddb_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target, Customer, _ = app
    Customer.Meta.host = ddb_url
    Customer._connection = None
    Customer.create_table(wait=True)
    try:
        street = "1 Secret Lane"
        Customer(
            pk="c1", email="Ann@Example.com", nick="ann", address={"street": street},
            profile={"address": {"street": street}}, history=[{"street": "0 Old Road"}, {"street": street}],
        ).save()
        stored = boto3.client("dynamodb", endpoint_url=ddb_url, region_name="us-east-1").get_item(
            TableName=Customer.Meta.table_name, Key={"pk": {"S": "c1"}})["Item"]
    finally:
        Customer.delete_table()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("hmac opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    # Top level: the prefix and normalization apply, as for a query.
    assert hmac(capsys, target, "email", " ANN@example.com") == stored["email__hmac"]["S"]
    assert hmac(capsys, target, "email", "ann@example.com") == Customer.email.hmac("ann@example.com")
    # A field of an EncryptedMapAttribute, at depth 1 and 2, and in a list of them (by either spelling).
    assert hmac(capsys, target, "address.street", street) == stored["address"]["M"]["street__hmac"]["S"]
    assert hmac(capsys, target, "address.street", street) == Customer.address.street.hmac(street)
    nested = stored["profile"]["M"]["address"]["M"]["street__hmac"]["S"]
    assert hmac(capsys, target, "profile.address.street", street) == nested
    in_list = stored["history"]["L"][1]["M"]["street__hmac"]["S"]
    assert hmac(capsys, target, "history.street", street) == in_list
    assert hmac(capsys, target, "history[].street", street) == in_list


def test_hmac_reads_values_by_the_declared_type_or_type(
    app: Tuple[str, Any, Keyring], no_network: None, capsys: pytest.CaptureFixture[str]
) -> None:
    target, Customer, _ = app
    assert hmac(capsys, target, "born", "2001-02-03") == Customer.born.hmac(date(2001, 2, 3))
    assert hmac(capsys, target, "seen", "2026-01-31T09:30:00Z") == Customer.seen.hmac(
        datetime(2026, 1, 31, 9, 30, tzinfo=timezone.utc))
    assert hmac(capsys, target, "balance", "12.50") == Customer.balance.hmac(Decimal("12.5"))
    assert hmac(capsys, target, "visits", "42") == Customer.visits.hmac(42)
    assert hmac(capsys, target, "active", "false") == Customer.active.hmac(False)
    assert hmac(capsys, target, "token", "00ff10") == Customer.token.hmac(b"\x00\xff\x10")
    assert hmac(capsys, target, "tier", "gold") == Customer.tier.hmac("gold")
    # --type reads the text as another type; the attribute then checks it as it does any value.
    assert hmac(capsys, target, "balance", "7", "--type", "decimal") == Customer.balance.hmac(Decimal(7))
    assert main(["hmac", target, "visits", "7", "--type", "str"]) == 1
    assert "expected int, got str" in capsys.readouterr().err

    for field, text, kind in (("born", "31/12/2001-secret", "date"), ("visits", "forty-two-secret", "int"),
                              ("seen", "2026-01-31T09:30:00-secret", "datetime"), ("active", "maybe-secret", "bool"),
                              ("token", "zz-secret", "bytes-hex"), ("balance", "1,5-secret", "decimal")):
        assert main(["hmac", target, field, text]) == 1
        err = capsys.readouterr().err
        assert f"not a valid {kind}" in err and "secret" not in err and err.count("\n") == 1
    assert main(["hmac", target, "seen", "2026-01-31T09:30:00"]) == 1  # no offset: which instant?
    assert "not a valid datetime" in capsys.readouterr().err
    assert main(["hmac", target, "visits", "1.5-secret", "--type", "float"]) == 1
    assert "not a valid float" in capsys.readouterr().err


def test_hmac_names_what_is_wrong_with_the_attribute(app: Tuple[str, Any, Keyring], no_network: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    target, _, _ = app
    assert main(["hmac", target, "emial", "x"]) == 1
    err = capsys.readouterr().err
    assert "Customer has no encrypted attribute 'emial' (those with an HMAC: " in err
    assert ", email, " in err and "address.street" in err and "notes" not in err
    assert main(["hmac", target, "notes", "x"]) == 1
    assert "Customer.notes has no HMAC: it is not declared with equality=True" in capsys.readouterr().err
    assert main(["hmac", target, "plan", "x"]) == 1
    assert "no encrypted attribute 'plan'" in capsys.readouterr().err


def test_hmac_reads_the_value_from_standard_input(app: Tuple[str, Any, Keyring], tmp_path: Path) -> None:
    """The console script, as a shell runs it: the value never sits on the command line."""
    target, Customer, keyring = app
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "PYNAMODB_STASH_KEYRING": keyring.export_secret_string()}
    for given in ("ann@example.com\n", "ann@example.com\r\n", "ann@example.com"):
        result = subprocess.run([CONSOLE_SCRIPT, "hmac", target, "email", "-"], input=given, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == Customer.email.hmac("ann@example.com")
    # One newline is stripped, no more: a value that ends in a newline keeps it.
    result = subprocess.run([CONSOLE_SCRIPT, "hmac", target, "address.street", "-"], input="1 Lane\n\n", env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == Customer.address.street.hmac("1 Lane\n") != Customer.address.street.hmac("1 Lane")
