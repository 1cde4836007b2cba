"""Transactions, polymorphic models, TTL, model inheritance and ``Meta.logical_table_name``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    DynamicMapAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import AttributeNullError, TransactWriteError
from pynamodb.expressions.operand import Path
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactGet, TransactWrite
from stashtest import REGION, assert_no_plaintext, created, raw_item, table_meta, unique

from pynamodb_stash import (
    ConfigurationError,
    DecryptionError,
    EncryptedAttribute,
    EncryptedModel,
    HmacAttribute,
    HmacDigest,
    Keyring,
    UnsupportedQueryError,
)

# -- helpers ------------------------------------------------------------------------------------------


def copy_table(client: Any, source: str, target: str) -> int:
    """Copy every raw item from one physical table to another, as a backup restore would."""
    items = client.scan(TableName=source, ConsistentRead=True)["Items"]
    for item in items:
        client.put_item(TableName=target, Item=item)
    return len(items)


# -- models -------------------------------------------------------------------------------------------


def define_customer(url: str, table: str, kr: Keyring, *, logical: str | None = None) -> Any:
    class EmailIndex(GlobalSecondaryIndex):
        class Meta:
            index_name = "EmailIndex"
            projection = AllProjection()

        email = HmacAttribute(hash_key=True)

    class Customer(EncryptedModel):
        Meta = table_meta(url, table, kr, logical_table_name=logical)

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True)
        name = EncryptedAttribute(str)
        role = UnicodeAttribute(null=True)
        version = VersionAttribute()
        email_index = EmailIndex()

    return Customer


def define_account(url: str, table: str, kr: Keyring) -> Any:
    class Account(EncryptedModel):
        Meta = table_meta(url, table, kr)

        email = EncryptedAttribute(str, equality=True, hash_key=True)
        name = EncryptedAttribute(str)
        tier = EncryptedAttribute(str, equality=True, null=True)

    return Account


# -- fixtures (and ``keyring``, ``client``, ``connection`` from conftest.py) --------------------------


@pytest.fixture(scope="module")
def tx_models(ddb_url: str, keyring: Keyring) -> Iterator[tuple[Any, Any]]:
    customer = define_customer(ddb_url, unique("tx_customers"), keyring)
    account = define_account(ddb_url, unique("tx_accounts"), keyring)
    for _ in created(customer, account):
        yield customer, account


def new_customer(Customer: Any, tag: str = "c") -> Any:
    pk = unique(tag)
    customer = Customer(pk=pk, email=f"{pk}@secret-tx.example", name=f"Name of {pk}", role="member")
    customer.save()
    return customer


# -- transactions -------------------------------------------------------------------------------------


def test_transact_write_save_update_delete_and_condition_check(
    tx_models: tuple[Any, Any], connection: Connection, client: Any
) -> None:
    Customer, _ = tx_models
    to_update, to_delete, to_check = (new_customer(Customer) for _ in range(3))
    old_email = to_update.email
    new_email = f"changed-{uuid.uuid4().hex[:8]}@secret-tx.example"
    created_pk = unique("tx-new")
    fresh = Customer(pk=created_pk, email=f"{created_pk}@secret-tx.example", name="Created In Tx", role="new")

    with TransactWrite(connection=connection) as tw:
        tw.save(fresh, condition=Customer.pk.does_not_exist())
        tw.update(
            to_update,
            actions=[
                Customer.email.set(new_email),
                Customer.name.set("Updated In Tx"),
                Customer.role.set("vip"),
            ],
            condition=Customer.email == old_email,
        )
        tw.delete(to_delete, condition=Customer.email == to_delete.email)
        tw.condition_check(
            Customer, to_check.pk, condition=(Customer.email == to_check.email) & Customer.name.exists()
        )

    table = Customer.Meta.table_name
    raw_new = raw_item(client, table, {"pk": {"S": created_pk}})
    assert raw_new is not None
    assert raw_new["email__hmac"] == {"S": Customer.email.hmac(fresh.email)}
    assert raw_new["name__source"].keys() == {"B"}
    assert_no_plaintext(raw_new, fresh.email, "Created In Tx")
    got = Customer.get(created_pk)
    assert (got.email, got.name, got.role, got.version) == (fresh.email, "Created In Tx", "new", 1)
    assert fresh.version == 1

    raw_updated = raw_item(client, table, {"pk": {"S": to_update.pk}})
    assert raw_updated is not None
    assert raw_updated["email__hmac"] == {"S": Customer.email.hmac(new_email)}
    assert_no_plaintext(raw_updated, new_email, old_email, "Updated In Tx")
    updated = Customer.get(to_update.pk)
    assert (updated.email, updated.name, updated.role, updated.version) == (
        new_email,
        "Updated In Tx",
        "vip",
        2,
    )
    assert to_update.version == 2
    assert [c.pk for c in Customer.email_index.query(new_email)] == [to_update.pk]
    assert list(Customer.email_index.query(old_email)) == []

    assert raw_item(client, table, {"pk": {"S": to_delete.pk}}) is None
    assert Customer.get(to_check.pk).name == to_check.name


def test_transact_write_with_a_failing_encrypted_condition_applies_nothing(
    tx_models: tuple[Any, Any], connection: Connection, client: Any
) -> None:
    Customer, _ = tx_models
    target, checked = new_customer(Customer), new_customer(Customer)
    created_pk = unique("tx-never")

    with pytest.raises(TransactWriteError), TransactWrite(connection=connection) as tw:
        tw.save(Customer(pk=created_pk, email="never@secret-tx.example", name="Never", role="r"))
        tw.update(target, actions=[Customer.name.set("Never Applied")])
        tw.condition_check(Customer, checked.pk, condition=Customer.email == "someone-else@secret-tx.example")

    assert raw_item(client, Customer.Meta.table_name, {"pk": {"S": created_pk}}) is None
    assert Customer.get(target.pk).name == target.name

    with pytest.raises(TransactWriteError), TransactWrite(connection=connection) as tw:
        tw.save(
            Customer(pk=checked.pk, email="x@y", name="Clobber", role="r"),
            condition=Customer.email == "wrong@secret-tx.example",
        )
    assert Customer.get(checked.pk).name == checked.name


def test_transact_write_rejects_raw_stored_names_and_key_updates(
    tx_models: tuple[Any, Any], connection: Connection, client: Any
) -> None:
    Customer, Account = tx_models
    target = new_customer(Customer)
    before = raw_item(client, Customer.Meta.table_name, {"pk": {"S": target.pk}})
    for action in (Path("email__hmac").set("forged"), Path("name__source").remove()):
        with pytest.raises(UnsupportedQueryError), TransactWrite(connection=connection) as tw:
            tw.update(target, actions=[Customer.role.set("x"), action])
    with pytest.raises(UnsupportedQueryError), TransactWrite(connection=connection) as tw:
        tw.update(target, actions=[Account.name.set("other model")])
    assert raw_item(client, Customer.Meta.table_name, {"pk": {"S": target.pk}}) == before
    with pytest.raises(UnsupportedQueryError):
        Account.email.set("new-key@x")


def test_transactions_on_a_model_keyed_by_an_hmac(
    tx_models: tuple[Any, Any], connection: Connection, client: Any
) -> None:
    Customer, Account = tx_models
    emails = [f"{unique('acct')}@secret-tx.example" for _ in range(4)]
    kept, removed, checked, created_email = emails
    for email in (kept, removed, checked):
        Account(email, name=f"Account {email}", tier="gold").save()

    with TransactWrite(connection=connection) as tw:
        tw.save(Account(created_email, name="Created Account", tier="silver"))
        tw.update(Account.get(kept), actions=[Account.name.set("Kept Renamed"), Account.tier.remove()])
        tw.delete(Account(removed))
        tw.condition_check(Account, checked, condition=Account.tier == "gold")

    raw = raw_item(client, Account.Meta.table_name, {"email__hmac": {"S": Account.email.hmac(kept)}})
    assert raw is not None
    assert "tier__source" not in raw and "tier__hmac" not in raw
    assert_no_plaintext(raw, kept, "Kept Renamed")

    customer = new_customer(Customer)
    with TransactGet(connection=connection) as tg:
        f_created = tg.get(Account, created_email)
        f_kept = tg.get(Account, HmacDigest(Account.email.hmac(kept)))
        f_removed = tg.get(Account, removed)
        f_customer = tg.get(Customer, customer.pk)
    assert (f_created.get().email, f_created.get().name, f_created.get().tier) == (
        created_email,
        "Created Account",
        "silver",
    )
    assert (f_kept.get().email, f_kept.get().name, f_kept.get().tier) == (kept, "Kept Renamed", None)
    with pytest.raises(Account.DoesNotExist):
        f_removed.get()
    assert (f_customer.get().email, f_customer.get().name) == (customer.email, customer.name)


# -- polymorphism -------------------------------------------------------------------------------------


def define_records(url: str, table: str, kr: Keyring) -> tuple[Any, Any, Any]:
    class DiagnosisIndex(GlobalSecondaryIndex):
        class Meta:
            index_name = "DiagnosisIndex"
            projection = AllProjection()

        diagnosis = HmacAttribute(hash_key=True)

    class OwnerIndex(GlobalSecondaryIndex):
        class Meta:
            index_name = "OwnerIndex"
            projection = AllProjection()

        owner = HmacAttribute(hash_key=True)

    class Record(EncryptedModel):
        Meta = table_meta(url, table, kr)

        pk = UnicodeAttribute(hash_key=True)
        kind = DiscriminatorAttribute()
        owner = EncryptedAttribute(str, equality=True)
        owner_index = OwnerIndex()

    class Patient(Record, discriminator="patient"):
        diagnosis = EncryptedAttribute(str, equality=True)
        notes = EncryptedAttribute(list, null=True)
        diagnosis_index = DiagnosisIndex()

    class Invoice(Record, discriminator="invoice"):
        amount = EncryptedAttribute(Decimal)
        paid = NumberAttribute(null=True)

    return Record, Patient, Invoice


@pytest.fixture(scope="module")
def records(ddb_url: str, keyring: Keyring) -> Iterator[tuple[Any, Any, Any]]:
    models = define_records(ddb_url, unique("poly_records"), keyring)
    for _ in created(models[0]):
        yield models


def test_subclasses_own_their_companions(records: tuple[Any, Any, Any]) -> None:
    Record, Patient, Invoice = records
    assert "diagnosis__hmac" in Patient.get_attributes()
    assert "diagnosis__hmac" not in Record.get_attributes()
    assert "diagnosis__hmac" not in Invoice.get_attributes()
    assert {"owner", "owner__hmac"} <= set(Patient.get_attributes()) & set(Invoice.get_attributes())
    assert Patient.owner is not Record.owner
    assert Patient.owner.hmac("dr-x") == Record.owner.hmac("dr-x") == Invoice.owner.hmac("dr-x")


def test_polymorphic_items_are_stored_encrypted_and_read_back_as_their_subclass(
    records: tuple[Any, Any, Any], client: Any
) -> None:
    Record, Patient, Invoice = records
    owner = f"{unique('dr')}@secret-clinic.example"
    diagnosis = f"secret-diagnosis-{uuid.uuid4().hex[:6]}"
    p_pk, i_pk = unique("patient"), unique("invoice")
    Patient(pk=p_pk, owner=owner, diagnosis=diagnosis, notes=["secret note", 1]).save()
    Invoice(pk=i_pk, owner=owner, amount=Decimal("199.99"), paid=0).save()

    raw = raw_item(client, Record.Meta.table_name, {"pk": {"S": p_pk}})
    assert raw is not None
    assert raw["kind"] == {"S": "patient"}
    assert raw["diagnosis__hmac"] == {"S": Patient.diagnosis.hmac(diagnosis)}
    assert raw["owner__hmac"] == {"S": Record.owner.hmac(owner)}
    assert_no_plaintext(raw, owner, diagnosis, "secret note", "secret-clinic")

    patient = Record.get(p_pk)
    assert type(patient) is Patient
    assert (patient.owner, patient.diagnosis, patient.notes) == (owner, diagnosis, ["secret note", 1])
    invoice = Record.get(i_pk)
    assert type(invoice) is Invoice
    assert (invoice.owner, invoice.amount, invoice.paid) == (owner, Decimal("199.99"), 0)

    by_owner = {type(r).__name__: r.pk for r in Record.scan(Record.owner == owner)}
    assert by_owner == {"Patient": p_pk, "Invoice": i_pk}
    assert {type(r).__name__: r.pk for r in Record.owner_index.query(owner)} == by_owner
    assert [r.pk for r in Invoice.owner_index.query(owner)] == [i_pk]
    assert [r.pk for r in Patient.scan(Patient.owner == owner)] == [p_pk]
    assert [r.pk for r in Patient.scan(Patient.diagnosis == diagnosis)] == [p_pk]
    assert [r.pk for r in Patient.diagnosis_index.query(diagnosis)] == [p_pk]
    assert [type(r) for r in Record.query(i_pk)] == [Invoice]
    assert {type(r) for r in Record.batch_get([p_pk, i_pk])} == {Patient, Invoice}
    assert Record.count(p_pk, filter_condition=Record.owner == owner) == 1

    patient.update(actions=[Patient.diagnosis.set("recovered"), Patient.owner.set("new-dr@x")])
    assert (patient.diagnosis, patient.owner) == ("recovered", "new-dr@x")
    assert [r.pk for r in Patient.diagnosis_index.query("recovered")] == [p_pk]
    assert list(Patient.diagnosis_index.query(diagnosis)) == []
    patient.refresh()
    assert patient.diagnosis == "recovered"


@pytest.mark.parametrize(
    "projection",
    [
        pytest.param(lambda Patient: ["diagnosis"], id="subclass_field_by_name"),
        pytest.param(lambda Patient: [Patient.diagnosis], id="subclass_field_object"),
    ],
)
def test_projection_of_a_subclass_field_through_the_base(
    records: tuple[Any, Any, Any], projection: Any
) -> None:
    Record, Patient, _ = records
    pk = unique("proj")
    Patient(pk=pk, owner="owner@secret-clinic.example", diagnosis="secret-projected", notes=None).save()

    assert Patient.get(pk, attributes_to_get=projection(Patient)).diagnosis == "secret-projected"
    through_base = Record.get(pk, attributes_to_get=projection(Patient))
    assert type(through_base) is Patient
    assert through_base.diagnosis == "secret-projected"
    assert through_base.owner is None
    (scanned,) = Record.scan(Record.pk == pk, attributes_to_get=projection(Patient))
    assert scanned.diagnosis == "secret-projected"


def test_update_of_a_subclass_instance_with_actions_built_on_the_base(
    records: tuple[Any, Any, Any], connection: Connection
) -> None:
    """Polymorphic code reads through the base and updates with the base's attributes."""
    Record, Patient, _ = records
    pk = unique("base-action")
    Patient(pk=pk, owner="before@secret-clinic.example", diagnosis="d").save()

    record = Record.get(pk)
    record.update(actions=[Record.owner.set("after@secret-clinic.example")])
    assert record.owner == "after@secret-clinic.example"
    assert [r.pk for r in Record.owner_index.query("after@secret-clinic.example")] == [pk]

    with TransactWrite(connection=connection) as tw:
        tw.update(record, actions=[Record.owner.set("tx@secret-clinic.example")])
    assert Patient.get(pk).owner == "tx@secret-clinic.example"


