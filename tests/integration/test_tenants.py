"""Multi-tenant keysets: per-item (attribute) and per-operation (tenant()) keys, on DynamoDB Local."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import boto3
import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from pynamodb_stash import (
    ConfigurationError,
    DecryptionError,
    EncryptedAttribute,
    EncryptedModel,
    EncryptionError,
    HmacAttribute,
    KeyNotFoundError,
    KeyProviderError,
    Keyring,
    TenantKeyrings,
    decrypt_item,
    encrypt_item,
    tenant,
)
from pynamodb_stash.kms import KeyStore


class EmailIndex(GlobalSecondaryIndex["Any"]):
    class Meta:
        index_name = "EmailIndex"
        projection = AllProjection()

    email = HmacAttribute(hash_key=True)


def contact_model(ddb_url: str, table: str, keyrings: TenantKeyrings) -> Any:
    class Contact(EncryptedModel):
        class Meta:
            table_name = table
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"
            keyring = keyrings

        pk = UnicodeAttribute(hash_key=True)
        tenant_id = UnicodeAttribute()
        email = EncryptedAttribute(str, equality=True)
        email_index = EmailIndex()

    return Contact


@pytest.fixture
def local_keyrings() -> TenantKeyrings:
    rings = {"acme": Keyring.generate(key_id="acme-1"), "globex": Keyring.generate(key_id="globex-1")}
    return TenantKeyrings(rings.__getitem__, attribute="tenant_id")


@pytest.fixture
def contacts(ddb_url: str, table_name: str, local_keyrings: TenantKeyrings) -> Iterator[Any]:
    Contact = contact_model(ddb_url, table_name, local_keyrings)
    Contact.create_table(wait=True)
    Contact(pk="a1", tenant_id="acme", email="same@example.com").save()
    Contact(pk="g1", tenant_id="globex", email="same@example.com").save()
    yield Contact
    Contact.delete_table()


def test_each_tenant_is_under_its_own_keys_and_hmacs(contacts: Any) -> None:
    raw_a = contacts._get_connection().get_item("a1")["Item"]
    raw_g = contacts._get_connection().get_item("g1")["Item"]
    assert raw_a["email__source"]["B"][2:8] == b"acme-1" and raw_g["email__source"]["B"][2:10] == b"globex-1"
    assert raw_a["email__hmac"] != raw_g["email__hmac"]  # the same email, two HMACs
    assert contacts.get("a1").email == contacts.get("g1").email == "same@example.com"  # by the attribute


def test_a_query_in_one_tenant_never_returns_anothers_item(contacts: Any) -> None:
    with tenant("acme"):
        assert [c.pk for c in contacts.email_index.query("same@example.com")] == ["a1"]
        assert [c.pk for c in contacts.scan(contacts.email == "same@example.com")] == ["a1"]
        with pytest.raises(DecryptionError) as raised:
            contacts.get("g1")  # globex's item, read inside acme
        assert raised.value.code == "tenant_mismatch"
    with tenant("globex"):
        assert [c.pk for c in contacts.email_index.query("same@example.com")] == ["g1"]


def test_queries_need_a_tenant(contacts: Any) -> None:
    with pytest.raises(ConfigurationError) as raised:
        list(contacts.email_index.query("same@example.com"))
    assert "tenant(" in str(raised.value)


def test_an_item_cannot_be_written_into_another_tenant(contacts: Any) -> None:
    with tenant("acme"), pytest.raises(EncryptionError) as raised:
        contacts(pk="x", tenant_id="globex", email="x@example.com").save()
    assert raised.value.code == "tenant_mismatch"


def test_moving_an_item_to_another_tenant_does_not_decrypt(contacts: Any) -> None:
    raw = contacts._get_connection().get_item("a1")["Item"]
    raw["tenant_id"] = {"S": "globex"}
    with pytest.raises((KeyNotFoundError, DecryptionError)):
        contacts.from_raw_data(raw)


def test_raw_items_follow_the_tenant_attribute(contacts: Any) -> None:
    stored = encrypt_item(contacts, {"pk": "a2", "tenant_id": "acme", "email": "raw@example.com"})
    assert stored["email__source"][2:8] == b"acme-1"
    assert decrypt_item(contacts, stored)["email"] == "raw@example.com"


def test_tenant_context_crosses_asyncio_tasks_without_leaking(contacts: Any) -> None:
    async def lookup(name: str) -> list[str]:
        with tenant(name):
            await asyncio.sleep(0)
            return [c.pk for c in contacts.email_index.query("same@example.com")]

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(lookup("acme"), lookup("globex")))

    assert asyncio.run(both()) == [["a1"], ["g1"]]


def test_an_empty_tenant_is_refused() -> None:
    with pytest.raises(ConfigurationError), tenant(""):
        pass


def test_shredding_one_tenant_in_a_kms_key_store(ddb_url: str, kms_url: str, table_name: str) -> None:
    kms = boto3.client("kms", endpoint_url=kms_url, region_name="us-east-1")
    dynamodb = boto3.client("dynamodb", endpoint_url=ddb_url, region_name="us-east-1")
    store = KeyStore(f"{table_name}-keys", kms_client=kms, dynamodb_client=dynamodb)
    store.create_table()
    try:
        kms_key = kms.create_key()["KeyMetadata"]["KeyId"]
        store.create_keyset("acme", kms_key)
        store.create_keyset("globex", kms_key)
        Contact = contact_model(ddb_url, "unused", store.tenant_keyrings(attribute="tenant_id"))
        acme = Contact(pk="a1", tenant_id="acme", email="a@example.com").serialize()
        globex = Contact(pk="g1", tenant_id="globex", email="g@example.com").serialize()

        store.destroy_keyset("acme")
        Fresh = contact_model(ddb_url, "unused", store.tenant_keyrings(attribute="tenant_id"))
        with pytest.raises(KeyProviderError) as raised:
            Fresh.from_raw_data(acme)
        assert "acme" in str(raised.value)
        assert Fresh.from_raw_data(globex).email == "g@example.com"
    finally:
        dynamodb.delete_table(TableName=store.table_name)


def test_items_keyed_by_an_hmac_are_deleted_and_updated_under_their_own_tenant(
    ddb_url: str, table_name: str, local_keyrings: TenantKeyrings
) -> None:
    class Login(EncryptedModel):
        class Meta:
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"
            keyring = local_keyrings

        email = EncryptedAttribute(str, equality=True, hash_key=True)
        tenant_id = UnicodeAttribute()
        note = EncryptedAttribute(str)

    Login.Meta.table_name = table_name + "-logins"
    Login.create_table(wait=True)
    try:
        login = Login("pat@example.com", tenant_id="globex", note="first")
        login.save()
        login.update(actions=[Login.note.set("second")])  # no tenant() block: the item names its tenant
        login.refresh()
        assert login.note == "second"
        login.delete()
        with tenant("globex"):
            assert Login.count("pat@example.com") == 0
    finally:
        Login.delete_table()
