"""Identity-bound attributes: values written in a lock context read back only in the same one."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest
from pynamodb.attributes import UnicodeAttribute

from pynamodb_stash import (
    ConfigurationError,
    DecryptionError,
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    EncryptionError,
    Keyring,
    lock_context,
)


class Vault(EncryptedMapAttribute):
    pin = EncryptedAttribute(str, identity_bound=True)


@pytest.fixture
def records(ddb_url: str, table_name: str) -> Iterator[Any]:
    class Record(EncryptedModel):
        class Meta:
            host = ddb_url
            region = "us-east-1"
            billing_mode = "PAY_PER_REQUEST"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        diary = EncryptedAttribute(str, identity_bound=True, null=True)
        email = EncryptedAttribute(str, equality=True, identity_bound=True, null=True)
        note = EncryptedAttribute(str, null=True)  # not identity-bound
        vault = Vault(null=True)

    Record.Meta.table_name = table_name
    Record.create_table(wait=True)
    yield Record
    Record.delete_table()


def test_the_same_claims_read_back(records: Any) -> None:
    with lock_context(sub="user-123"):
        records(pk="r1", diary="dear diary", email="u@example.com", vault=Vault(pin="0000")).save()
        record = records.get("r1")
    assert (record.diary, record.email, record.vault.pin) == ("dear diary", "u@example.com", "0000")
    with lock_context(sub="user-123"):  # claims, not the block, are what count
        assert records.get("r1").diary == "dear diary"


def test_other_claims_or_none_cannot_read(records: Any) -> None:
    with lock_context(sub="user-123", org="acme"):
        records(pk="r1", diary="dear diary").save()
    with lock_context(sub="user-999", org="acme"), pytest.raises(DecryptionError) as raised:
        records.get("r1")
    assert "lock context" in str(raised.value) and "dear diary" not in str(raised.value)
    with lock_context(sub="user-123"), pytest.raises(DecryptionError):  # a claim short
        records.get("r1")
    with pytest.raises(DecryptionError) as missing:
        records.get("r1")
    assert missing.value.code == "missing_lock_context"
    with lock_context(org="acme", sub="user-123"):  # the order of the claims does not matter
        assert records.get("r1").diary == "dear diary"


def test_writing_without_a_lock_context_is_refused(records: Any) -> None:
    with pytest.raises(EncryptionError) as raised:
        records(pk="r1", diary="dear diary").save()
    assert raised.value.code == "missing_lock_context"
    records(pk="r2", note="not bound").save()  # items without identity-bound values need none
    assert records.get("r2").note == "not bound"


def test_queries_still_hash_identity_bound_values(records: Any) -> None:
    with lock_context(sub="user-123"):
        records(pk="r1", email="u@example.com").save()
        assert [r.pk for r in records.scan(records.email == "u@example.com")] == ["r1"]


def test_update_binds_the_new_value_to_the_current_claims(records: Any) -> None:
    with lock_context(sub="user-123"):
        record = records(pk="r1", diary="first")
        record.save()
        record.update(actions=[records.diary.set("second")])
        assert records.get("r1").diary == "second"
    with lock_context(sub="someone-else"), pytest.raises(DecryptionError):
        records.get("r1")


def test_lock_contexts_do_not_leak_between_asyncio_tasks(records: Any) -> None:
    with lock_context(sub="user-1"):
        records(pk="r1", diary="one").save()
    with lock_context(sub="user-2"):
        records(pk="r2", diary="two").save()

    async def read(user: str, pk: str) -> str:
        with lock_context(sub=user):
            await asyncio.sleep(0)
            return str(records.get(pk).diary)

    async def both() -> list[str]:
        return list(await asyncio.gather(read("user-1", "r1"), read("user-2", "r2")))

    assert asyncio.run(both()) == ["one", "two"]


@pytest.mark.parametrize("claims", [{}, {"sub": ""}, {"sub": 123}])
def test_bad_claims_are_refused(claims: Any) -> None:
    with pytest.raises(ConfigurationError), lock_context(**claims):
        pass