def test_plain_polymorphic_base_reads_encrypted_subclasses(
    ddb_url: str, table_name: str, keyring: Keyring
) -> None:
    """The base declares no encrypted attribute; only its subclasses do."""
    tbl, kr = table_name, keyring

    class Entry(EncryptedModel):
        Meta = table_meta(ddb_url, tbl, kr)

        pk = UnicodeAttribute(hash_key=True)
        kind = DiscriminatorAttribute()
        at = NumberAttribute()

    class Login(Entry, discriminator="login"):
        ip = EncryptedAttribute(str, equality=True)

    class Note(Entry, discriminator="note"):
        text = EncryptedAttribute(str)

    for _ in created(Entry):
        Login(pk="l1", at=1, ip="203.0.113.77").save()
        Note(pk="n1", at=2, text="secret text").save()
        login, note = Entry.get("l1"), Entry.get("n1")
        assert (type(login), login.ip) == (Login, "203.0.113.77")
        assert (type(note), note.text) == (Note, "secret text")
        assert {type(e).__name__: e.pk for e in Entry.scan()} == {"Login": "l1", "Note": "n1"}
        assert [e.pk for e in Login.scan(Login.ip == "203.0.113.77")] == ["l1"]


@pytest.mark.parametrize("kind", ["typed", "raw", "dynamic"])
def test_plain_map_attributes_pass_through(
    ddb_url: str, table_name: str, keyring: Keyring, client: Any, kind: str
) -> None:
    tbl, kr = table_name, keyring

    class Address(MapAttribute[str, Any]):
        street = UnicodeAttribute()
        city = UnicodeAttribute(null=True)

    def make_map() -> Any:
        if kind == "typed":
            return Address(null=True)
        return MapAttribute(null=True) if kind == "raw" else DynamicMapAttribute(null=True)

    value: Any = (
        Address(street="1 Main St", city="Springfield")
        if kind == "typed"
        else {
            "street": "1 Main St",
            "city": "Springfield",
        }
    )

    class Resident(EncryptedModel):
        Meta = table_meta(ddb_url, tbl, kr)

        pk = UnicodeAttribute(hash_key=True)
        ssn = EncryptedAttribute(str)
        address = make_map()

    for _ in created(Resident):
        Resident(pk="r1", ssn="123-45-6789", address=value).save()
        raw = raw_item(client, tbl, {"pk": {"S": "r1"}})
        assert raw is not None
        assert raw["address"]["M"]["city"] == {"S": "Springfield"}
        assert_no_plaintext(raw, "123-45-6789")
        got = Resident.get("r1")
        assert got.ssn == "123-45-6789"
        assert (got.address.city if kind == "typed" else got.address["city"]) == "Springfield"
        assert [r.pk for r in Resident.scan(Resident.address["city"] == "Springfield")] == ["r1"]


