"""Compound HMACs: one stored HMAC over several attributes, as a GSI key and in conditions."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from pynamodb_stash import (
    CompoundHmacAttribute,
    ConfigurationError,
    DecryptionError,
    EncryptedAttribute,
    EncryptedModel,
    Equality,
    HmacAttribute,
    Keyring,
    UnsupportedQueryError,
)


class ByEmailAndKind(GlobalSecondaryIndex["Any"]):
    class Meta:
        index_name = "ByEmailAndKind"
        projection = AllProjection()

    email_kind = HmacAttribute(hash_key=True)


@pytest.fixture
def users(ddb_url: str, table_name: str) -> Iterator[Any]:
    class User(EncryptedModel):
        class Meta:
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=Equality(normalize="lower"))
        kind = UnicodeAttribute(null=True)
        level = NumberAttribute(null=True)
        email_kind = CompoundHmacAttribute("email", "kind", prefix="USER#")
        by_email_and_kind = ByEmailAndKind()

    User.Meta.table_name = table_name
    User.create_table(wait=True)
    User(pk="u1", email="Ada@example.com", kind="admin").save()
    User(pk="u2", email="ada@example.com", kind="member").save()
    User(pk="u3", email="bob@example.com", kind="admin").save()
    User(pk="u4", email="ada@example.com").save()  # no kind: no compound (sparse)
    yield User
    User.delete_table()


def test_the_index_takes_all_parts_in_plaintext(users: Any) -> None:
    assert [u.pk for u in users.by_email_and_kind.query(("ADA@example.com", "admin"))] == ["u1"]
    assert [u.pk for u in users.by_email_and_kind.query(("ada@example.com", "member"))] == ["u2"]
    assert users.by_email_and_kind.count(("nobody@example.com", "admin")) == 0
    raw = users._get_connection().get_item("u1")["Item"]
    assert raw["email_kind__hmac"]["S"].startswith("USER#") and b"admin" not in raw["email_kind__hmac"]["S"].encode()
    assert "email_kind__hmac" not in users._get_connection().get_item("u4")["Item"]


def test_conditions_on_the_compound(users: Any) -> None:
    assert sorted(u.pk for u in users.scan(users.email_kind == ("ada@example.com", "admin"))) == ["u1"]
    assert sorted(u.pk for u in users.scan(users.email_kind.is_in(("bob@example.com", "admin"), ("x", "y")))) == ["u3"]


def test_updates_keep_the_compound_in_step(users: Any) -> None:
    user = users.get("u2")
    user.update(actions=[users.kind.set("admin")])
    assert sorted(u.pk for u in users.by_email_and_kind.query(("ada@example.com", "admin"))) == ["u1", "u2"]
    user.update(actions=[users.email.set("carol@example.com")])
    assert [u.pk for u in users.by_email_and_kind.query(("carol@example.com", "admin"))] == ["u2"]
    user.update(actions=[users.kind.remove()])
    assert "email_kind__hmac" not in users._get_connection().get_item("u2")["Item"]
    with pytest.raises(UnsupportedQueryError):
        user.update(actions=[users.kind.set(users.kind | "x")])


def test_a_swapped_compound_does_not_read(users: Any) -> None:
    raw = users._get_connection().get_item("u1")["Item"]
    raw["email_kind__hmac"] = users._get_connection().get_item("u3")["Item"]["email_kind__hmac"]
    with pytest.raises(DecryptionError) as raised:
        users.from_raw_data(raw)
    assert raised.value.code == "hmac_mismatch"


def test_bad_compounds_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        CompoundHmacAttribute("only_one")
    with pytest.raises(ConfigurationError):
        class Broken(EncryptedModel):
            class Meta:
                table_name = "broken"

            pk = UnicodeAttribute(hash_key=True)
            pair = CompoundHmacAttribute("pk", "missing")
