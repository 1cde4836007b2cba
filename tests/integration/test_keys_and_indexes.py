"""HMACs as keys: table hash and range keys, GSI and LSI keys, KEYS_ONLY projections, HMAC scopes.

Every lookup takes the plaintext; DynamoDB only sees the HMAC, which equals ``Model.x.hmac(plaintext)``
and can be used directly from boto3.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.expressions.operand import Path
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection, LocalSecondaryIndex
from stashtest import assert_no_plaintext, created, describe, raw_item, table_meta, unique

from pynamodb_stash import (
    EncryptedAttribute,
    EncryptedModel,
    HmacAttribute,
    HmacDigest,
    Keyring,
    UnsupportedQueryError,
)

# -- models -------------------------------------------------------------------------------------------


def define_account(url: str, table: str, kr: Keyring) -> Any:
    """Table hash key = HMAC of the email; a KEYS_ONLY GSI on the HMAC of the phone."""

    class PhoneIndex(GlobalSecondaryIndex):
        class Meta:
            index_name = "PhoneIndex"
            projection = KeysOnlyProjection()

        phone = HmacAttribute(hash_key=True)

    class Account(EncryptedModel):
        Meta = table_meta(url, table, kr)

        email = EncryptedAttribute(str, equality=True, hash_key=True)
        name = EncryptedAttribute(str)
        phone = EncryptedAttribute(str, equality=True, null=True)
        plan = UnicodeAttribute(null=True)
        phone_index = PhoneIndex()

    return Account


def define_membership(url: str, table: str, kr: Keyring) -> Any:
    """Plain hash key, table range key = HMAC of the member's email."""

    class Membership(EncryptedModel):
        Meta = table_meta(url, table, kr)

        org = UnicodeAttribute(hash_key=True)
        member = EncryptedAttribute(str, equality=True, range_key=True)
        role = EncryptedAttribute(str)

    return Membership


def define_user(url: str, table: str, kr: Keyring, *, hmac_scope: str | None = None) -> Any:
    """GSI on an HMAC (ALL) and a GSI with an HMAC hash key and a plain range key."""

    class EmailIndex(GlobalSecondaryIndex):
        class Meta:
            index_name = "EmailIndex"
            projection = AllProjection()

        email = HmacAttribute(hash_key=True)

    class TeamIndex(GlobalSecondaryIndex):
        class Meta:
            index_name = "TeamIndex"
            projection = AllProjection()

        team = HmacAttribute(hash_key=True)
        joined = NumberAttribute(range_key=True)

    class User(EncryptedModel):
        Meta = table_meta(url, table, kr)

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True, hmac_scope=hmac_scope)
        backup_email = EncryptedAttribute(str, equality=True, null=True)
        name = EncryptedAttribute(str)
        team = EncryptedAttribute(str, equality=True, null=True)
        joined = NumberAttribute(null=True)
        email_index = EmailIndex()
        team_index = TeamIndex()

    return User


def define_document(url: str, table: str, kr: Keyring) -> tuple[Any, Any]:
    """An LSI whose range key is the HMAC of the SSN."""

    class SsnIndex(LocalSecondaryIndex):
        class Meta:
            index_name = "SsnIndex"
            projection = AllProjection()

        tenant = UnicodeAttribute(hash_key=True)
        ssn = HmacAttribute(range_key=True)

    class Document(EncryptedModel):
        Meta = table_meta(url, table, kr)

        tenant = UnicodeAttribute(hash_key=True)
        doc_id = UnicodeAttribute(range_key=True)
        ssn = EncryptedAttribute(str, equality=True)
        body = EncryptedAttribute(str)
        ssn_index = SsnIndex()

    return Document, SsnIndex


# -- fixtures (and ``keyring``, ``client`` from conftest.py) ------------------------------------------


@pytest.fixture(scope="module")
def Account(ddb_url: str, keyring: Keyring) -> Iterator[Any]:
    yield from created(define_account(ddb_url, unique("keys_accounts"), keyring))