def test_plain_attributes_are_stored_exactly_as_pynamodb_stores_them(ddb_url: str, keyring: Keyring) -> None:
    """The library serializes items itself; plain attributes must come out as PynamoDB's own."""

    class Line(MapAttribute[str, Any]):
        sku = UnicodeAttribute()
        qty = NumberAttribute(null=True)

    def plain_attributes() -> dict[str, Any]:
        return {
            "pk": UnicodeAttribute(hash_key=True),
            "lines": ListAttribute(of=Line, null=True),
            "raw_list": ListAttribute(null=True),
            "tags": UnicodeSetAttribute(null=True),
            "nums": NumberSetAttribute(null=True),
            "flag": BooleanAttribute(null=True),
            "when": UTCDateTimeAttribute(null=True),
            "doc": JSONAttribute(null=True),
            "count": NumberAttribute(default=7),
            "blob": BinaryAttribute(null=True, legacy_encoding=False),
            "renamed": UnicodeAttribute(attr_name="rn", null=True),
        }

    meta = {"table_name": "never-created", "host": ddb_url, "region": REGION}
    encrypted = type(
        "EncryptedOrder",
        (EncryptedModel,),
        {"Meta": type("Meta", (), {**meta, "keyring": keyring}), **plain_attributes()},
    )
    plain = type("PlainOrder", (Model,), {"Meta": type("Meta", (), meta), **plain_attributes()})
    values = {
        "lines": [Line(sku="a"), Line(sku="b", qty=2)],
        "raw_list": [1, "a", None, {"k": [True]}],
        "tags": set(),
        "nums": {1, 2.5},
        "flag": False,
        "when": datetime(2020, 1, 1, tzinfo=timezone.utc),
        "doc": {"x": [1]},
        "blob": b"\x00\xff",
        "renamed": "r",
    }
    serialized = encrypted(pk="1", **values).serialize()
    assert serialized == plain(pk="1", **values).serialize()
    assert serialized["count"] == {"N": "7"} and "tags" not in serialized

    reloaded = encrypted.from_raw_data(serialized)
    expected = plain.from_raw_data(serialized)
    assert [line.as_dict() for line in reloaded.lines] == [line.as_dict() for line in expected.lines]
    for name in ("raw_list", "nums", "flag", "when", "doc", "count", "blob", "renamed"):
        assert getattr(reloaded, name) == getattr(expected, name), name
    with pytest.raises(AttributeNullError):
        encrypted(pk="2", lines=[Line(qty=1)]).serialize()


