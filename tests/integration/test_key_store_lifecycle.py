"""The KMS key store's lifecycle on DynamoDB Local and moto's KMS: the record format, atomic promotion,
undoing a retirement, rewrapping, shredding, upgrading a key store of the earlier format, the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from typing import Any, Dict, List, Tuple

import boto3
import pytest
from stashtest import Counter, key_store, secret_model

from pynamodb_stash import (
    ConfigurationError,
    KeyNotFoundError,
    KeyProviderError,
    Keyring,
)
from pynamodb_stash._crypto import Key
from pynamodb_stash.kms import KeyStore

REGION = "us-east-1"


def record(dynamodb: Any, table: str, keyset: str) -> Dict[str, Any]:
    item: Dict[str, Any] = dynamodb.get_item(
        TableName=table, Key={"keyset": {"S": keyset}, "key_id": {"S": "#keyset"}}, ConsistentRead=True
    )["Item"]
    return item


def statuses(store: KeyStore, keyset: str) -> Dict[str, str]:
    return {info.key_id: info.status for info in store.describe(keyset)}


def test_a_keyset_is_one_record_whose_seal_covers_every_field(
    kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    store = key_store(table, kms, dynamodb, kms_key)
    encryption, index = store.create_keyset("app", kms_key)
    added = store.add_key("app")
    item = record(dynamodb, table, "app")
    assert set(item) == {"keyset", "key_id", "format", "version", "kms_key_id", "body", "attest", "material"}
    assert (item["format"]["N"], item["version"]["N"], item["kms_key_id"]["S"]) == ("2", "2", kms_key)
    body = json.loads(bytes(item["body"]["B"]))
    assert set(body) == {"format", "store", "keyset", "incarnation", "version", "kms_key_id", "keys"}
    assert (body["store"], body["keyset"], body["version"], body["kms_key_id"]) == (table, "app", 2, kms_key)
    assert [(k["id"], k["kind"], k["status"]) for k in body["keys"]] == [
        (encryption, "encryption", "active"), (index, "index", "active"), (added, "encryption", "decrypt_only"),
    ]
    # The seal: KMS Encrypt of SHA-256(label | body) and a one-use key, in a context naming the version.
    plaintext = kms.decrypt(
        CiphertextBlob=item["attest"]["B"], KeyId=kms_key,
        EncryptionContext={"pynamodb-stash:key-store": table, "pynamodb-stash:keyset": "app",
                           "pynamodb-stash:record": "keyset-v2", "pynamodb-stash:version": "2"},
    )["Plaintext"]
    assert plaintext[:32] == hashlib.sha256(b"pynamodb-stash/keyset/v2" + bytes(item["body"]["B"])).digest()
    assert len(plaintext) == 64 and len(bytes(item["material"]["B"])) == 2 + 11 + 12 + 3 * 32 + 16


def race(stores: List[KeyStore], candidates: List[str]) -> Tuple[List[str], List[BaseException]]:
    """Two processes promote one candidate each at once, while a third reads the keyset again and again."""
    start = threading.Barrier(3)
    done = threading.Event()
    seen: List[str] = []
    errors: List[BaseException] = []

    def promote(store: KeyStore, key_id: str) -> None:
        try:
            start.wait()
            store.promote("app", key_id)
        except BaseException as error:  # handed to the test
            errors.append(error)

    def read(store: KeyStore) -> None:
        try:
            start.wait()
            while not done.is_set():  # every version it reads has exactly one primary, or it raises
                seen.append(store.keyring("app", ttl_seconds=1e-9).current().primary_key_id)
        except BaseException as error:
            errors.append(error)

    promoters = [threading.Thread(target=promote, args=(stores[i], candidates[i])) for i in range(2)]
    reader = threading.Thread(target=read, args=(stores[2],))
    for thread in (*promoters, reader):
        thread.start()
    for thread in promoters:
        thread.join()
    done.set()
    reader.join()
    return seen, errors


def test_two_concurrent_promotions_leave_exactly_one_primary(
    kms_url: str, ddb_url: str, kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    admin = key_store(table, kms, dynamodb, kms_key)
    first, _ = admin.create_keyset("app", kms_key)
    for _ in range(4):
        candidates = [admin.add_key("app"), admin.add_key("app")]
        version = int(record(dynamodb, table, "app")["version"]["N"])
        # Each process with its own clients and its own memory, as separate processes have.
        stores = [
            key_store(table, boto3.client("kms", endpoint_url=kms_url, region_name=REGION),
                      boto3.client("dynamodb", endpoint_url=ddb_url, region_name=REGION), kms_key)
            for _ in range(3)
        ]
        seen, errors = race(stores, candidates)
        assert errors == []
        final = statuses(admin, "app")
        active = [key for key, status in final.items() if status == "active" and not key.startswith("idx-")]
        assert len(active) == 1 and active[0] in candidates
        assert int(record(dynamodb, table, "app")["version"]["N"]) == version + 2  # both applied, in turn
        assert seen and set(seen) <= set(final)
    assert statuses(admin, "app")[first] == "decrypt_only"


def test_retire_then_promote_or_reinstate_undoes_a_mistake(
    ddb_url: str, kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    store = key_store(table, kms, dynamodb, kms_key)
    old, index = store.create_keyset("app", kms_key)
    Secret = secret_model(ddb_url, store.keyring("app", ttl_seconds=1e-9))
    under_old = Secret(pk="a", value="v").serialize()
    new = store.rotate("app")
    store.retire("app", old)  # the mistake: values under it were not all re-encrypted
    with pytest.raises(KeyNotFoundError) as raised:
        Secret.from_raw_data(under_old)
    assert "retired" in str(raised.value)

    store.reinstate("app", old)
    assert statuses(store, "app") == {old: "decrypt_only", new: "active", index: "active"}
    assert Secret.from_raw_data(under_old).value == "v"

    store.retire("app", old)
    store.promote("app", old)  # promoting a retired key works too, and makes it encrypt again
    assert statuses(store, "app") == {old: "active", new: "decrypt_only", index: "active"}
    assert Secret.from_raw_data(under_old).value == "v"
    version = record(dynamodb, table, "app")["version"]["N"]
    store.promote("app", old)  # already active: nothing written
    store.reinstate("app", new)  # not retired: nothing written
    assert record(dynamodb, table, "app")["version"]["N"] == version

    for change in (store.retire, store.promote, store.reinstate):
        with pytest.raises(ConfigurationError) as refused:
            change("app", index)  # the index key is not an encryption key
        assert f"keyset 'app' has no encryption key {index!r}" == str(refused.value)
    with pytest.raises(ConfigurationError) as refused:
        store.retire("app", old)
    assert str(refused.value) == f"key {old!r} of keyset 'app' is active; promote another first"


def test_rewrap_gives_a_keyset_its_own_kms_key_and_destroy_refuses_to_delete_a_shared_one(
    ddb_url: str, kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    own = kms.create_key(Description="tenant acme")["KeyMetadata"]["KeyId"]
    store = key_store(table, kms, dynamodb, kms_key, own)
    store.create_keyset("acme", kms_key)
    store.create_keyset("globex", kms_key)
    written = secret_model(ddb_url, store.keyring("acme"))(pk="a", value="v").serialize()

    with pytest.raises(ConfigurationError) as shared:
        store.destroy_keyset("acme", schedule_kms_key_deletion=True, pending_window_days=7)
    assert str(shared.value) == (
        f"KMS key {kms_key!r} also seals keysets 'globex' of key store {table!r}: deleting it would shred them "
        "too; nothing was done"
    )
    assert kms.describe_key(KeyId=kms_key)["KeyMetadata"]["KeyState"] == "Enabled"

    counter = Counter(kms)
    store.rewrap("acme", own)
    assert counter.calls == ["Decrypt", "Encrypt"]
    assert {info.kms_key_id for info in store.describe("acme")} == {own}
    assert secret_model(ddb_url, key_store(table, kms, dynamodb, own).keyring("acme")).from_raw_data(
        written
    ).value == "v"
    with pytest.raises(KeyProviderError) as raised:  # a reader that does not allow the new key
        key_store(table, kms, dynamodb, kms_key).keyring("acme").current()
    assert raised.value.code == "kms_key_not_allowed"
    with pytest.raises(ConfigurationError):
        store.destroy_keyset("acme", schedule_kms_key_deletion=True, pending_window_days=31)
    destruction = store.destroy_keyset("acme", schedule_kms_key_deletion=True, pending_window_days=7)
    assert destruction.kms_key_id == own and destruction.kms_key_deletion is not None
    assert kms.describe_key(KeyId=own)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert "scheduled for deletion" in str(destruction) and "what remains:" in str(destruction)
    assert store.describe("globex")  # the other keyset, on the shared key, is untouched

    with pytest.raises(ConfigurationError):
        store.destroy_keyset("acme")  # nothing left to destroy
    again, _ = store.create_keyset("acme", kms_key)  # a destroyed name may be used again
    assert store.keyring("acme").current().primary_key_id == again


def test_destroy_sees_a_kms_key_shared_under_another_name(
    kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    arn = kms.describe_key(KeyId=kms_key)["KeyMetadata"]["Arn"]
    alias = f"alias/{table}"
    kms.create_alias(AliasName=alias, TargetKeyId=kms_key)
    store = key_store(table, kms, dynamodb, kms_key, arn, alias)
    for keyset, spelling in (("a", kms_key), ("b", arn), ("c", alias)):
        store.create_keyset(keyset, spelling)
    for keyset in ("a", "b", "c"):
        with pytest.raises(ConfigurationError) as shared:
            store.destroy_keyset(keyset, schedule_kms_key_deletion=True, pending_window_days=7)
        others = sorted({"a", "b", "c"} - {keyset})
        assert f"also seals keysets {others[0]!r}, {others[1]!r} of key store" in str(shared.value)
    assert kms.describe_key(KeyId=kms_key)["KeyMetadata"]["KeyState"] == "Enabled"
    store.destroy_keyset("b")
    store.destroy_keyset("c")
    destruction = store.destroy_keyset("a", schedule_kms_key_deletion=True, pending_window_days=7)
    assert destruction.kms_key_id == kms_key
    assert kms.describe_key(KeyId=kms_key)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_bad_settings_are_configuration_errors_before_any_kms_call(
    kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    bad_settings: Tuple[Any, ...] = ("one-key-as-a-string", [], [""], [42], 42)
    for bad in bad_settings:
        with pytest.raises(ConfigurationError):
            KeyStore(table, kms_key_ids=bad, kms_client=kms, dynamodb_client=dynamodb)
    counter = Counter(kms)
    store = key_store(table, kms, dynamodb, kms_key)
    with pytest.raises(ConfigurationError) as raised:
        store.create_keyset("app", "some-other-key")
    assert str(raised.value) == f"KMS key 'some-other-key' is not in kms_key_ids of KeyStore({table!r})"
    with pytest.raises(ConfigurationError):
        store.create_keyset("", kms_key)
    broken = KeyStore(table, kms_key_ids=lambda arn: 1 / 0 > 0, kms_client=kms, dynamodb_client=dynamodb)
    key_store(table, kms, dynamodb, kms_key).create_keyset("app", kms_key)
    counter.calls.clear()
    with pytest.raises(ConfigurationError) as raised:
        broken.describe("app")
    assert "raised ZeroDivisionError" in str(raised.value) and counter.calls == []


# -- the format before authentication, and the upgrade ---------------------------------------------------


def legacy_key(
    kms: Any, dynamodb: Any, table: str, keyset: str, kind: str, status: str, created_at: str, kms_key: str
) -> Key:
    """A key row exactly as pynamodb-stash wrote it before record format 2."""
    key_id = ("idx-" if kind == "index" else "k-") + secrets.token_hex(4)
    data = kms.generate_data_key(KeyId=kms_key, KeySpec="AES_256", EncryptionContext={
        "pynamodb-stash:key-store": table, "pynamodb-stash:keyset": keyset,
        "pynamodb-stash:key-id": key_id, "pynamodb-stash:kind": kind,
    })
    dynamodb.put_item(TableName=table, Item={
        "keyset": {"S": keyset}, "key_id": {"S": key_id}, "kind": {"S": kind}, "status": {"S": status},
        "created_at": {"S": created_at}, "kms_key_id": {"S": kms_key}, "wrapped": {"B": data["CiphertextBlob"]},
    }, ConditionExpression="attribute_not_exists(key_id)")
    return Key(key_id, data["Plaintext"])


def legacy_keyset(kms: Any, dynamodb: Any, table: str, kms_key: str) -> Tuple[Key, Key, Key, Key]:
    """Two active encryption keys (a promotion cut short), a retired one and the index key."""
    older = legacy_key(kms, dynamodb, table, "app", "encryption", "active", "2025-01-01T00:00:00+00:00", kms_key)
    newer = legacy_key(kms, dynamodb, table, "app", "encryption", "active", "2025-06-01T00:00:00+00:00", kms_key)
    retired = legacy_key(kms, dynamodb, table, "app", "encryption", "retired", "2024-01-01T00:00:00+00:00", kms_key)
    index = legacy_key(kms, dynamodb, table, "app", "index", "active", "2024-01-01T00:00:00+00:00", kms_key)
    return older, newer, retired, index


def test_upgrade_authenticates_a_key_store_of_the_earlier_format_and_loses_nothing(
    ddb_url: str, kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    older, newer, retired, index = legacy_keyset(kms, dynamodb, table, kms_key)
    # Values as processes of the earlier version wrote them, each under one of its keys.
    written = {
        key.id: secret_model(ddb_url, Keyring(key, index_key=index))(pk=key.id, value=f"under {key.id}").serialize()
        for key in (older, newer, retired)
    }
    store = key_store(table, kms, dynamodb, kms_key)
    with pytest.raises(KeyProviderError) as raised:
        store.keyring("app").current()
    assert raised.value.code == "keyset_not_upgraded"
    assert str(raised.value) == (
        f"keyset 'app' in key store {table!r} is in the format before authenticated records: run "
        f"`pynamodb-stash keystore upgrade --table {table} --keyset app` (KeyStore.upgrade) once, then it is read"
    )

    preview = store.upgrade("app", dry_run=True)
    assert preview.dry_run and not preview.upgraded and "nothing written" in str(preview)
    assert {k.key_id: k.status for k in preview.keys} == {
        older.id: "decrypt_only", newer.id: "active", retired.id: "retired", index.id: "active",
    }
    assert dynamodb.get_item(TableName=table, Key={"keyset": {"S": "app"}, "key_id": {"S": "#keyset"}}).get(
        "Item") is None

    counter = Counter(kms)
    done = store.upgrade("app")
    assert done.upgraded and done.legacy_rows == 4 and done.removed_legacy_rows == 0
    assert counter.calls == ["Decrypt"] * 4 + ["Encrypt"]
    Secret = secret_model(ddb_url, key_store(table, kms, dynamodb, kms_key).keyring("app"))
    assert Secret.from_raw_data(written[older.id]).value == f"under {older.id}"
    assert Secret.from_raw_data(written[newer.id]).value == f"under {newer.id}"
    with pytest.raises(KeyNotFoundError):
        Secret.from_raw_data(written[retired.id])  # retired before, retired now: reinstate() reads it
    assert Secret(pk="x", value="v").serialize()["value__hmac"] == secret_model(
        ddb_url, Keyring(newer, index_key=index))(pk="x", value="v").serialize()["value__hmac"]

    counter.calls.clear()
    again = store.upgrade("app")  # idempotent: authenticates, writes nothing
    assert not again.upgraded and again.legacy_rows == 4 and counter.calls == ["Decrypt"]
    assert "already upgraded" in str(again)

    planted = legacy_key(kms, dynamodb, table, "app", "encryption", "active", "2999-01-01T00:00:00+00:00", kms_key)
    assert key_store(table, kms, dynamodb, kms_key).keyring("app").current().primary_key_id == newer.id
    with pytest.raises(ConfigurationError) as refused:
        store.upgrade("app", remove_legacy=True)
    assert repr(planted.id) in str(refused.value) and "nothing was deleted" in str(refused.value)
    dynamodb.delete_item(TableName=table, Key={"keyset": {"S": "app"}, "key_id": {"S": planted.id}})
    removed = store.upgrade("app", remove_legacy=True)
    assert (removed.legacy_rows, removed.removed_legacy_rows) == (0, 4)
    assert dynamodb.query(TableName=table, KeyConditionExpression="keyset = :k",
                          ExpressionAttributeValues={":k": {"S": "app"}})["Count"] == 1
    store.reinstate("app", retired.id)
    Secret = secret_model(ddb_url, key_store(table, kms, dynamodb, kms_key).keyring("app"))
    assert Secret.from_raw_data(written[retired.id]).value == f"under {retired.id}"


def test_upgrade_refuses_a_row_under_a_kms_key_not_allowed_before_any_kms_call(
    kms: Any, dynamodb: Any, kms_key: str, table: str
) -> None:
    foreign = kms.create_key(Description="another account's key")["KeyMetadata"]["KeyId"]
    legacy_keyset(kms, dynamodb, table, kms_key)
    planted = legacy_key(kms, dynamodb, table, "app", "encryption", "decrypt_only", "2025-07-01", foreign)
    counter = Counter(kms)
    with pytest.raises(KeyProviderError) as raised:
        key_store(table, kms, dynamodb, kms_key).upgrade("app")
    assert raised.value.code == "kms_key_not_allowed" and counter.calls == []
    assert str(raised.value) == (
        f"keyset 'app' in key store {table!r} (key {planted.id!r}) is sealed under KMS key {foreign!r}, which "
        "kms_key_ids does not allow: refused before any KMS call"
    )


# -- the command line ------------------------------------------------------------------------------------


def test_the_keystore_command_rewraps_reinstates_upgrades_and_destroys(
    ddb_url: str, kms_url: str, kms: Any, dynamodb: Any, kms_key: str, table_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pynamodb_stash._cli import main

    table = f"{table_name}-cli"
    own = kms.create_key(Description="tenant acme")["KeyMetadata"]["KeyId"]
    common = ["--table", table, "--endpoint", ddb_url, "--kms-endpoint", kms_url, "--region", REGION]
    allowed = [*common, "--allowed-kms-key-id", kms_key, "--allowed-kms-key-id", own]
    assert main(["keystore", "create-table", *common]) == 0
    try:
        assert main(["keystore", "create-keyset", *allowed, "--keyset", "acme", "--kms-key-id", kms_key]) == 0
        first = capsys.readouterr().out.split("encryption key ")[1].split(",")[0]
        assert main(["keystore", "rotate", *allowed, "--keyset", "acme", "--promote-now"]) == 0
        assert main(["keystore", "retire", *allowed, "--keyset", "acme", "--key-id", first]) == 0
        assert main(["keystore", "reinstate", *allowed, "--keyset", "acme", "--key-id", first]) == 0
        assert f"{first} is decrypt-only again" in capsys.readouterr().out
        assert main(["keystore", "rewrap", *common, "--allowed-kms-key-id", kms_key, "--keyset", "acme",
                     "--kms-key-id", own]) == 0
        assert main(["keystore", "upgrade", *allowed]) == 0  # every keyset of the table: already upgraded
        out = capsys.readouterr().out
        assert f"sealed under KMS key {own}" in out and "keyset 'acme': already upgraded" in out

        assert main(["keystore", "destroy-keyset", *allowed, "--keyset", "acme", "--schedule-kms-key-deletion",
                     "--pending-window-days", "7", "--yes"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("keyset 'acme': deleted the sealed copies of 3 keys")
        assert f"KMS key {own} is scheduled for deletion on " in out and "what remains:" in out
        assert main(["keystore", "list", *allowed, "--keyset", "acme"]) == 1
        assert "pynamodb-stash: keyset_destroyed: keyset 'acme'" in capsys.readouterr().err
        assert main(["keystore", "upgrade", *allowed]) == 0  # every keyset: a destroyed one is skipped
        assert "keyset 'acme': destroyed, nothing to upgrade" in capsys.readouterr().out
        assert main(["keystore", "upgrade", *allowed, "--keyset", "acme"]) == 1  # named: an error
    finally:
        dynamodb.delete_table(TableName=table)


def test_no_message_report_repr_or_cli_output_holds_key_material(
    ddb_url: str, kms_url: str, kms: Any, dynamodb: Any, kms_key: str, table: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pynamodb_stash._cli import main

    store = key_store(table, kms, dynamodb, kms_key)
    store.create_keyset("app", kms_key)
    store.rotate("app")
    _, keys = store._read("app")
    item = record(dynamodb, table, "app")
    secrets_seen = [key.export_secret_bytes() for key in keys.values()]
    secrets_seen += [bytes(item["attest"]["B"]), bytes(item["material"]["B"])]
    forms = [form for raw in secrets_seen for form in (
        raw.hex(), base64.b64encode(raw).decode()[:16], base64.urlsafe_b64encode(raw).decode()[:16],
    )]

    texts = [repr(store), repr(store.keyring("app")), repr(store.keyring("app").current()),
             repr(store.describe("app")), str(store.upgrade("app"))]
    common = ["--table", table, "--endpoint", ddb_url, "--kms-endpoint", kms_url, "--region", REGION,
              "--allowed-kms-key-id", kms_key]
    main(["keystore", "list", *common, "--keyset", "app"])
    tampered = dict(item, material={"B": bytes(item["material"]["B"])[:-1] + b"\0"})
    dynamodb.put_item(TableName=table, Item=tampered)
    main(["keystore", "list", *common, "--keyset", "app"])
    texts.append(str(store.destroy_keyset("app")))
    out = capsys.readouterr()
    texts += [out.out, out.err]
    assert "key_store_tampered" in out.err
    for text in texts:
        assert not any(form in text for form in forms)
