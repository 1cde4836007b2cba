"""The same tampered items through every read path: each must give the same error, never a value.

An attacker who can write to the table but holds no keys edits one stored item (``victim``) with boto3:
removing a ciphertext, writing plaintext in its place, moving values between items, or malforming them.
Every read path then reads that item: the model's ``get``, ``query`` (table and index), ``scan``,
``batch_get``, ``TransactGet``, ``from_raw_data``, ``from_stream_image``, the raw-item API's
``decrypt_item`` and ``bulk_decrypt_items``, and the ``verify`` tool. All of them open stored fields
through one function (``_FieldRuntime.read``), so all must fail with the same error class and code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.transactions import TransactGet
from stashtest import created, table_meta, unique

from pynamodb_stash import (
    DecryptionError,
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    HmacAttribute,
    KeyNotFoundError,
    Keyring,
    StashError,
    bulk_decrypt_items,
    decrypt_item,
    operations,
)

KEYRING = Keyring.local(bytes(range(1, 33)), index_key=bytes(range(100, 132)), key_id="k1")


class Profile(EncryptedMapAttribute):
    ssn = EncryptedAttribute(str, equality=True)
    city = UnicodeAttribute(null=True)


def define_person(url: str, table: str) -> Any:
    index_meta = type("Meta", (), {"index_name": "EmailIndex", "projection": AllProjection()})
    email_index = type(
        "EmailIndex", (GlobalSecondaryIndex,), {"Meta": index_meta, "email": HmacAttribute(hash_key=True)}
    )
    return type(
        "Person",
        (EncryptedModel,),
        {
            "Meta": table_meta(url, table, KEYRING),
            "pk": UnicodeAttribute(hash_key=True),
            "email": EncryptedAttribute(str, equality=True),  # keys EmailIndex
            "phone": EncryptedAttribute(str, equality=True, null=True),  # keys nothing
            "ssn": EncryptedAttribute(str),
            "profile": Profile(null=True),
            "role": UnicodeAttribute(null=True),
            "email_index": email_index(),
        },
    )


@pytest.fixture
def Person(ddb_url: str) -> Iterator[Any]:
    yield from created(define_person(ddb_url, unique("every_path")))


def save(model: Any, pk: str) -> Any:
    person = model(
        pk=pk, email=f"{pk}@mail.example", phone=f"+1-555-{pk}", ssn=f"ssn-of-{pk}",
        profile=Profile(ssn=f"nested-ssn-{pk}", city="Springfield"), role="member",
    )
    person.save()
    return person


def flip_last_byte(blob: bytes) -> bytes:
    return blob[:-1] + bytes([blob[-1] ^ 1])


def other_key_id(blob: bytes) -> bytes:
    assert blob[1] == 2 and blob[2:4] == b"k1"
    return blob[:2] + b"k9" + blob[4:]


Edit = Callable[[dict[str, Any], dict[str, Any]], Any]
"""Edits the victim's stored item in place, given another valid item of the same table."""