# -- TTL ----------------------------------------------------------------------------------------------


def test_ttl_attribute_stays_plaintext_and_works(
    ddb_url: str, table_name: str, keyring: Keyring, client: Any
) -> None:
    tbl, kr = table_name, keyring

    class Session(EncryptedModel):
        Meta = table_meta(ddb_url, tbl, kr)

        pk = UnicodeAttribute(hash_key=True)
        token = EncryptedAttribute(str)
        expires = TTLAttribute(null=True)

    expires = datetime(2031, 5, 17, 8, 30, tzinfo=timezone.utc)
    for _ in created(Session):
        ttl = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expires"

        Session(pk="s1", token="secret-session-token", expires=expires).save()
        raw = raw_item(client, table_name, {"pk": {"S": "s1"}})
        assert raw is not None
        assert raw["expires"] == {"N": str(int(expires.timestamp()))}
        assert raw["token__source"].keys() == {"B"}
        assert_no_plaintext(raw, "secret-session-token")

        got = Session.get("s1")
        assert (got.token, got.expires) == ("secret-session-token", expires)
        assert [s.pk for s in Session.scan(Session.expires > datetime(2030, 1, 1, tzinfo=timezone.utc))] == [
            "s1"
        ]


@pytest.mark.parametrize(
    "plain_only",
    [TTLAttribute(), VersionAttribute(), DiscriminatorAttribute()],
    ids=["ttl", "version", "discriminator"],
)
def test_attributes_dynamodb_or_pynamodb_read_cannot_be_encrypted(plain_only: Any) -> None:
    with pytest.raises(ConfigurationError):

        class Bad(EncryptedModel):
            class Meta:
                table_name = "never-created"
                region = REGION

            pk = UnicodeAttribute(hash_key=True)
            secret = EncryptedAttribute(plain_only)


