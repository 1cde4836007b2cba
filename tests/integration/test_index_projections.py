"""Reads through secondary indexes get what the index holds, never less, and refuse what they cannot check."""

from __future__ import annotations

from typing import Any

import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection, LocalSecondaryIndex
from stashtest import created, table_meta, unique

import pynamodb_stash
from pynamodb_stash import (
    EncryptedAttribute,
    EncryptedModel,
    Equality,
    HmacAttribute,
    Keyring,
    TenantKeyrings,
    UnsupportedQueryError,
)


def test_a_projected_read_of_a_keys_only_lsi_keeps_what_dynamodb_fetches_from_the_table(
    ddb_url: str, keyring: Keyring
) -> None:
    """DynamoDB fetches from the table what a local index does not project: the value, the tenant attribute
    (whose keyring opens it) and the discriminator come back, as without pynamodb-stash."""

    class SsnIndex(LocalSecondaryIndex[Any]):
        class Meta:
            index_name = "SsnIndex"
            projection = KeysOnlyProjection()

        org = UnicodeAttribute(hash_key=True)
        ssn = HmacAttribute(range_key=True)

    class Doc(EncryptedModel):
        Meta = table_meta(ddb_url, unique("lsi_projection"), TenantKeyrings(lambda name: keyring, attribute="tenant"))
        org = UnicodeAttribute(hash_key=True)
        doc_id = UnicodeAttribute(range_key=True)
        tenant = UnicodeAttribute()
        ssn = EncryptedAttribute(str, equality=True)
        body = EncryptedAttribute(str)
        ssn_index = SsnIndex()

    for _ in created(Doc):
        with pynamodb_stash.tenant("t1"):
            Doc(org="o", doc_id="d1", tenant="t1", ssn="123-45-6789", body="secret body").save()
            (found,) = Doc.ssn_index.query("o", Doc.ssn == "123-45-6789", attributes_to_get=["ssn", "body"])
            assert (found.ssn, found.body, found.tenant) == ("123-45-6789", "secret body", "t1")
        (found,) = Doc.ssn_index.query("o", attributes_to_get=["body"])  # no tenant(): the item names it
        assert (found.body, found.tenant) == ("secret body", "t1")


def test_exact_matching_through_an_index_that_does_not_hold_the_value_is_refused(
    ddb_url: str, keyring: Keyring
) -> None:
    """A truncated HMAC's false positives are dropped after decryption; a KEYS_ONLY global index holds no
    value to decrypt, so such a query would find nothing: it is refused when made, naming the remedy."""

    class ByStatus(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = "ByStatus"
            projection = KeysOnlyProjection()

        status = HmacAttribute(hash_key=True)

    class Ticket(EncryptedModel):
        Meta = table_meta(ddb_url, unique("truncated_keys_only"), keyring)
        pk = UnicodeAttribute(hash_key=True)
        status = EncryptedAttribute(str, equality=Equality(hmac_bits=16))
        by_status = ByStatus()

    for _ in created(Ticket):
        Ticket(pk="t1", status="open").save()
        for read in (lambda: Ticket.by_status.query("open"), lambda: Ticket.by_status.count("open")):
            with pytest.raises(UnsupportedQueryError, match="INCLUDE or ALL"):
                read()
        assert [t.pk for t in Ticket.scan(Ticket.status == "open")] == ["t1"]
        assert [t.pk for t in Ticket.scan(Ticket.status == "open", attributes_to_get=["pk"])] == ["t1"]
