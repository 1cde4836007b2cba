"""Every value of an item, compound HMACs included, is keyed by the item's own tenant (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from pynamodb.attributes import UnicodeAttribute
from stashtest import offline_model

from pynamodb_stash import (
    CompoundHmacAttribute,
    DecryptionError,
    EncryptedAttribute,
    Keyring,
    TenantKeyrings,
    tenant,
)

pytestmark = pytest.mark.usefixtures("offline")

RINGS = {"a": Keyring.generate(key_id="a-1"), "b": Keyring.generate(key_id="b-1")}


def org_model(name: str) -> Any:
    return offline_model(
        name,
        keyring=TenantKeyrings(RINGS.__getitem__, attribute="org"),
        org=UnicodeAttribute(),
        email=EncryptedAttribute(str, equality=True),
        kind=UnicodeAttribute(),
        email_kind=CompoundHmacAttribute("email", "kind"),
    )


Member = org_model("Member")


def test_a_compound_hmac_is_keyed_by_the_items_tenant_outside_tenant() -> None:
    item = Member(pk="m1", org="a", email="x@example.com", kind="admin").serialize()  # no tenant() needed
    back = Member.from_raw_data(item)
    assert (back.email, back.kind) == ("x@example.com", "admin")
    with tenant("a"):  # the stored compound is tenant a's: a query in tenant a finds it
        assert item["email_kind__hmac"]["S"] == Member.email_kind.serialize(("x@example.com", "admin"))
    with tenant("b"):
        assert item["email_kind__hmac"]["S"] != Member.email_kind.serialize(("x@example.com", "admin"))


def test_a_compound_moved_to_another_tenants_item_does_not_verify() -> None:
    a = Member(pk="m1", org="a", email="x@example.com", kind="admin").serialize()
    b = Member(pk="m1", org="b", email="x@example.com", kind="admin").serialize()
    assert a["email_kind__hmac"] != b["email_kind__hmac"]
    with pytest.raises(DecryptionError) as raised:
        Member.from_raw_data({**b, "email_kind__hmac": a["email_kind__hmac"]})
    assert raised.value.code == "hmac_mismatch"


def test_an_update_keeps_the_compound_under_the_items_tenant() -> None:
    member = Member(pk="m1", org="b", email="x@example.com", kind="admin")
    kwargs = member.get_update_kwargs_from_instance([Member.email.set("y@example.com")])  # no tenant() set
    sent = kwargs["ExpressionAttributeValues"]
    with tenant("b"):
        expected = Member.email_kind.serialize(("y@example.com", "admin"))
    assert {"S": expected} in sent.values()


def test_decrypt_item_checks_a_compound_under_the_items_tenant() -> None:
    """decrypt_item reads the encrypted values alone, plus what a compound needs: its parts, the tenant."""
    from pynamodb_stash import decrypt_item

    item = Member(pk="m1", org="a", email="x@example.com", kind="admin").serialize()
    assert decrypt_item(Member, item)["email"] == {"S": "x@example.com"}
    other = Member(pk="m1", org="a", email="x@example.com", kind="user").serialize()
    with pytest.raises(DecryptionError) as raised:
        decrypt_item(Member, {**item, "email_kind__hmac": other["email_kind__hmac"]})
    assert raised.value.code == "hmac_mismatch"