# -- inheritance --------------------------------------------------------------------------------------


def test_encrypted_fields_inherited_into_two_tables_bind_to_each(
    ddb_url: str, keyring: Keyring, client: Any
) -> None:
    customers, suppliers = unique("inh_customers"), unique("inh_suppliers")
    kr = keyring

    class Contact(EncryptedModel):
        """Abstract-style: no table of its own."""

        class Meta:
            host = ddb_url
            region = REGION
            keyring = kr
            billing_mode = "PAY_PER_REQUEST"

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True)
        phone = EncryptedAttribute(str, null=True)

    class Customer(Contact):
        class Meta(Contact.Meta):
            table_name = customers

        tier = UnicodeAttribute(null=True)

    class Supplier(Contact):
        class Meta(Contact.Meta):
            table_name = suppliers

        rating = EncryptedAttribute(int, null=True)

    assert Customer.email is not Supplier.email and Customer.email is not Contact.email
    assert Customer.email.model is Customer and Supplier.email.model is Supplier
    assert Customer.email.hmac("same@x") != Supplier.email.hmac("same@x")

    for _ in created(Customer, Supplier):
        Customer(pk="same", email="shared@secret-inh.example", phone="+1-555-0101", tier="gold").save()
        Supplier(pk="same", email="shared@secret-inh.example", phone="+1-555-0202", rating=5).save()

        customer, supplier = Customer.get("same"), Supplier.get("same")
        assert (customer.email, customer.phone, customer.tier) == (
            "shared@secret-inh.example",
            "+1-555-0101",
            "gold",
        )
        assert (supplier.email, supplier.phone, supplier.rating) == (
            "shared@secret-inh.example",
            "+1-555-0202",
            5,
        )
        assert [c.pk for c in Customer.scan(Customer.email == "shared@secret-inh.example")] == ["same"]

        raw_c = raw_item(client, customers, {"pk": {"S": "same"}})
        raw_s = raw_item(client, suppliers, {"pk": {"S": "same"}})
        assert raw_c is not None and raw_s is not None
        assert raw_c["email__hmac"] != raw_s["email__hmac"]
        assert "rating__source" in raw_s and "tier" in raw_c

        # a customer's row copied into the suppliers' table does not verify there
        client.put_item(TableName=suppliers, Item={**raw_c, "pk": {"S": "moved"}})
        with pytest.raises(DecryptionError):
            Supplier.get("moved")
        client.put_item(TableName=suppliers, Item=raw_c)
        with pytest.raises(DecryptionError):
            Supplier.get("same")