@pytest.fixture(scope="module")
def Membership(ddb_url: str, keyring: Keyring) -> Iterator[Any]:
    yield from created(define_membership(ddb_url, unique("keys_members"), keyring))


@pytest.fixture(scope="module")
def User(ddb_url: str, keyring: Keyring) -> Iterator[Any]:
    yield from created(define_user(ddb_url, unique("keys_users"), keyring))


@pytest.fixture(scope="module")
def document_models(ddb_url: str, keyring: Keyring) -> Iterator[tuple[Any, Any]]:
    document, index_cls = define_document(ddb_url, unique("keys_docs"), keyring)
    for model in created(document):
        yield model, index_cls


def new_email(tag: str = "mail") -> str:
    return f"{unique(tag)}@secret-domain.example"


# -- table hash key = HMAC ----------------------------------------------------------------------------


def test_hmac_hash_key_schema(Account: Any, client: Any) -> None:
    table = describe(client, Account.Meta.table_name)
    assert table["KeySchema"] == [{"AttributeName": "email__hmac", "KeyType": "HASH"}]
    definitions = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert definitions == {"email__hmac": "S", "phone__hmac": "S"}
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["KeySchema"] == [{"AttributeName": "phone__hmac", "KeyType": "HASH"}]
    assert gsi["Projection"]["ProjectionType"] == "KEYS_ONLY"
    assert Account._hash_keyname == "email__hmac"
    assert Account.email__hmac.is_hash_key and not Account.email.is_hash_key


def test_positional_constructor_save_and_get_by_plaintext(Account: Any, client: Any) -> None:
    email = new_email("alice")
    account = Account(email, name="Alice Secret", phone="+1-555-0100", plan="pro")
    assert account.email == email
    account.save()

    digest = Account.email.hmac(email)
    raw = raw_item(client, Account.Meta.table_name, {"email__hmac": {"S": digest}})
    assert raw is not None
    assert set(raw) == {
        "email__hmac",
        "email__source",
        "name__source",
        "phone__source",
        "phone__hmac",
        "plan",
    }
    assert raw["email__source"].keys() == {"B"}
    assert raw["phone__hmac"] == {"S": Account.phone.hmac("+1-555-0100")}
    assert_no_plaintext(raw, email, "Alice Secret", "+1-555-0100", "secret-domain")

    for key in (email, HmacDigest(digest)):
        got = Account.get(key)
        assert (got.email, got.name, got.phone, got.plan) == (email, "Alice Secret", "+1-555-0100", "pro")
    with pytest.raises(Account.DoesNotExist):
        Account.get(digest)  # a plain str is a plaintext: hashed again, finds nothing
    with pytest.raises(Account.DoesNotExist):
        Account.get(new_email("nobody"))


def test_keyword_constructor_with_hmac_key(Account: Any) -> None:
    email = new_email("kw")
    Account(email=email, name="Keyword").save()
    assert Account.get(email).name == "Keyword"


def test_batch_get_query_and_count_by_plaintext_hash_key(Account: Any) -> None:
    emails = [new_email(f"batch{n}") for n in range(3)]
    for n, email in enumerate(emails):
        Account(email, name=f"Batch {n}").save()

    got = {a.email: a.name for a in Account.batch_get([*emails, new_email("missing")])}
    assert got == {email: f"Batch {n}" for n, email in enumerate(emails)}

    (queried,) = Account.query(emails[1])
    assert (queried.email, queried.name) == (emails[1], "Batch 1")
    assert Account.count(emails[2]) == 1
    assert Account.count(new_email("none")) == 0


