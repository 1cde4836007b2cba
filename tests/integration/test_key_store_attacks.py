"""The KMS key store against each principal of docs/security.md, on DynamoDB Local and moto's KMS.

moto enforces no IAM, so a principal is a boto3 KMS client wrapped by :class:`Principal`, which passes
the operations its policy would allow to moto and refuses the others with ``AccessDeniedException``, as
AWS would: a double of the attacker's permissions, never of the data path. The table writer writes
with a plain boto3 DynamoDB client, as it could.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Dict, List

import pytest
from botocore.exceptions import ClientError
from stashtest import Clock, Counter, key_store, secret_model

from pynamodb_stash import (
    ConfigurationError,
    KeyNotFoundError,
    KeyProviderError,
)
from pynamodb_stash._crypto import FieldCipher, Key
from pynamodb_stash.kms import KeyStore

REGION = "us-east-1"


class Principal:
    """A KMS client allowed only ``allowed`` operations (boto3 method names); the rest are refused."""

    def __init__(self, client: Any, *allowed: str) -> None:
        self._client = client
        self._allowed = set(allowed)
        self.refused: List[str] = []

    def __getattr__(self, name: str) -> Any:
        if name in self._allowed:
            return getattr(self._client, name)

        def refuse(**kwargs: Any) -> Any:
            self.refused.append(name)
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": f"not authorized to {name}"}}, name
            )

        return refuse


def record(dynamodb: Any, table: str, keyset: str) -> Dict[str, Any]:
    item: Dict[str, Any] = dynamodb.get_item(
        TableName=table, Key={"keyset": {"S": keyset}, "key_id": {"S": "#keyset"}}, ConsistentRead=True
    )["Item"]
    return item


def body_of(item: Dict[str, Any]) -> Dict[str, Any]:
    body: Dict[str, Any] = json.loads(bytes(item["body"]["B"]))
    return body


def with_body(item: Dict[str, Any], body: Dict[str, Any]) -> Dict[str, Any]:
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return {**item, "body": {"B": encoded}, "version": {"N": str(body["version"])}}


def tampered(table: str, keyset: str, reason: str, active: str) -> str:
    return (
        f"keyset {keyset!r} in key store {table!r}: its record does not authenticate ({reason}); "
        f"none of its keys is used (active key as stored: {active!r})"
    )


# -- provisioning role: table write and kms:GenerateDataKey, no kms:Decrypt, no kms:Encrypt ---------------


def test_a_provisioning_role_cannot_plant_a_key(kms: Any, dynamodb: Any, kms_key: str, table: str) -> None:
    admin = key_store(table, kms, dynamodb, kms_key)
    legit, _ = admin.create_keyset("app", kms_key)
    provisioner = Principal(kms, "generate_data_key")
    context = {"pynamodb-stash:key-store": table, "pynamodb-stash:keyset": "app"}

    # 1. A row of the earlier format, as the attack wrote it: newest, active, validly wrapped.
    planted = provisioner.generate_data_key(
        KeyId=kms_key, KeySpec="AES_256",
        EncryptionContext={**context, "pynamodb-stash:key-id": "k-planted", "pynamodb-stash:kind": "encryption"},
    )
    dynamodb.put_item(TableName=table, Item={
        "keyset": {"S": "app"}, "key_id": {"S": "k-planted"}, "kind": {"S": "encryption"},
        "status": {"S": "active"}, "created_at": {"S": "2999-01-01T00:00:00+00:00"},
        "kms_key_id": {"S": kms_key}, "wrapped": {"B": planted["CiphertextBlob"]},
    })
    keyring = key_store(table, kms, dynamodb, kms_key).keyring("app").current()
    assert keyring.primary_key_id == legit and "k-planted" not in keyring.key_ids  # not read at all

    # 2. The keyset record itself, rewritten with the planted key active and sealed as well as
    #    GenerateDataKey allows: a random plaintext under the record's own encryption context.
    item = record(dynamodb, table, "app")
    body = body_of(item)
    body["keys"] = [{**k, "status": "decrypt_only"} if k["id"] == legit else k for k in body["keys"]]
    body["keys"].append({"id": "k-planted", "kind": "encryption", "status": "active", "created_at": "2999"})
    seal = provisioner.generate_data_key(
        KeyId=kms_key, NumberOfBytes=64,
        EncryptionContext={**context, "pynamodb-stash:record": "keyset-v2",
                           "pynamodb-stash:version": str(body["version"])},
    )
    known = [Key.generate(k["id"]) for k in body["keys"]]
    material = FieldCipher(Key("keyset-seal", seal["Plaintext"][32:]), table, "app").seal(
        b"".join(k.export_secret_bytes() for k in known), seal["Plaintext"][:32]
    )
    forged = {**with_body(item, body), "attest": {"B": seal["CiphertextBlob"]}, "material": {"B": material}}
    dynamodb.put_item(TableName=table, Item=forged)
    with pytest.raises(KeyProviderError) as raised:
        key_store(table, kms, dynamodb, kms_key).keyring("app").current()
    assert raised.value.code == "key_store_tampered"
    assert str(raised.value) == tampered(table, "app", "its seal is not of its body", "k-planted")

    # 3. Nor through the library: sealing a record needs kms:Encrypt, which it does not have.
    for key_id in ("#keyset", "k-planted"):
        dynamodb.delete_item(TableName=table, Key={"keyset": {"S": "app"}, "key_id": {"S": key_id}})
    with pytest.raises(KeyProviderError) as raised:
        KeyStore(table, kms_key_ids=[kms_key], kms_client=provisioner, dynamodb_client=dynamodb).create_keyset(
            "app", kms_key
        )
    assert raised.value.code == "kms_error" and "AccessDeniedException" in str(raised.value)
    assert provisioner.refused == ["encrypt"]  # it never got further


# -- table writer: DynamoDB write on the key store table, no KMS permission -------------------------------


def test_a_table_writer_cannot_roll_a_retired_key_back(
    ddb_url: str, kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    admin = key_store(table, kms, dynamodb, kms_key)
    leaked, _ = admin.create_keyset("app", kms_key)
    current = admin.rotate("app")
    admin.retire("app", leaked)
    item = record(dynamodb, table, "app")

    body = body_of(item)  # the leaked key active again, and the newest
    body["keys"] = [
        {**k, "status": "active", "created_at": "2999-01-01T00:00:00+00:00"} if k["id"] == leaked
        else {**k, "status": "decrypt_only"} if k["id"] == current else k
        for k in body["keys"]
    ]
    dynamodb.put_item(TableName=table, Item=with_body(item, body))
    with pytest.raises(KeyProviderError) as raised:
        key_store(table, kms, dynamodb, kms_key).keyring("app").current()
    assert raised.value.code == "key_store_tampered"
    assert str(raised.value) == tampered(table, "app", "its seal is not of its body", leaked)

    body["version"] += 1  # a newer version too: the seal is bound to its version by KMS
    dynamodb.put_item(TableName=table, Item=with_body(item, body))
    with pytest.raises(KeyProviderError) as raised:
        key_store(table, kms, dynamodb, kms_key).keyring("app").current()
    assert raised.value.code == "key_store_tampered" and isinstance(raised.value.__cause__, ClientError)
    assert str(raised.value) == tampered(table, "app", "KMS does not decrypt its seal in its context", leaked)

    dynamodb.put_item(TableName=table, Item=item)
    keyring = key_store(table, kms, dynamodb, kms_key).keyring("app").current()
    assert keyring.primary_key_id == current and leaked not in keyring.key_ids


def test_a_replayed_earlier_record_is_refused_by_a_process_that_saw_a_newer_one(
    kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    admin = key_store(table, kms, dynamodb, kms_key)
    leaked, _ = admin.create_keyset("app", kms_key)
    earlier = record(dynamodb, table, "app")  # version 1: the leaked key active
    current = admin.rotate("app")
    admin.retire("app", leaked)
    reader = key_store(table, kms, dynamodb, kms_key)
    assert reader.keyring("app").current().primary_key_id == current  # it has seen version 4

    dynamodb.put_item(TableName=table, Item=earlier)  # a table writer puts the earlier record back
    with pytest.raises(KeyProviderError) as raised:
        reader.keyring("app").current()
    assert raised.value.code == "key_store_rollback"
    assert str(raised.value) == (
        f"keyset 'app' in key store {table!r} went back from version 4 to 1: an earlier record was put back "
        "(a restored backup, or a table writer replaying one); refused"
    )

    # The limit docs/security.md states: a process that never saw a newer version cannot tell.
    fresh = key_store(table, kms, dynamodb, kms_key).keyring("app").current()
    assert fresh.primary_key_id == leaked


def test_a_record_under_a_foreign_kms_key_is_refused_before_any_kms_call(
    kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    admin = key_store(table, kms, dynamodb, kms_key)
    admin.create_keyset("app", kms_key)
    foreign = kms.create_key(Description="another account's key")["KeyMetadata"]["Arn"]
    # Its owner can do anything with it, so it seals a whole keyset of keys it knows, in this table.
    dynamodb.delete_item(TableName=table, Key={"keyset": {"S": "app"}, "key_id": {"S": "#keyset"}})
    key_store(table, kms, dynamodb, foreign).create_keyset("app", foreign)

    reader = key_store(table, kms, dynamodb, kms_key)
    counter = Counter(kms)
    with pytest.raises(KeyProviderError) as raised:
        reader.keyring("app").current()
    assert raised.value.code == "kms_key_not_allowed"
    assert str(raised.value) == (
        f"keyset 'app' in key store {table!r} is sealed under KMS key {foreign!r}, which kms_key_ids does not "
        "allow: refused before any KMS call"
    )
    assert counter.calls == []

    # A reader that names no allow-list refuses everything, at its first use.
    with pytest.raises(ConfigurationError) as unconfigured:
        KeyStore(table, kms_client=kms, dynamodb_client=dynamodb).keyring("app").current()
    assert "kms_key_ids" in str(unconfigured.value) and counter.calls == []
    # An allow-list may be a rule: here, keys of this account and region only.
    ruled = KeyStore(table, kms_key_ids=lambda arn: arn.startswith("arn:aws:kms:eu-west-1:123456789012:key/"),
                     kms_client=kms, dynamodb_client=dynamodb)
    with pytest.raises(KeyProviderError) as raised:
        ruled.keyring("app").current()
    assert raised.value.code == "kms_key_not_allowed" and counter.calls == []


# -- application role: table read and kms:Decrypt ------------------------------------------------------


def test_an_application_role_reads_but_cannot_change_a_keyset(
    kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    admin = key_store(table, kms, dynamodb, kms_key)
    first, _ = admin.create_keyset("app", kms_key)
    second = admin.add_key("app")
    application = KeyStore(table, kms_key_ids=[kms_key], kms_client=Principal(kms, "decrypt"),
                           dynamodb_client=dynamodb)
    assert application.keyring("app").current().primary_key_id == first
    before = record(dynamodb, table, "app")
    with pytest.raises(KeyProviderError) as raised:
        application.promote("app", second)
    assert raised.value.code == "kms_error" and "AWS KMS encrypt failed for keyset 'app'" in str(raised.value)
    assert record(dynamodb, table, "app") == before  # nothing written


# -- a principal with kms:Encrypt but not kms:Decrypt: the limit -------------------------------------------


def test_a_principal_with_kms_encrypt_and_table_write_can_replace_a_keyset_wholesale(
    ddb_url: str, kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    admin = key_store(table, kms, dynamodb, kms_key)
    admin.create_keyset("app", kms_key)
    Secret = secret_model(ddb_url, key_store(table, kms, dynamodb, kms_key).keyring("app"))
    written = Secret(pk="a", value="v").serialize()

    encrypter = KeyStore(table, kms_key_ids=[kms_key], kms_client=Principal(kms, "encrypt"),
                         dynamodb_client=dynamodb)
    dynamodb.delete_item(TableName=table, Key={"keyset": {"S": "app"}, "key_id": {"S": "#keyset"}})
    replaced, _ = encrypter.create_keyset("app", kms_key)  # keys it generated, hence knows

    keyring = key_store(table, kms, dynamodb, kms_key).keyring("app").current()
    assert keyring.primary_key_id == replaced  # accepted: docs/security.md says so, and why
    with pytest.raises(KeyNotFoundError):  # but every value written before stops reading
        secret_model(ddb_url, key_store(table, kms, dynamodb, kms_key).keyring("app")).from_raw_data(written)


# -- KMS administrator: the key policy and the key's lifecycle, no kms:Decrypt ------------------------------


def end_of_pending_window(kms_key: str) -> None:
    """What AWS KMS does on a key's deletion date: the key and its material are gone. moto never gets
    there by itself, so its backend is told to, as AWS would be by its clock."""
    from moto.kms.models import kms_backends

    kms_backends["123456789012"][REGION].delete_key(kms_key)


def rows(dynamodb: Any, table: str, keyset: str) -> List[Dict[str, Any]]:
    items: List[Dict[str, Any]] = dynamodb.query(
        TableName=table, KeyConditionExpression="keyset = :k",
        ExpressionAttributeValues={":k": {"S": keyset}}, ConsistentRead=True,
    )["Items"]
    return items


def test_a_restored_backup_does_not_bring_a_shredded_tenant_back(
    ddb_url: str, kms: Any, dynamodb: Any, table: str
) -> None:
    acme_key = kms.create_key(Description="tenant acme")["KeyMetadata"]["KeyId"]
    globex_key = kms.create_key(Description="tenant globex")["KeyMetadata"]["KeyId"]
    admin = key_store(table, kms, dynamodb, acme_key, globex_key)
    admin.create_keyset("acme", acme_key)
    admin.create_keyset("globex", globex_key)
    Contact = secret_model(ddb_url, admin.tenant_keyrings())
    from pynamodb_stash import tenant

    with tenant("acme"):
        acme_item = Contact(pk="a", value="acme's secret").serialize()
    with tenant("globex"):
        globex_item = Contact(pk="g", value="globex's secret").serialize()
    backup = rows(dynamodb, table, "acme")  # the table's backup, taken before the shredding

    destruction = admin.destroy_keyset("acme", schedule_kms_key_deletion=True, pending_window_days=7)
    assert destruction.kms_key_id == acme_key and isinstance(destruction.kms_key_deletion, datetime)
    assert destruction.rows_deleted == 1 and len(destruction.key_ids) == 2
    assert "pending deletion" in destruction.remains[0] and "CancelKeyDeletion" in destruction.remains[0]
    assert any("next refresh" in line for line in destruction.remains)
    assert kms.describe_key(KeyId=acme_key)["KeyMetadata"]["KeyState"] == "PendingDeletion"

    end_of_pending_window(acme_key)
    for item in backup:  # the backup restored into the key store
        dynamodb.put_item(TableName=table, Item=item)
    reader = key_store(table, kms, dynamodb, acme_key, globex_key)
    with pytest.raises(KeyProviderError) as raised, tenant("acme"):
        secret_model(ddb_url, reader.tenant_keyrings()).from_raw_data(acme_item)
    assert raised.value.code == "kms_error"
    assert str(raised.value) == (
        f"AWS KMS decrypt failed for keyset 'acme' with KMS key {acme_key!r}: NotFoundException"
    )
    with tenant("globex"):  # the other tenant, under its own KMS key, is untouched
        assert secret_model(ddb_url, reader.tenant_keyrings()).from_raw_data(globex_item).value == "globex's secret"


def test_a_kms_administrator_cannot_read_keys_but_can_shred_and_undo_within_the_window(
    ddb_url: str, kms: Any, dynamodb: Any, table: str
) -> None:
    tenant_key = kms.create_key(Description="tenant")["KeyMetadata"]["KeyId"]
    admin = key_store(table, kms, dynamodb, tenant_key)
    admin.create_keyset("acme", tenant_key)
    written = secret_model(ddb_url, admin.keyring("acme"))(pk="a", value="v").serialize()
    kms_admin = Principal(kms, "schedule_key_deletion", "cancel_key_deletion", "enable_key", "describe_key")

    with pytest.raises(KeyProviderError) as raised:  # without kms:Decrypt it reads no key
        KeyStore(table, kms_key_ids=[tenant_key], kms_client=kms_admin, dynamodb_client=dynamodb).describe("acme")
    assert raised.value.code == "kms_error" and "AccessDeniedException" in str(raised.value)

    kms_admin.schedule_key_deletion(KeyId=tenant_key, PendingWindowInDays=7)  # shreds every copy, at its end
    assert kms_admin.describe_key(KeyId=tenant_key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    kms_admin.cancel_key_deletion(KeyId=tenant_key)  # within the window, undone
    assert kms_admin.describe_key(KeyId=tenant_key)["KeyMetadata"]["KeyState"] == "Disabled"
    kms_admin.enable_key(KeyId=tenant_key)
    reader = key_store(table, kms, dynamodb, tenant_key)
    assert secret_model(ddb_url, reader.keyring("acme")).from_raw_data(written).value == "v"


def test_a_running_process_drops_a_destroyed_tenants_keys_at_its_next_refresh(
    ddb_url: str, kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    admin = key_store(table, kms, dynamodb, kms_key)
    admin.create_keyset("acme", kms_key)
    clock = Clock()
    source = key_store(table, kms, dynamodb, kms_key).keyring("acme", ttl_seconds=60, clock=clock)
    Secret = secret_model(ddb_url, source)
    written = Secret(pk="a", value="v").serialize()
    admin.destroy_keyset("acme")

    assert Secret.from_raw_data(written).value == "v"  # within its TTL: what Destruction.remains says
    assert source.holds_keys
    clock.now += 61
    with pytest.raises(KeyProviderError) as raised:
        Secret.from_raw_data(written)
    assert raised.value.code == "keyset_destroyed" and str(raised.value).startswith(
        f"keyset 'acme' in key store {table!r} was destroyed ("
    )
    assert not source.holds_keys  # dropped at once, and every later use asks the store again
    with pytest.raises(KeyProviderError):
        Secret.from_raw_data(written)


def test_every_row_of_the_principal_table_names_tests_that_exist() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "security.md").read_text(encoding="utf-8")
    section = page.split("## The KMS key store, principal by principal")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| **")]
    assert len(rows) == 6
    for row in rows:
        named = row.rstrip(" |").rsplit(" | ", 1)[1]
        module = None
        found = 0
        for token in named.replace("`", "").split(", "):
            path, _, test = token.partition("::")
            module = path or module
            assert module, row
            source = (root / "tests" / "integration" / module).read_text(encoding="utf-8")
            assert test and f"def {test}(" in source, token
            found += 1
        assert found, row