def test_index_declared_on_an_abstract_base_binds_to_the_concrete_model(
    ddb_url: str, keyring: Keyring
) -> None:
    kr, customers = keyring, unique("inh_indexed")

    class EmailIndex(GlobalSecondaryIndex):
        class Meta:
            index_name = "EmailIndex"
            projection = AllProjection()

        email = HmacAttribute(hash_key=True)

    class Contact(EncryptedModel):
        """Abstract-style: no table of its own, but it declares the index its tables share."""

        class Meta:
            host = ddb_url
            region = REGION
            keyring = kr
            billing_mode = "PAY_PER_REQUEST"

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True)
        email_index = EmailIndex()

    class Customer(Contact):
        class Meta(Contact.Meta):
            table_name = customers

    for _ in created(Customer):
        Customer(pk="c1", email="indexed@secret-inh.example").save()
        assert [c.pk for c in Customer.email_index.query("indexed@secret-inh.example")] == ["c1"]
        assert Customer.email_index.count("indexed@secret-inh.example") == 1


# -- logical table name -------------------------------------------------------------------------------


def test_logical_table_name_lets_a_restored_table_decrypt(
    ddb_url: str, keyring: Keyring, client: Any
) -> None:
    original_table, restored_table = unique("orig_customers"), unique("restored_customers")
    Original = define_customer(ddb_url, original_table, keyring)
    Restored = define_customer(ddb_url, restored_table, keyring, logical=original_table)
    Naive = define_customer(ddb_url, restored_table, keyring)

    for _ in created(Original, Restored):
        emails = {f"r{n}": f"restore{n}@secret-restore.example" for n in range(3)}
        for pk, email in emails.items():
            Original(pk=pk, email=email, name=f"Restored {pk}", role="r").save()
        assert copy_table(client, original_table, restored_table) == 3

        got = Restored.get("r1")
        assert (got.email, got.name, got.version) == (emails["r1"], "Restored r1", 1)
        assert {c.pk for c in Restored.scan()} == set(emails)
        assert [c.pk for c in Restored.email_index.query(emails["r2"])] == ["r2"]
        assert [c.pk for c in Restored.scan(Restored.email == emails["r0"])] == ["r0"]
        assert Restored.email.hmac(emails["r0"]) == Original.email.hmac(emails["r0"])

        # writes through the restored model stay readable by the original name
        got.update(actions=[Restored.name.set("Updated After Restore")])
        Restored(pk="r9", email="new@secret-restore.example", name="Written After Restore", role="r").save()
        assert copy_table(client, restored_table, original_table) == 4
        assert Original.get("r1").name == "Updated After Restore"
        assert Original.get("r9").name == "Written After Restore"

        with pytest.raises(DecryptionError):
            Naive.get("r0")
        with pytest.raises(DecryptionError):
            list(Naive.scan())
        assert list(Naive.scan(Naive.email == emails["r0"], attributes_to_get=["role"])) == []