def test_refresh_update_and_delete_with_hmac_hash_key(Account: Any, client: Any) -> None:
    email = new_email("crud")
    account = Account(email, name="Before")
    account.save()

    other = Account.get(email)
    other.name = "After"
    other.save()
    account.refresh()
    assert account.name == "After"

    account.update(actions=[Account.name.set("Updated"), Account.plan.set("gold")])
    assert (account.name, account.plan) == ("Updated", "gold")
    assert Account.get(email).name == "Updated"

    by_digest = Account(HmacDigest(Account.email.hmac(email)))
    by_digest.refresh()
    assert (by_digest.email, by_digest.name) == (email, "Updated")

    Account(HmacDigest(Account.email.hmac(email))).delete()
    assert (
        raw_item(client, Account.Meta.table_name, {"email__hmac": {"S": Account.email.hmac(email)}}) is None
    )
    with pytest.raises(Account.DoesNotExist):
        Account.get(email)


def test_keys_only_gsi_results_hold_digests_and_can_be_refreshed_updated_deleted(
    Account: Any, client: Any
) -> None:
    phone = f"+44-{uuid.uuid4().int % 10**8:08d}"
    emails = [new_email("keysonly") for _ in range(3)]
    for n, email in enumerate(emails):
        Account(email, name=f"Keys Only {n}", phone=phone, plan="basic").save()

    results = list(Account.phone_index.query(phone))
    assert len(results) == 3
    for item in results:
        assert item.email is None and item.name is None and item.phone is None and item.plan is None
        stored = item.attribute_values["email__hmac"]
        assert isinstance(stored, HmacDigest)
        assert stored in {Account.email.hmac(e) for e in emails}
        assert isinstance(item.attribute_values["phone__hmac"], HmacDigest)
        assert item.attribute_values["phone__hmac"] == Account.phone.hmac(phone)
    assert Account.phone_index.count(phone) == 3

    first, second, third = results
    first.refresh()
    assert first.email in emails and first.name.startswith("Keys Only") and first.phone == phone

    second.update(actions=[Account.plan.set("upgraded"), Account.name.set("Renamed From Digest")])
    assert second.plan == "upgraded" and second.email in emails and second.phone == phone
    assert second.name == "Renamed From Digest"
    assert Account.get(second.email).name == "Renamed From Digest"

    third_email = next(e for e in emails if Account.email.hmac(e) == third.attribute_values["email__hmac"])
    third.delete()
    with pytest.raises(Account.DoesNotExist):
        Account.get(third_email)
    assert Account.phone_index.count(phone) == 2


# -- table range key = HMAC ---------------------------------------------------------------------------


def test_hmac_range_key(Membership: Any, client: Any) -> None:
    table = describe(client, Membership.Meta.table_name)
    assert table["KeySchema"] == [
        {"AttributeName": "org", "KeyType": "HASH"},
        {"AttributeName": "member__hmac", "KeyType": "RANGE"},
    ]

    org = unique("org")
    members = [new_email(f"member{n}") for n in range(5)]
    for n, member in enumerate(members):
        Membership(org, member, role=f"secret-role-{n}").save()

    raw = raw_item(
        client,
        Membership.Meta.table_name,
        {"org": {"S": org}, "member__hmac": {"S": Membership.member.hmac(members[0])}},
    )
    assert raw is not None
    assert raw["member__source"].keys() == {"B"}
    assert_no_plaintext(raw, members[0], "secret-role-0")

    got = Membership.get(org, members[3])
    assert (got.org, got.member, got.role) == (org, members[3], "secret-role-3")

    (queried,) = Membership.query(org, Membership.member == members[2])
    assert (queried.member, queried.role) == (members[2], "secret-role-2")
    assert Membership.count(org, Membership.member == members[4]) == 1

    all_members = {m.member: m.role for m in Membership.query(org)}
    assert all_members == {m: f"secret-role-{n}" for n, m in enumerate(members)}

    first_page = Membership.query(org, limit=2)
    first = [m.member for m in first_page]
    assert first_page.last_evaluated_key is not None
    rest = [m.member for m in Membership.query(org, last_evaluated_key=first_page.last_evaluated_key)]
    assert len(first) == 2 and sorted(first + rest) == sorted(members)

    batch = {m.member for m in Membership.batch_get([(org, members[0]), (org, members[1]), (org, "x@y")])}
    assert batch == {members[0], members[1]}

    victim = Membership.get(org, members[0])
    victim.role = "changed"
    victim.save()
    victim.refresh()
    assert victim.role == "changed"
    victim.delete()
    with pytest.raises(Membership.DoesNotExist):
        Membership.get(org, members[0])
    Membership(org, members[1]).delete()
    assert Membership.count(org) == 3


