"""KMS envelope keys: a key store on DynamoDB Local, keys generated and unwrapped by moto's KMS."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Dict, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from pynamodb.attributes import UnicodeAttribute
from stashtest import Clock, Counter

from pynamodb_stash import (
    ConfigurationError,
    DecryptionError,
    EncryptedAttribute,
    EncryptedModel,
    KeyNotFoundError,
    KeyProviderError,
)
from pynamodb_stash.kms import KeyStore, KmsKeyringSource


@pytest.fixture(scope="module")
def kms_key(kms: Any) -> str:
    key_id: str = kms.create_key(Description="pynamodb-stash tests")["KeyMetadata"]["KeyId"]
    return key_id


@pytest.fixture
def store(ddb_url: str, kms: Any, kms_key: str, table_name: str) -> Iterator[KeyStore]:
    dynamodb = boto3.client("dynamodb", endpoint_url=ddb_url, region_name="us-east-1")
    key_store = KeyStore(f"{table_name}-keys", kms_key_ids=[kms_key], kms_client=kms, dynamodb_client=dynamodb)
    key_store.create_table()
    yield key_store
    dynamodb.delete_table(TableName=key_store.table_name)


def secret_model(ddb_url: str, table: str, source: Any) -> Any:
    class Secret(EncryptedModel):
        class Meta:
            table_name = table
            host = ddb_url
            region = "us-east-1"
            keyring = source

        pk = UnicodeAttribute(hash_key=True)
        value = EncryptedAttribute(str, equality=True)

    return Secret


def key_id_of(stored: Dict[str, Any], name: str = "value") -> str:
    blob: bytes = stored[f"{name}__source"]["B"]
    return blob[2 : 2 + blob[1]].decode()


def test_a_keyset_is_two_kms_sealed_keys_and_no_material(store: KeyStore, kms_key: str) -> None:
    encryption_id, index_id = store.create_keyset("tenant-a", kms_key)
    keys = {info.key_id: info for info in store.describe("tenant-a")}
    assert set(keys) == {encryption_id, index_id}
    assert (keys[encryption_id].kind, keys[encryption_id].status) == ("encryption", "active")
    assert (keys[index_id].kind, keys[index_id].kms_key_id) == ("index", kms_key)
    with pytest.raises(ConfigurationError):
        store.create_keyset("tenant-a", kms_key)
    keyring = store.keyring("tenant-a").current()
    assert keyring.primary_key_id == encryption_id and keyring.index_key_id == index_id
    assert "<secret>" not in repr(keys) and encryption_id in repr(keyring)


def test_ten_thousand_items_cost_one_kms_call(ddb_url: str, store: KeyStore, kms_key: str, kms: Any) -> None:
    store.create_keyset("tenant-a", kms_key)
    store.rotate("tenant-a")  # three keys now: still one call, the whole keyset is sealed at once
    counter = Counter(kms)
    Secret = secret_model(ddb_url, "unused", store.keyring("tenant-a"))
    stored = [Secret(pk=f"p{i}", value=f"value {i}").serialize() for i in range(10_000)]
    assert Secret.from_raw_data(stored[-1]).value == "value 9999"
    assert counter.calls == ["Decrypt"]  # the keyset record's seal, once


def test_keys_are_unwrapped_again_past_the_ttl_and_the_use_limit(
    ddb_url: str, store: KeyStore, kms_key: str, kms: Any
) -> None:
    store.create_keyset("tenant-a", kms_key)
    clock = Clock()
    source = store.keyring("tenant-a", ttl_seconds=60, max_uses=3, clock=clock)
    counter = Counter(kms)
    for _ in range(3):
        source.current()
    assert len(counter.calls) == 1
    source.current()  # the 4th use is past max_uses
    assert len(counter.calls) == 2
    clock.now += 59
    source.current()
    assert len(counter.calls) == 2
    clock.now += 2  # past the TTL
    source.current()
    assert len(counter.calls) == 3


def test_save_and_get_through_a_kms_keyring_on_dynamodb_local(
    ddb_url: str, store: KeyStore, kms_key: str, table_name: str
) -> None:
    encryption_id, _ = store.create_keyset("tenant-a", kms_key)
    Secret = secret_model(ddb_url, table_name, store.keyring("tenant-a"))
    Secret.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    try:
        Secret(pk="a", value="classified").save()
        raw = Secret._get_connection().get_item("a")["Item"]
        assert key_id_of(raw) == encryption_id and b"classified" not in raw["value__source"]["B"]
        assert Secret.get("a").value == "classified"
        assert [s.pk for s in Secret.scan(Secret.value == "classified")] == ["a"]
    finally:
        Secret.delete_table()


def test_rotation_keeps_old_values_readable_and_hmacs_unchanged(
    ddb_url: str, store: KeyStore, kms_key: str
) -> None:
    old_id, _ = store.create_keyset("tenant-a", kms_key)
    clock = Clock()
    Secret = secret_model(ddb_url, "unused", store.keyring("tenant-a", ttl_seconds=60, clock=clock))
    before = Secret(pk="a", value="v").serialize()

    new_id = store.add_key("tenant-a")
    clock.now += 61
    assert key_id_of(Secret(pk="a", value="v").serialize()) == old_id  # readers learn it first
    store.promote("tenant-a", new_id)
    clock.now += 61
    after = Secret(pk="a", value="v").serialize()
    assert key_id_of(after) == new_id
    assert after["value__hmac"] == before["value__hmac"]  # rotating encryption keys never changes an HMAC
    assert Secret.from_raw_data(before).value == "v"
    statuses = {info.key_id: info.status for info in store.describe("tenant-a")}
    assert statuses[old_id] == "decrypt_only" and statuses[new_id] == "active"

    with pytest.raises(ConfigurationError):
        store.retire("tenant-a", new_id)  # the active key cannot be retired
    store.retire("tenant-a", old_id)
    clock.now += 61
    with pytest.raises(KeyNotFoundError) as raised:
        Secret.from_raw_data(before)
    assert old_id in str(raised.value) and "retired" in str(raised.value)
    assert Secret.from_raw_data(after).value == "v"


def test_rotate_is_add_and_promote(store: KeyStore, kms_key: str) -> None:
    first, _ = store.create_keyset("tenant-a", kms_key)
    second = store.rotate("tenant-a")
    assert second != first
    assert store.keyring("tenant-a").current().key_ids == (second, first)


def test_destroying_a_keyset_shreds_its_values_only(ddb_url: str, store: KeyStore, kms_key: str) -> None:
    store.create_keyset("tenant-a", kms_key)
    store.create_keyset("tenant-b", kms_key)
    TenantA = secret_model(ddb_url, "shared", store.keyring("tenant-a"))
    TenantB = secret_model(ddb_url, "shared", store.keyring("tenant-b"))
    a_item, b_item = TenantA(pk="a", value="alpha").serialize(), TenantB(pk="b", value="beta").serialize()
    assert a_item["value__hmac"] != TenantB(pk="a", value="alpha").serialize()["value__hmac"]

    destruction = store.destroy_keyset("tenant-a")
    assert len(destruction.key_ids) == 2 and destruction.kms_key_id == kms_key
    assert destruction.kms_key_deletion is None and "backups" in destruction.remains[0]
    with pytest.raises(KeyProviderError) as raised:
        secret_model(ddb_url, "shared", store.keyring("tenant-a")).from_raw_data(a_item)
    assert raised.value.code == "keyset_destroyed" and "'tenant-a'" in str(raised.value)
    with pytest.raises((KeyNotFoundError, DecryptionError)):
        TenantB.from_raw_data(a_item)  # another tenant's keys never read it
    assert TenantB.from_raw_data(b_item).value == "beta"


def test_kms_refusals_become_key_provider_errors(store: KeyStore, kms: Any) -> None:
    missing = KeyStore(store.table_name, kms_key_ids=["alias/does-not-exist"], kms_client=kms,
                       dynamodb_client=store._dynamodb)
    with pytest.raises(KeyProviderError) as raised:
        missing.create_keyset("tenant-x", "alias/does-not-exist")
    message = str(raised.value)
    assert "tenant-x" in message and "alias/does-not-exist" in message and "NotFoundException" in message
    assert isinstance(raised.value.__cause__, ClientError)


def test_a_tampered_or_moved_keyset_record_does_not_authenticate(
    store: KeyStore, kms_key: str, ddb_url: str
) -> None:
    store.create_keyset("tenant-a", kms_key)
    dynamodb = boto3.client("dynamodb", endpoint_url=ddb_url, region_name="us-east-1")
    record_key = {"keyset": {"S": "tenant-a"}, "key_id": {"S": "#keyset"}}
    item = dynamodb.get_item(TableName=store.table_name, Key=record_key)["Item"]
    dynamodb.put_item(TableName=store.table_name, Item={**item, "keyset": {"S": "tenant-z"}})  # copied
    with pytest.raises(KeyProviderError) as raised:
        store.keyring("tenant-z").current()
    assert raised.value.code == "key_store_tampered"
    assert "'tenant-z'" in str(raised.value) and "names another key store or keyset" in str(raised.value)

    for name in ("attest", "material"):  # one bit of the seal or of the sealed keys
        blob = bytearray(item[name]["B"])
        blob[-1] ^= 1
        dynamodb.put_item(TableName=store.table_name, Item={**item, name: {"B": bytes(blob)}})
        with pytest.raises(KeyProviderError) as raised:
            store.keyring("tenant-a").current()
        assert raised.value.code == "key_store_tampered" and "'tenant-a'" in str(raised.value)
    dynamodb.put_item(TableName=store.table_name, Item=item)
    assert store.keyring("tenant-a").current().primary_key_id


def test_a_missing_key_store_table_is_a_key_provider_error(ddb_url: str, kms: Any) -> None:
    dynamodb = boto3.client("dynamodb", endpoint_url=ddb_url, region_name="us-east-1")
    source = KeyStore("no-such-key-store", kms_client=kms, dynamodb_client=dynamodb).keyring("tenant-a")
    assert isinstance(source, KmsKeyringSource)
    with pytest.raises(KeyProviderError) as raised:
        source.current()
    assert "no-such-key-store" in str(raised.value) and "ResourceNotFoundException" in str(raised.value)


def test_bad_source_settings_are_refused(store: KeyStore) -> None:
    with pytest.raises(ConfigurationError):
        store.keyring("tenant-a", ttl_seconds=0)


def test_importing_without_the_kms_extra_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['boto3'] = None\n"
        "try:\n    import pynamodb_stash.kms\n"
        "except ImportError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "[kms]" in result.stdout and "pip install" in result.stdout


def test_the_keystore_command(ddb_url: str, kms_url: str, kms_key: str, table_name: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from pynamodb_stash._cli import main

    common = ["--table", f"{table_name}-cli", "--endpoint", ddb_url, "--kms-endpoint", kms_url,
              "--region", "us-east-1"]
    allowed = [*common, "--allowed-kms-key-id", kms_key]
    assert main(["keystore", "create-table", *common]) == 0
    try:
        assert main(["keystore", "create-keyset", *common, "--keyset", "app", "--kms-key-id", kms_key]) == 0
        assert main(["keystore", "rotate", *allowed, "--keyset", "app"]) == 0
        assert main(["keystore", "list", *allowed, "--keyset", "app"]) == 0
        out = capsys.readouterr().out
        listed = [line.split() for line in out.splitlines() if line.startswith(("k-", "idx-"))]
        assert sorted((kind, status) for _, kind, status, *_ in listed) == [
            ("encryption", "active"), ("encryption", "decrypt_only"), ("index", "active"),
        ]
        old = next(key for key, kind, status, *_ in listed if status == "decrypt_only")
        assert main(["keystore", "retire", *allowed, "--keyset", "app", "--key-id", old]) == 0
        with pytest.raises(SystemExit) as missing:
            main(["keystore", "retire", *allowed, "--keyset", "app"])
        assert "--key-id is required" in str(missing.value)
        with pytest.raises(SystemExit) as unallowed:
            main(["keystore", "list", *common, "--keyset", "app"])
        assert "--allowed-kms-key-id is required" in str(unallowed.value)
        assert main(["keystore", "create-keyset", *common, "--keyset", "app", "--kms-key-id", kms_key]) == 1
        assert "configuration_error: keyset 'app' already exists" in capsys.readouterr().err
    finally:
        boto3.client("dynamodb", endpoint_url=ddb_url, region_name="us-east-1").delete_table(
            TableName=f"{table_name}-cli"
        )


def test_an_unknown_keyset_is_a_key_provider_error(store: KeyStore) -> None:
    with pytest.raises(KeyProviderError) as raised:
        store.keyring("nobody").current()
    assert "nobody" in str(raised.value) and "no active" in str(raised.value)