# -- raw data paths and tampering ---------------------------------------------------------------------


def test_raw_item_conversions_encrypt_and_decrypt(
    ddb_url: str, table_name: str, keyring: Keyring, client: Any
) -> None:
    Customer = define_customer(ddb_url, table_name, keyring)
    for _ in created(Customer):
        customer = Customer(pk="raw", email="raw@secret-raw.example", name="Raw Secret", role="r")
        serialized = customer.serialize()
        assert serialized["email__source"].keys() == {"B"}
        assert serialized["email__hmac"] == {"S": Customer.email.hmac("raw@secret-raw.example")}
        assert_no_plaintext(serialized, "raw@secret-raw.example", "Raw Secret")

        customer.save()
        raw = raw_item(client, table_name, {"pk": {"S": "raw"}})
        assert raw is not None
        from_raw = Customer.from_raw_data(raw)
        assert (from_raw.email, from_raw.name, from_raw.version) == (
            "raw@secret-raw.example",
            "Raw Secret",
            1,
        )

        deserialized = Customer()
        deserialized.deserialize(raw)
        assert (deserialized.email, deserialized.name) == ("raw@secret-raw.example", "Raw Secret")

        as_dict = customer.to_dynamodb_dict()
        reloaded = Customer()
        reloaded.from_dynamodb_dict(as_dict)
        assert (reloaded.email, reloaded.name) == ("raw@secret-raw.example", "Raw Secret")