# -- GSIs ---------------------------------------------------------------------------------------------


def test_gsi_hmac_schema(User: Any, client: Any) -> None:
    table = describe(client, User.Meta.table_name)
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert indexes["EmailIndex"]["KeySchema"] == [{"AttributeName": "email__hmac", "KeyType": "HASH"}]
    assert indexes["TeamIndex"]["KeySchema"] == [
        {"AttributeName": "team__hmac", "KeyType": "HASH"},
        {"AttributeName": "joined", "KeyType": "RANGE"},
    ]
    definitions = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert definitions == {"pk": "S", "email__hmac": "S", "team__hmac": "S", "joined": "N"}


def test_gsi_query_and_count_by_plaintext(User: Any) -> None:
    email = new_email("gsi")
    User(pk=unique("u"), email=email, name="Gsi User").save()
    User(pk=unique("u"), email=new_email("gsi-other"), name="Other").save()

    (found,) = User.email_index.query(email)
    assert (found.email, found.name) == (email, "Gsi User")
    assert User.email_index.count(email) == 1
    assert User.count(email, index_name="EmailIndex") == 1
    (by_digest,) = User.email_index.query(HmacDigest(User.email.hmac(email)))
    assert by_digest.pk == found.pk
    assert list(User.email_index.query(User.email.hmac(email))) == []  # plaintext of a digest: no match
    assert list(User.email_index.query(new_email("absent"))) == []


def test_gsi_with_hmac_hash_and_plain_range_key(User: Any) -> None:
    team = unique("team")
    for joined in (5, 1, 9, 3):
        User(
            pk=unique("t"), email=new_email("team"), name=f"Joined {joined}", team=team, joined=joined
        ).save()
    User(pk=unique("t"), email=new_email("team"), name="Elsewhere", team=unique("team"), joined=4).save()

    assert [u.joined for u in User.team_index.query(team)] == [1, 3, 5, 9]
    assert [u.name for u in User.team_index.query(team, User.joined > 3, scan_index_forward=False)] == [
        "Joined 9",
        "Joined 5",
    ]
    assert User.team_index.count(team) == 4
    assert User.team_index.count(team, User.joined.between(2, 6)) == 2
    first_page = User.team_index.query(team, limit=2)
    assert [u.joined for u in first_page] == [1, 3]
    lek = first_page.last_evaluated_key
    assert lek is not None and lek["team__hmac"] == {"S": User.team.hmac(team)}
    assert [u.joined for u in User.team_index.query(team, last_evaluated_key=lek)] == [5, 9]


def test_hmac_method_equals_stored_value_and_works_with_boto3(User: Any, client: Any) -> None:
    email = new_email("boto")
    pk = unique("boto")
    User(pk=pk, email=email, name="Boto User").save()
    digest = User.email.hmac(email)
    assert email not in digest and digest != User.email.hmac(email.upper())

    raw = raw_item(client, User.Meta.table_name, {"pk": {"S": pk}})
    assert raw is not None and raw["email__hmac"] == {"S": digest}

    response = client.query(
        TableName=User.Meta.table_name,
        IndexName="EmailIndex",
        KeyConditionExpression="email__hmac = :e",
        ExpressionAttributeValues={":e": {"S": digest}},
    )
    assert [item["pk"]["S"] for item in response["Items"]] == [pk]
    scanned = client.scan(
        TableName=User.Meta.table_name,
        FilterExpression="email__hmac = :e",
        ExpressionAttributeValues={":e": {"S": digest}},
    )
    assert [item["pk"]["S"] for item in scanned["Items"]] == [pk]


