"""Equality options: normalization before hashing, and HMAC prefixes, on every lookup path."""

from __future__ import annotations

from typing import Any, Iterator

import boto3
import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from pynamodb_stash import (
    ConfigurationError,
    EncryptedAttribute,
    EncryptedModel,
    EncryptionError,
    Equality,
    HmacAttribute,
    Keyring,
)


class ByEmail(GlobalSecondaryIndex["Any"]):
    class Meta:
        index_name = "ByEmail"
        projection = AllProjection()

    email = HmacAttribute(hash_key=True)


@pytest.fixture
def users(ddb_url: str, table_name: str) -> Iterator[Any]:
    class User(EncryptedModel):
        class Meta:
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=Equality(normalize=("trim", "nfc", "lower"), prefix="EMAIL#"))
        by_email = ByEmail()

    User.Meta.table_name = table_name
    User.create_table(wait=True)
    User(pk="u1", email="Alice@Example.COM").save()
    yield User
    User.delete_table()


def test_lookups_match_the_normalized_form_and_keep_the_exact_value(users: Any) -> None:
    for spelling in ("alice@example.com", "  ALICE@example.com ", "Alice@Example.COM"):
        assert [u.pk for u in users.by_email.query(spelling)] == ["u1"]
        assert [u.pk for u in users.scan(users.email == spelling)] == ["u1"]
    assert users.by_email.count("ALICE@EXAMPLE.COM") == 1
    assert users.get("u1").email == "Alice@Example.COM"  # __source keeps the exact original
    assert list(users.by_email.query("bob@example.com")) == []


def test_nfc_makes_composed_and_decomposed_forms_match(users: Any) -> None:
    users(pk="u2", email="Jos\u00e9@example.com").save()
    assert [u.pk for u in users.by_email.query("Jose\u0301@example.com")] == ["u2"]


def test_the_prefix_is_stored_and_usable_from_boto3(users: Any) -> None:
    client = boto3.client("dynamodb", endpoint_url=users.Meta.host, region_name="us-east-1")
    stored = client.get_item(TableName=users.Meta.table_name, Key={"pk": {"S": "u1"}})["Item"]["email__hmac"]["S"]
    assert stored.startswith("EMAIL#") and stored == users.email.hmac("alice@example.com")
    found = client.query(
        TableName=users.Meta.table_name, IndexName="ByEmail", KeyConditionExpression="email__hmac = :e",
        ExpressionAttributeValues={":e": {"S": users.email.hmac(" ALICE@EXAMPLE.COM")}},
    )
    assert found["Count"] == 1


def test_a_normalized_table_key(ddb_url: str, table_name: str) -> None:
    class Account(EncryptedModel):
        class Meta:
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"
            keyring = Keyring.generate()

        email = EncryptedAttribute(str, equality=Equality(normalize="lower"), hash_key=True)
        note = EncryptedAttribute(str)

    Account.Meta.table_name = table_name + "-accounts"
    Account.create_table(wait=True)
    try:
        Account("Carol@Example.com", note="hello").save()
        account = Account.get("CAROL@example.COM")
        assert (account.email, account.note) == ("Carol@Example.com", "hello")
        Account("carol@example.com", note="replaced").save()  # the same key, by design
        assert [a.note for a in Account.scan()] == ["replaced"]
    finally:
        Account.delete_table()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        EncryptedAttribute(int, equality=Equality(normalize="lower"))
    with pytest.raises(ConfigurationError):
        EncryptedAttribute(str, equality=Equality(normalize="soundex"))


def test_a_normalizer_must_return_a_str() -> None:
    class Odd(EncryptedModel):
        class Meta:
            table_name = "odd"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        code = EncryptedAttribute(str, equality=Equality(normalize=lambda text: len(text)))  # type: ignore[arg-type,return-value]

    with pytest.raises(EncryptionError) as raised:
        Odd(pk="1", code="secret-code").serialize()
    assert "secret-code" not in str(raised.value)
