"""DynamoDB's item size limit, checked before sending; many threads sharing keyrings and models."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

import pytest
import stashtest
from pynamodb.attributes import UnicodeAttribute

from pynamodb_stash import (
    EncryptedAttribute,
    EncryptedModel,
    EncryptionError,
    Keyring,
    TenantKeyrings,
    tenant,
)


def test_an_item_over_400_kb_once_encrypted_is_refused_before_any_request(ddb_url: str, table_name: str) -> None:
    class Document(EncryptedModel):
        class Meta:
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        body = EncryptedAttribute(bytes)
        summary = EncryptedAttribute(str)

    Document.Meta.table_name = table_name
    Document.create_table(wait=True)
    try:
        fits = b"x" * (400 * 1024 - 200)
        Document(pk="ok", body=fits, summary="s").save()  # right under the limit: stored
        assert len(Document.get("ok").body) == len(fits)
        too_big = b"x" * (400 * 1024 - 60)  # fits as plaintext, not once encrypted
        with pytest.raises(EncryptionError) as raised:
            Document(pk="big", body=too_big, summary="secret summary").save()
        message = str(raised.value)
        assert raised.value.code == "item_too_large" and "largest encrypted attribute is body" in message
        assert str(409600) in message and "secret" not in message
        assert [d.pk for d in Document.scan()] == ["ok"]  # nothing was sent
    finally:
        Document.delete_table()


def test_sixteen_threads_share_keyrings_and_models() -> None:
    rings = {name: Keyring.generate(key_id=f"{name}-key") for name in ("acme", "globex", "initech")}

    class Shared(EncryptedModel):
        class Meta:
            table_name = "shared"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True)
        note = EncryptedAttribute(str)

    class PerTenant(EncryptedModel):
        class Meta:
            table_name = "per-tenant"
            keyring = TenantKeyrings(rings.__getitem__, attribute="tenant_id")

        pk = UnicodeAttribute(hash_key=True)
        tenant_id = UnicodeAttribute()
        email = EncryptedAttribute(str, equality=True)

    def work(worker: int) -> List[Tuple[Any, Dict[str, Any], str]]:
        generator = random.Random(worker)
        stored = []
        for i in range(625):  # 16 x 625 = 10,000 items
            pk = f"w{worker}-{i}"
            if generator.random() < 0.5:
                item = Shared(pk=pk, email=f"{pk}@example.com", note=f"note {pk}").serialize()
                stored.append((Shared, item, pk))
            else:
                name = generator.choice(sorted(rings))
                item = PerTenant(pk=pk, tenant_id=name, email=f"{pk}@{name}.example").serialize()
                stored.append((PerTenant, item, pk))
        for model, item, pk in stored:  # read back, in this thread, while the others write
            back = model.from_raw_data(item)
            assert back.email.startswith(f"{pk}@")
        return stored

    barrier = threading.Barrier(16)

    def start(worker: int) -> List[Tuple[Any, Dict[str, Any], str]]:
        barrier.wait()
        return work(worker)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = [item for chunk in pool.map(start, range(16)) for item in chunk]
    assert len(results) == 10_000
    for model, item, pk in results[::97]:  # and again from the main thread
        assert model.from_raw_data(item).email.startswith(f"{pk}@")
    with tenant("acme"):
        stored = PerTenant(pk="p", tenant_id="acme", email="x").serialize()
        assert PerTenant.email.hmac("x") == stored["email__hmac"]["S"]


def test_an_update_past_400_kb_says_what_encryption_adds(ddb_url: str) -> None:
    """DynamoDB refuses an UpdateItem that makes the item pass 400 KB; the message says what the update's
    encrypted values take, as save() does, not only DynamoDB's "Item size to update has exceeded"."""
    meta = stashtest.table_meta(ddb_url, stashtest.unique("update_limit"), Keyring.generate())
    model = type("Big", (EncryptedModel,), {
        "Meta": meta, "pk": UnicodeAttribute(hash_key=True), "filler": UnicodeAttribute(null=True),
        "note": EncryptedAttribute(str, null=True),
    })
    for _ in stashtest.created(model):
        item = model(pk="big", filler="f" * 300_000)
        item.save()
        with pytest.raises(EncryptionError) as raised:
            item.update(actions=[model.note.set("n" * 120_000)])
        assert raised.value.code == "item_too_large" and "note__source" in str(raised.value)
        with pytest.raises(EncryptionError) as alone:  # refused before any request
            item.update(actions=[model.note.set("n" * 420_000)])
        assert "alone" in str(alone.value)
        item.update(actions=[model.note.set("small")])
        assert model.get("big", consistent_read=True).note == "small"