def test_same_value_in_two_attributes_gets_different_hmacs(User: Any, client: Any) -> None:
    email = new_email("twice")
    pk = unique("twice")
    User(pk=pk, email=email, backup_email=email, name="Twice").save()
    raw = raw_item(client, User.Meta.table_name, {"pk": {"S": pk}})
    assert raw is not None
    assert raw["email__hmac"] == {"S": User.email.hmac(email)}
    assert raw["backup_email__hmac"] == {"S": User.backup_email.hmac(email)}
    assert raw["email__hmac"] != raw["backup_email__hmac"]
    assert [u.pk for u in User.scan(User.backup_email == email)] == [pk]


# -- LSI ----------------------------------------------------------------------------------------------


def test_lsi_with_hmac_range_key(document_models: tuple[Any, Any], client: Any) -> None:
    Document, SsnIndex = document_models
    table = describe(client, Document.Meta.table_name)
    (lsi,) = table["LocalSecondaryIndexes"]
    assert lsi["KeySchema"] == [
        {"AttributeName": "tenant", "KeyType": "HASH"},
        {"AttributeName": "ssn__hmac", "KeyType": "RANGE"},
    ]

    tenant, other_tenant = unique("tenant"), unique("tenant")
    docs = {"d1": "123-45-6789", "d2": "987-65-4321", "d3": "123-45-6789"}
    for doc_id, ssn in docs.items():
        Document(tenant, doc_id, ssn=ssn, body=f"secret body {doc_id}").save()
    Document(other_tenant, "d9", ssn="123-45-6789", body="other tenant").save()

    matches = Document.ssn_index.query(tenant, Document.ssn == "123-45-6789")
    assert sorted((d.doc_id, d.ssn, d.body) for d in matches) == [
        ("d1", "123-45-6789", "secret body d1"),
        ("d3", "123-45-6789", "secret body d3"),
    ]
    via_index_attr = Document.ssn_index.query(tenant, SsnIndex.ssn == "987-65-4321")
    assert [d.doc_id for d in via_index_attr] == ["d2"]
    assert Document.ssn_index.count(tenant, Document.ssn == "123-45-6789") == 2
    assert Document.ssn_index.count(tenant) == 3
    assert list(Document.ssn_index.query(tenant, Document.ssn == "000-00-0000")) == []

    raw = raw_item(client, Document.Meta.table_name, {"tenant": {"S": tenant}, "doc_id": {"S": "d1"}})
    assert raw is not None
    assert raw["ssn__hmac"] == {"S": Document.ssn.hmac("123-45-6789")}
    assert_no_plaintext(raw, "123-45-6789", "secret body")


# -- HMAC scopes --------------------------------------------------------------------------------------


def test_hmacs_differ_across_tables_unless_a_scope_is_shared(
    ddb_url: str, keyring: Keyring, client: Any
) -> None:
    email = new_email("scope")
    tables = [unique("scope_a"), unique("scope_b"), unique("shared_a"), unique("shared_b")]
    models = [
        define_user(ddb_url, tables[0], keyring),
        define_user(ddb_url, tables[1], keyring),
        define_user(ddb_url, tables[2], keyring, hmac_scope="contacts"),
        define_user(ddb_url, tables[3], keyring, hmac_scope="contacts"),
    ]
    stored = []
    try:
        for model in models:
            model.create_table(wait=True)
            model(pk="same", email=email, backup_email=email, name="Scoped").save()
            raw = raw_item(client, model.Meta.table_name, {"pk": {"S": "same"}})
            assert raw is not None and raw["email__hmac"] == {"S": model.email.hmac(email)}
            stored.append(raw)
            assert [u.pk for u in model.email_index.query(email)] == ["same"]

        plain_a, plain_b, shared_a, shared_b = stored
        assert plain_a["email__hmac"] != plain_b["email__hmac"]
        assert shared_a["email__hmac"] == shared_b["email__hmac"]
        assert shared_a["email__hmac"] != plain_a["email__hmac"]
        # the opt-in scope is per attribute: backup_email still differs per table
        assert shared_a["backup_email__hmac"] != shared_b["backup_email__hmac"]
        # an item's ciphertext never moves with its HMAC scope
        assert shared_a["email__source"] != shared_b["email__source"]
        other_keys = define_user(ddb_url, unique("scope_c"), Keyring.generate(), hmac_scope="contacts")
        assert other_keys.email.hmac(email) != models[2].email.hmac(email)
    finally:
        for model in models:
            model.delete_table()


