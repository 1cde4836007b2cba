"""The pytest plugin's fixtures in this session, against DynamoDB Local: ``stash_dynamodb``,
``stash_keyring``, ``stash_tables`` and ``assert_never_stored`` (which must fail wherever a marker is).

What happens after a test (tables dropped, ``Meta`` and keyring restored) is checked in separate pytest
sessions, in test_pytest_plugin_sessions.py.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from pynamodb_stash import (
    DecryptionError,
    EncryptedAttribute,
    EncryptedModel,
    HmacAttribute,
    Keyring,
    _keyring,
    decrypt_item,
)
from pynamodb_stash.testing import NeverStored, StashTables

MARKER = "zebra-7731-marker"
NUMBER = "4815162342"


class EmailIndex(GlobalSecondaryIndex):  # type: ignore[type-arg]
    class Meta:
        index_name = "EmailIndex"
        projection = AllProjection()

    email = HmacAttribute(hash_key=True)


def encrypted_model(table: str, **meta: Any) -> Any:
    """An encrypted model on ``table`` with no host (as in an application), an equality field with a GSI."""
    return type(
        "Patient",
        (EncryptedModel,),
        {
            "Meta": type("Meta", (), {"table_name": table, **meta}),
            "pk": UnicodeAttribute(hash_key=True),
            "email": EncryptedAttribute(str, equality=True),
            "ssn": EncryptedAttribute(str),
            "ward": UnicodeAttribute(null=True),
            "email_index": EmailIndex(),
        },
    )


def plain_model(table: str) -> Any:
    return type(
        "Plain",
        (Model,),
        {"Meta": type("Meta", (), {"table_name": table}), "pk": UnicodeAttribute(hash_key=True)},
    )


# -- stash_dynamodb ---------------------------------------------------------------------------------------


def test_the_endpoint_serves_dynamodb_with_dummy_credentials(stash_dynamodb: str, ddb_url: str, client: Any) -> None:
    assert ddb_url == stash_dynamodb  # the project's fixture is the plugin's
    assert stash_dynamodb.startswith("http://")
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert "AWS_SESSION_TOKEN" not in os.environ
    assert "TableNames" in client.list_tables(Limit=1)


# -- stash_tables -----------------------------------------------------------------------------------------


def test_tables_are_created_on_demand_with_their_indexes(
    stash_tables: StashTables, stash_keyring: Keyring, stash_dynamodb: str, table_name: str, client: Any
) -> None:
    Patient = encrypted_model(table_name)
    assert Patient.Meta.host is None

    stash_tables(Patient)

    assert Patient.Meta.host == stash_dynamodb
    assert (Patient.Meta.aws_access_key_id, Patient.Meta.aws_secret_access_key) == ("testing", "testing")
    assert Patient.Meta.aws_session_token is None
    table = client.describe_table(TableName=table_name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["EmailIndex"]
    Patient(pk="p1", email="ada@example.com", ssn="078-05-1120").save()
    assert Patient.get("p1").ssn == "078-05-1120"
    assert [p.pk for p in Patient.email_index.query("ada@example.com")] == ["p1"]


def test_a_stale_connection_is_dropped(stash_tables: StashTables, stash_keyring: Keyring, table_name: str) -> None:
    Patient = encrypted_model(table_name, host="http://127.0.0.1:9")
    Patient._get_connection()  # cached, on a port where nothing listens
    stash_tables(Patient)
    Patient(pk="p1", email="ada@example.com", ssn="078-05-1120").save()
    assert Patient.count() == 1


def test_models_sharing_a_table_create_it_once(
    stash_tables: StashTables, stash_keyring: Keyring, table_name: str, client: Any
) -> None:
    First, Second = encrypted_model(table_name), encrypted_model(table_name)
    stash_tables(First, Second)
    stash_tables(First)  # again: nothing to do
    assert First.Meta.host == Second.Meta.host
    First(pk="p1", email="ada@example.com", ssn="078-05-1120").save()
    assert Second.get("p1").ssn == "078-05-1120"
    assert client.list_tables()["TableNames"].count(table_name) == 1


def test_a_table_that_exists_already_fails_the_test(stash_tables: StashTables, table_name: str, client: Any) -> None:
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        with pytest.raises(pytest.fail.Exception, match=f"table '{table_name}' already exists"):
            stash_tables(plain_model(table_name))
    finally:
        client.delete_table(TableName=table_name)


def test_only_model_classes_with_a_table_are_taken(stash_tables: StashTables, table_name: str) -> None:
    Plain = plain_model(table_name)
    with pytest.raises(TypeError, match="one or more"):
        stash_tables()
    with pytest.raises(TypeError, match="model classes"):
        stash_tables(Plain(pk="x"))
    with pytest.raises(TypeError, match="model classes"):
        stash_tables(table_name)  # type: ignore[arg-type]
    Abstract = type("Abstract", (Model,), {"Meta": type("Meta", (), {})})
    with pytest.raises(ValueError, match="has no table_name"):
        stash_tables(Abstract)


# -- stash_keyring ----------------------------------------------------------------------------------------


def test_the_test_keyring_is_the_configured_one(stash_keyring: Keyring) -> None:
    assert isinstance(stash_keyring, Keyring)
    assert _keyring._configured is stash_keyring
    assert _keyring.resolve_keyring(None, "Patient") is stash_keyring


def test_a_models_own_keyring_is_replaced_on_request(stash_tables: StashTables, table_name: str, client: Any) -> None:
    own, test_keyring = Keyring.generate(), Keyring.generate()
    Patient = encrypted_model(table_name, keyring=own)
    stash_tables(Patient, keyring=test_keyring)
    assert Patient.Meta.keyring is test_keyring

    Patient(pk="p1", email="ada@example.com", ssn="078-05-1120").save()

    raw = client.get_item(TableName=table_name, Key={"pk": {"S": "p1"}}, ConsistentRead=True)["Item"]
    assert decrypt_item(Patient, raw)["ssn"] == {"S": "078-05-1120"}  # under Meta.keyring: the test's
    with pytest.raises(DecryptionError):
        decrypt_item(encrypted_model(table_name, keyring=own), raw)  # not under the model's own


# -- assert_never_stored -----------------------------------------------------------------------------------


def test_encrypted_values_never_reach_dynamodb(
    assert_never_stored: NeverStored, stash_tables: StashTables, stash_keyring: Keyring, table_name: str
) -> None:
    Patient = encrypted_model(table_name)
    stash_tables(Patient)
    patient = Patient(pk="p1", email="ada@example.com", ssn="078-05-1120", ward="cardiology")
    patient.save()
    patient.update(actions=[Patient.ssn.set("219-09-9999"), Patient.email.set("ada@example.org")])
    with Patient.batch_write() as batch:
        batch.save(Patient(pk="p2", email="bob@example.com", ssn="536-90-4399"))
    assert [p.pk for p in Patient.email_index.query("ada@example.org")] == ["p1"]
    assert [p.pk for p in Patient.scan(Patient.email == "bob@example.com")] == ["p2"]
    Patient.get("p1").delete(condition=Patient.email == "ada@example.org")

    assert_never_stored(
        Patient, "078-05-1120", "219-09-9999", "536-90-4399", "ada@example.com", "ada@example.org", "bob@example.com"
    )
    # Not vacuous: it saw the traffic, and sees what is plain.
    operations = {r.operation for r in assert_never_stored.requests if r.concerns(table_name)}
    assert {"PutItem", "UpdateItem", "BatchWriteItem", "Query", "Scan", "GetItem", "DeleteItem"} <= operations
    with pytest.raises(AssertionError, match="cardiology"):
        assert_never_stored(Patient, "cardiology")


PLACES: dict[str, tuple[dict[str, Any], str | bytes]] = {
    "S": ({"note": {"S": f"see {MARKER} here"}}, MARKER),
    "N": ({"count": {"N": NUMBER}}, NUMBER),
    "B": ({"blob": {"B": b"\x00\xff" + MARKER.encode() + b"\x01"}}, MARKER),
    "SS": ({"tags": {"SS": ["a", f"x{MARKER}"]}}, MARKER),
    "NS": ({"counts": {"NS": ["1", NUMBER]}}, NUMBER),
    "BS": ({"blobs": {"BS": [b"\x01", MARKER.encode()]}}, MARKER),
    "M": ({"m": {"M": {"inner": {"M": {"deep": {"S": MARKER}}}}}}, MARKER),
    "map key": ({"m": {"M": {MARKER: {"S": "v"}}}}, MARKER),
    "L": ({"l": {"L": [{"S": "a"}, {"L": [{"M": {"x": {"S": MARKER}}}]}]}}, MARKER),
    "attribute name": ({MARKER: {"S": "v"}}, MARKER),
    "bytes marker in text": ({"note": {"S": MARKER}}, MARKER.encode()),
    "bytes marker in binary": ({"blob": {"B": b"\x00\xde\xad\xbe\xef\x00"}}, b"\xde\xad\xbe\xef"),
    "base64 text": ({"note": {"S": base64.b64encode(b"\x00" + MARKER.encode()).decode()}}, MARKER),
}


@pytest.mark.parametrize("place", PLACES, ids=list(PLACES))
def test_a_marker_anywhere_fails_both_checks(
    place: str, assert_never_stored: NeverStored, stash_tables: StashTables, table_name: str, client: Any
) -> None:
    attributes, marker = PLACES[place]
    Plain = plain_model(table_name)
    stash_tables(Plain)
    assert_never_stored(Plain, marker)  # nothing yet

    client.put_item(TableName=table_name, Item={"pk": {"S": "k1"}, **attributes})

    with pytest.raises(AssertionError) as info:
        assert_never_stored(Plain, marker)
    message = str(info.value)
    assert f"{marker!r} stored in item {{pk='k1'}}, at " in message
    assert f"{marker!r} sent in a PutItem request, at Item." in message
    with pytest.raises(AssertionError):
        assert_never_stored(table_name, marker)  # by table name, on stash_dynamodb


def test_the_wire_check_sees_what_no_table_stores(
    assert_never_stored: NeverStored, stash_tables: StashTables, table_name: str
) -> None:
    Plain = plain_model(table_name)
    stash_tables(Plain)
    assert list(Plain.scan(Plain.pk == MARKER)) == []
    with pytest.raises(AssertionError) as info:
        assert_never_stored(Plain, MARKER)
    assert "sent in a Scan request, at ExpressionAttributeValues" in str(info.value)
    assert "stored" not in str(info.value)


def test_the_table_check_sees_what_was_written_before_recording(
    request: pytest.FixtureRequest, stash_tables: StashTables, table_name: str, client: Any
) -> None:
    Plain = plain_model(table_name)
    stash_tables(Plain)
    client.put_item(TableName=table_name, Item={"pk": {"S": "k1"}, "note": {"S": MARKER}})
    check: NeverStored = request.getfixturevalue("assert_never_stored")  # records from here on
    with pytest.raises(AssertionError) as info:
        check(Plain, MARKER)
    assert "stored in item {pk='k1'}, at note (S)" in str(info.value)
    assert "sent" not in str(info.value)


@pytest.mark.parametrize("operation", ["BatchWriteItem", "TransactWriteItems", "ExecuteStatement"])
def test_batches_transactions_and_partiql_are_attributed_to_their_table(
    operation: str, assert_never_stored: NeverStored, stash_tables: StashTables, table_name: str, client: Any
) -> None:
    Clean, Leaky = plain_model(f"{table_name}-a"), plain_model(f"{table_name}-b")
    stash_tables(Clean, Leaky)
    leaky = Leaky.Meta.table_name
    item = {"pk": {"S": "k1"}, "note": {"S": MARKER}}
    if operation == "BatchWriteItem":
        client.batch_write_item(RequestItems={leaky: [{"PutRequest": {"Item": item}}]})
    elif operation == "TransactWriteItems":
        client.transact_write_items(TransactItems=[{"Put": {"TableName": leaky, "Item": item}}])
    else:
        client.execute_statement(Statement=f"INSERT INTO \"{leaky}\" VALUE {{'pk': 'k1', 'note': '{MARKER}'}}")

    assert_never_stored(Clean, MARKER)  # another table's requests do not count
    with pytest.raises(AssertionError, match=f"sent in a {operation} request"):
        assert_never_stored(Leaky, MARKER)


def test_the_check_refuses_what_it_cannot_check(
    assert_never_stored: NeverStored, stash_tables: StashTables, table_name: str
) -> None:
    Plain = plain_model(table_name)
    with pytest.raises(ValueError, match="Meta.host is not set"):
        assert_never_stored(Plain, MARKER)  # its table would be on AWS
    stash_tables(Plain)
    with pytest.raises(ValueError, match="at least one marker"):
        assert_never_stored(Plain)
    with pytest.raises(ValueError, match="shorter than 4 bytes"):
        assert_never_stored(Plain, "ab")
    with pytest.raises(TypeError, match="model class or a table name"):
        assert_never_stored(Plain(pk="x"), MARKER)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not exist"):
        assert_never_stored(f"{table_name}-missing", MARKER)