def _profile(item: dict[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = item["profile"]["M"]
    return stored


def _plant(item: dict[str, Any], name: str, plaintext: str, *, keep_hmac: bool) -> None:
    """Replace ``name__source`` with a plaintext ``name``, keeping ``name__hmac`` or not."""
    del item[f"{name}__source"]
    if not keep_hmac:
        item.pop(f"{name}__hmac", None)
    item[name] = {"S": plaintext}


# case: (edit, expected error class, expected code)
D, K = DecryptionError, KeyNotFoundError
CASES: dict[str, tuple[Edit, type[StashError], str]] = {
    "plaintext_instead_of_ciphertext": (lambda v, o: _plant(v, "ssn", "chosen", keep_hmac=False), D, "plaintext_found"),
    "plaintext_beside_its_hmac": (
        lambda v, o: _plant(v, "phone", "chosen", keep_hmac=True), D, "plaintext_beside_hmac",
    ),
    "plaintext_beside_a_moved_hmac": (
        lambda v, o: (_plant(v, "email", "chosen", keep_hmac=True), v.update(email__hmac=o["email__hmac"])),
        D, "plaintext_beside_hmac",
    ),
    "hmac_without_value": (lambda v, o: v.pop("phone__source"), D, "hmac_without_value"),
    "hmac_from_another_item": (lambda v, o: v.update(phone__hmac=o["phone__hmac"]), D, "decryption_failed"),
    "source_from_another_item": (lambda v, o: v.update(ssn__source=o["ssn__source"]), D, "decryption_failed"),
    "source_from_another_attribute": (lambda v, o: v.update(ssn__source=v["phone__source"]), D, "decryption_failed"),
    "source_bit_flipped": (
        lambda v, o: v.update(ssn__source={"B": flip_last_byte(v["ssn__source"]["B"])}), D, "decryption_failed",
    ),
    "source_as_a_string": (lambda v, o: v.update(ssn__source={"S": "not binary"}), D, "decryption_failed"),
    "source_as_null": (lambda v, o: v.update(ssn__source={"NULL": True}), D, "decryption_failed"),
    "hmac_not_ascii": (lambda v, o: v.update(phone__hmac={"S": "\u00e9" * 22}), D, "malformed_hmac"),
    "hmac_as_a_number": (lambda v, o: v.update(phone__hmac={"N": "7"}), D, "malformed_hmac"),
    "unknown_key_id": (
        lambda v, o: v.update(ssn__source={"B": other_key_id(v["ssn__source"]["B"])}), K, "key_not_found",
    ),
    "nested_plaintext_instead_of_ciphertext": (
        lambda v, o: _plant(_profile(v), "ssn", "chosen", keep_hmac=False), D, "plaintext_found",
    ),
    "nested_plaintext_beside_its_hmac": (
        lambda v, o: _plant(_profile(v), "ssn", "chosen", keep_hmac=True), D, "plaintext_beside_hmac",
    ),
    "nested_hmac_without_value": (lambda v, o: _profile(v).pop("ssn__source"), D, "hmac_without_value"),
    "nested_source_from_another_item": (
        lambda v, o: _profile(v).update(ssn__source=_profile(o)["ssn__source"]), D, "decryption_failed",
    ),
    "nested_map_from_another_item": (lambda v, o: v.update(profile=o["profile"]), D, "decryption_failed"),
}


def outcomes(model: Any, connection: Any, stored: dict[str, Any], pk: str, email: str | None) -> dict[str, Any]:
    """What each read path does with the stored victim: ``(error class, code)``, or the value it returned."""

    def attempt(read: Callable[[], Any]) -> Any:
        try:
            return ("value", read())
        except StashError as error:
            return (type(error), error.code)

    def transact_get() -> Any:
        with TransactGet(connection=connection) as transaction:
            future = transaction.get(model, pk)
        return future.get()

    def bulk() -> Any:
        (result,) = bulk_decrypt_items(model, [stored])
        return result.unwrap()

    found = {
        "get": attempt(lambda: model.get(pk, consistent_read=True)),
        "query": attempt(lambda: list(model.query(pk, consistent_read=True))),
        "scan": attempt(lambda: list(model.scan(model.pk == pk, consistent_read=True))),
        "batch_get": attempt(lambda: list(model.batch_get([pk], consistent_read=True))),
        "transact_get": attempt(transact_get),
        "from_raw_data": attempt(lambda: model.from_raw_data(stored)),
        "from_stream_image": attempt(lambda: model.from_stream_image(stored)),
        "decrypt_item": attempt(lambda: decrypt_item(model, stored)),
        "bulk_decrypt_items": attempt(bulk),
    }
    if email is not None:  # the victim still holds its own email's HMAC: the index finds it by that email
        found["index_query"] = attempt(lambda: list(model.email_index.query(email)))
    report = operations.verify(model)
    found["verify"] = dict(report.failures) if report.failures else ("value", report.unchanged)
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_tampered_item_fails_the_same_way_on_every_read_path(
    Person: Any, client: Any, connection: Any, case: str
) -> None:
    edit, error_class, code = CASES[case]
    table = Person.Meta.table_name
    victim, other = save(Person, "victim"), save(Person, "other")
    stored = client.get_item(TableName=table, Key={"pk": {"S": "victim"}}, ConsistentRead=True)["Item"]
    stored_other = client.get_item(TableName=table, Key={"pk": {"S": "other"}}, ConsistentRead=True)["Item"]
    client.delete_item(TableName=table, Key={"pk": {"S": "other"}})  # verify then sees the victim only
    own_hmac = stored["email__hmac"]
    edit(stored, stored_other)
    client.put_item(TableName=table, Item=stored)

    found = outcomes(Person, connection, stored, "victim", victim.email if stored["email__hmac"] == own_hmac else None)

    expected = (error_class, code)
    assert {path: outcome for path, outcome in found.items() if outcome != expected and path != "verify"} == {}
    assert found["verify"] == {code: 1}
    assert other.pk == "other"


def test_the_untampered_item_reads_back_on_every_path(Person: Any, client: Any, connection: Any) -> None:
    victim = save(Person, "victim")
    stored = client.get_item(TableName=Person.Meta.table_name, Key={"pk": {"S": "victim"}}, ConsistentRead=True)
    found = outcomes(Person, connection, stored["Item"], "victim", victim.email)
    assert found.pop("verify") == ("value", 1)
    for path, (kind, value) in found.items():
        assert kind == "value", path
        instances = value if isinstance(value, list) else [value]
        assert len(instances) == 1, path
        read = instances[0]
        ssn = read["ssn"]["S"] if isinstance(read, dict) else read.ssn
        assert ssn == "ssn-of-victim", path


def test_a_projection_may_hold_an_index_key_hmac_without_its_value(Person: Any, client: Any) -> None:
    """The one difference between paths, by design: a model read cannot tell a projection that left
    ``email__source`` out from a removed one when ``email__hmac`` keys an index; whole-item paths can."""
    save(Person, "victim")
    table = Person.Meta.table_name
    stored = client.get_item(TableName=table, Key={"pk": {"S": "victim"}}, ConsistentRead=True)["Item"]
    del stored["email__source"]
    person = Person.from_raw_data(stored)
    assert person.email is None
    for whole_item_read in (lambda: decrypt_item(Person, stored), lambda: Person.from_stream_image(stored)):
        with pytest.raises(DecryptionError) as raised:
            whole_item_read()
        assert raised.value.code == "hmac_without_value"