# -- numeric keys bound into the ciphertext -----------------------------------------------------------


def define_measurement(url: str, table: str, kr: Keyring) -> Any:
    class Measurement(EncryptedModel):
        Meta = table_meta(url, table, kr)

        sensor = NumberAttribute(hash_key=True)
        at = NumberAttribute(range_key=True)
        reading = EncryptedAttribute(str)

    return Measurement


@pytest.fixture(scope="module")
def Measurement(ddb_url: str, keyring: Keyring) -> Iterator[Any]:
    yield from created(define_measurement(ddb_url, unique("keys_numbers"), keyring))


@pytest.mark.parametrize(
    ("sensor", "at"),
    [(1, 2.5), (1.0, 10**25), (7, 1e-7), (7, 1.23e-30), (8, 2.50), (9, -0.0), (-0.0, 3)],
    ids=repr,
)
def test_numeric_keys_as_dynamodb_normalizes_them_still_decrypt(
    Measurement: Any, sensor: float, at: float
) -> None:
    """DynamoDB returns numbers in its own canonical form ("1" for "1.0", "0" for "-0.0"); the key bound
    into the ciphertext at write time must match the one rebuilt from what DynamoDB returns."""
    Measurement(sensor, at, reading=f"reading {sensor} {at}").save()
    assert Measurement.get(sensor, at).reading == f"reading {sensor} {at}"
    assert [m.reading for m in Measurement.query(sensor, Measurement.at == at)] == [f"reading {sensor} {at}"]
    Measurement(sensor, at).update(actions=[Measurement.reading.set("updated")])
    assert Measurement.get(sensor, at).reading == "updated"


# -- custom stored names ------------------------------------------------------------------------------


def test_custom_attr_name_and_index_hmac_declared_with_of(
    ddb_url: str, table_name: str, keyring: Keyring, client: Any
) -> None:
    tbl, kr = table_name, keyring

    class ByMail(GlobalSecondaryIndex):
        class Meta:
            index_name = "ByMail"
            projection = AllProjection()

        mail = HmacAttribute(of="email", hash_key=True)

    class Profile(EncryptedModel):
        Meta = table_meta(ddb_url, tbl, kr)

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True, attr_name="em")
        by_mail = ByMail()

    for _ in created(Profile):
        table = describe(client, tbl)
        assert {d["AttributeName"] for d in table["AttributeDefinitions"]} == {"pk", "em__hmac"}
        Profile(pk="p1", email="custom@secret-names.example").save()
        raw = raw_item(client, tbl, {"pk": {"S": "p1"}})
        assert raw is not None and set(raw) == {"pk", "em__source", "em__hmac"}
        assert raw["em__hmac"] == {"S": Profile.email.hmac("custom@secret-names.example")}

        assert [p.pk for p in Profile.by_mail.query("custom@secret-names.example")] == ["p1"]
        assert [p.pk for p in Profile.scan(Profile.email == "custom@secret-names.example")] == ["p1"]
        assert [p.email for p in Profile.by_mail.scan()] == ["custom@secret-names.example"]
        for projection in (["email"], ["em"], [Profile.email]):
            assert Profile.get("p1", attributes_to_get=projection).email == "custom@secret-names.example"

        profile = Profile.get("p1")
        profile.update(actions=[Profile.email.set("renamed@secret-names.example")])
        assert [p.pk for p in Profile.by_mail.query("renamed@secret-names.example")] == ["p1"]
        assert list(Profile.by_mail.query("custom@secret-names.example")) == []
        with pytest.raises(UnsupportedQueryError):
            profile.update(actions=[Path("em__hmac").remove()])