def test_ciphertexts_and_hmacs_moved_between_items_or_attributes_do_not_verify(
    ddb_url: str, table_name: str, keyring: Keyring, client: Any
) -> None:
    Customer = define_customer(ddb_url, table_name, keyring)
    for _ in created(Customer):
        Customer(pk="one", email="one@secret-tamper.example", name="One Secret", role="r").save()
        Customer(pk="two", email="two@secret-tamper.example", name="Two Secret", role="r").save()
        one = raw_item(client, table_name, {"pk": {"S": "one"}})
        two = raw_item(client, table_name, {"pk": {"S": "two"}})
        assert one is not None and two is not None

        tampered = [
            {**two, "name__source": one["name__source"]},  # another item's ciphertext
            {**two, "email__source": one["email__source"], "email__hmac": one["email__hmac"]},  # both moved
            {**two, "email__hmac": one["email__hmac"]},  # an HMAC that answers for another value
            {**one, "name__source": one["email__source"]},  # another attribute's ciphertext
            {
                **one,
                "name__source": {
                    "B": one["name__source"]["B"][:-1] + bytes([one["name__source"]["B"][-1] ^ 1])
                },
            },
        ]
        for item in tampered:
            client.put_item(TableName=table_name, Item=item)
            with pytest.raises(DecryptionError):
                Customer.get(item["pk"]["S"])
