"""Conditions and updates on encrypted attributes, against DynamoDB Local.

``==``, ``!=`` and ``is_in`` hash the plaintext and compare ``x__hmac``; ``exists()``/``does_not_exist()``
test ``x__source``; everything else fails when the expression is built. Updates go through
``x.set(v)``/``x.remove()``, which write or remove both stored attributes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest
from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.operand import Path
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from stashtest import REGION, assert_no_plaintext, created, raw_item, table_meta, unique

from pynamodb_stash import (
    EncryptedAttribute,
    EncryptedModel,
    EncryptionError,
    HmacAttribute,
    HmacDigest,
    Keyring,
    StashError,
    UnsupportedQueryError,
)

# -- models -------------------------------------------------------------------------------------------


def define_person(url: str, table: str, kr: Keyring) -> Any:
    class EmailIndex(GlobalSecondaryIndex):
        class Meta:
            index_name = "EmailIndex"
            projection = AllProjection()

        email = HmacAttribute(hash_key=True)

    class Person(EncryptedModel):
        Meta = table_meta(url, table, kr)

        group = UnicodeAttribute(hash_key=True)
        pk = UnicodeAttribute(range_key=True)
        email = EncryptedAttribute(str, equality=True)
        name = EncryptedAttribute(str)
        age = EncryptedAttribute(int, equality=True, null=True)
        nick = EncryptedAttribute(str, equality=True, null=True)
        role = UnicodeAttribute()
        score = NumberAttribute(null=True)
        version = VersionAttribute()
        email_index = EmailIndex()

    return Person


def define_keyed(kr: Keyring) -> tuple[Any, Any]:
    """Models whose table keys are HMACs (no table needed: their errors come before any request)."""

    class Account(EncryptedModel):
        class Meta:
            table_name = "never-created-accounts"
            host = "http://127.0.0.1:9"
            region = REGION
            keyring = kr

        email = EncryptedAttribute(str, equality=True, hash_key=True)
        name = EncryptedAttribute(str)

    class Member(EncryptedModel):
        class Meta:
            table_name = "never-created-members"
            host = "http://127.0.0.1:9"
            region = REGION
            keyring = kr

        org = UnicodeAttribute(hash_key=True)
        member = EncryptedAttribute(str, equality=True, range_key=True)

    return Account, Member


# -- fixtures (and ``keyring``, ``client`` from conftest.py) ------------------------------------------


@pytest.fixture(scope="module")
def Person(ddb_url: str, keyring: Keyring) -> Iterator[Any]:
    yield from created(define_person(ddb_url, unique("cond_people"), keyring))


class People:
    """Four people in a group of their own; emails are unique to the group, so table-wide scans only
    match this group's items."""

    def __init__(self, Person: Any) -> None:
        self.model = Person
        self.group = unique("group")
        self.email = {key: f"{key}.{self.group}@secret-people.example" for key in "abcd"}
        rows = {
            "a": dict(name="Ann Secret", age=30, nick="annie", role="admin"),
            "b": dict(name="Bob Secret", age=31, nick=None, role="user"),
            "c": dict(name="Cy Secret", age=30, nick="cee", role="user"),
            "d": dict(name="Di Secret", age=None, nick=None, role="guest"),
        }
        self.items = {}
        for key, row in rows.items():
            person = Person(self.group, key, email=self.email[key], **row)
            person.save()
            self.items[key] = person

    def key(self, pk: str) -> dict[str, Any]:
        return {"group": {"S": self.group}, "pk": {"S": pk}}


@pytest.fixture
def people(Person: Any) -> People:
    return People(Person)


Build = Callable[[Any, People], Any]

FILTERS: list[tuple[str, Build, set[str]]] = [
    ("eq", lambda P, g: P.email == g.email["a"], {"a"}),
    ("ne", lambda P, g: P.email != g.email["a"], {"b", "c", "d"}),
    ("is_in", lambda P, g: P.email.is_in(g.email["a"], g.email["c"], "nobody@x"), {"a", "c"}),
    ("int_eq", lambda P, g: P.age == 30, {"a", "c"}),
    ("int_is_in", lambda P, g: P.age.is_in(31, 99), {"b"}),
    ("exists", lambda P, g: P.nick.exists(), {"a", "c"}),
    ("does_not_exist", lambda P, g: P.nick.does_not_exist(), {"b", "d"}),
    ("age_missing", lambda P, g: P.age.does_not_exist(), {"d"}),
    ("or_plain", lambda P, g: (P.email == g.email["a"]) | (P.role == "guest"), {"a", "d"}),
    ("and_plain", lambda P, g: (P.age == 30) & (P.role == "user"), {"c"}),
    ("not", lambda P, g: ~(P.email == g.email["a"]), {"b", "c", "d"}),
    ("not_and", lambda P, g: ~(P.age == 30) & P.age.exists(), {"b"}),
    ("two_encrypted_or", lambda P, g: (P.nick == "annie") | (P.nick == "cee"), {"a", "c"}),
    ("eq_and_exists", lambda P, g: (P.email == g.email["c"]) & P.name.exists(), {"c"}),
    ("digest", lambda P, g: P.email == HmacDigest(P.email.hmac(g.email["b"])), {"b"}),
    ("companion", lambda P, g: P.email__hmac == g.email["d"], {"d"}),
    ("case_sensitive", lambda P, g: P.nick == "ANNIE", set()),
    ("ne_with_missing", lambda P, g: P.nick != "annie", {"b", "c", "d"}),  # <> holds for a missing value
    ("is_in_nullable", lambda P, g: P.nick.is_in("cee", "annie") & (P.role == "user"), {"c"}),
]


# -- filters ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "expected"), [(b, e) for _, b, e in FILTERS], ids=[n for n, _, _ in FILTERS]
)
def test_filters_on_encrypted_attributes(
    Person: Any, people: People, build: Build, expected: set[str]
) -> None:
    condition = build(Person, people)
    queried = {p.pk for p in Person.query(people.group, filter_condition=condition)}
    assert queried == expected
    scanned = {p.pk for p in Person.scan(condition & (Person.group == people.group))}
    assert scanned == expected
    assert Person.count(people.group, filter_condition=condition) == len(expected)


def test_filter_results_are_decrypted(Person: Any, people: People) -> None:
    (ann,) = Person.query(people.group, filter_condition=Person.email == people.email["a"])
    assert (ann.email, ann.name, ann.age, ann.nick, ann.role) == (
        people.email["a"],
        "Ann Secret",
        30,
        "annie",
        "admin",
    )
    (by_index,) = Person.email_index.query(people.email["c"], filter_condition=Person.age == 30)
    assert by_index.name == "Cy Secret"
    assert list(Person.email_index.query(people.email["c"], filter_condition=Person.age == 31)) == []


def test_condition_values_are_hmacs_not_plaintext(Person: Any) -> None:
    condition = (Person.email == "who@secret.example") & Person.nick.is_in("nick-one", "nick-two")
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    expression = condition.serialize(names, values)
    assert set(names) == {"email__hmac", "nick__hmac"}
    assert "who@secret.example" not in repr(values) and "nick-one" not in repr(values)
    assert {v["S"] for v in values.values()} == {
        Person.email.hmac("who@secret.example"),
        Person.nick.hmac("nick-one"),
        Person.nick.hmac("nick-two"),
    }
    assert "IN" in expression
    exists_names: dict[str, str] = {}
    Person.name.exists().serialize(exists_names, {})
    assert list(exists_names) == ["name__source"]


@pytest.mark.parametrize(
    "build",
    [
        lambda P: P.age == "30",
        lambda P: P.age == True,  # noqa: E712
        lambda P: P.email == 5,
        lambda P: P.email.is_in("ok@x", b"bytes"),
    ],
    ids=["str_for_int", "bool_for_int", "int_for_str", "bytes_in_is_in"],
)
def test_condition_value_of_the_wrong_type_raises_encryption_error(
    Person: Any, build: Callable[[Any], Any]
) -> None:
    with pytest.raises(EncryptionError):
        build(Person)


UNSUPPORTED: list[tuple[str, Callable[[Any], Any]]] = [
    ("lt", lambda P: P.email < "x"),
    ("le", lambda P: P.email <= "x"),
    ("gt", lambda P: P.email > "x"),
    ("ge", lambda P: P.email >= "x"),
    ("reflected_lt", lambda P: P.email > "x"),
    ("between", lambda P: P.email.between("a", "z")),
    ("startswith", lambda P: P.email.startswith("a")),
    ("contains", lambda P: P.email.contains("a")),
    ("is_type", lambda P: P.email.is_type()),
    ("add", lambda P: P.email.add("x")),
    ("delete", lambda P: P.email.delete("x")),
    ("append", lambda P: P.email.append(["x"])),
    ("prepend", lambda P: P.email.prepend(["x"])),
    ("plus", lambda P: P.age + 1),
    ("rplus", lambda P: 1 + P.age),
    ("minus", lambda P: P.age - 1),
    ("rminus", lambda P: 1 - P.age),
    ("if_not_exists", lambda P: P.email | "x"),
    ("index", lambda P: P.email[0]),
    ("key", lambda P: P.email["k"]),
    ("eq_without_equality", lambda P: P.name == "x"),
    ("ne_without_equality", lambda P: P.name != "x"),
    ("is_in_without_equality", lambda P: P.name.is_in("x")),
    ("hmac_without_equality", lambda P: P.name.hmac("x")),
    ("set_from_attribute", lambda P: P.email.set(P.name)),
    ("set_from_path", lambda P: P.email.set(Path("role"))),
    ("hmac_lt", lambda P: P.email__hmac < "x"),
    ("hmac_startswith", lambda P: P.email__hmac.startswith("x")),
    ("hmac_set", lambda P: P.email__hmac.set("x")),
    ("hmac_remove", lambda P: P.email__hmac.remove()),
    ("path_eq", lambda P: Path(P.email) == "x"),
    ("path_set", lambda P: Path(P.name).set("x")),
]


@pytest.mark.parametrize("build", [b for _, b in UNSUPPORTED], ids=[n for n, _ in UNSUPPORTED])
def test_unsupported_operations_raise_when_built(Person: Any, build: Callable[[Any], Any]) -> None:
    with pytest.raises(UnsupportedQueryError) as info:
        build(Person)
    assert info.value.code == "unsupported_query"
    assert "Person" in str(info.value)


def test_pending_encrypted_action_refuses_to_be_sent_outside_update(Person: Any, people: People) -> None:
    ann = people.items["a"]
    connection = Person._get_connection()
    # PynamoDB's Update() rejects the unknown action type (ValueError) before the library's own guard
    # can; either way the request is never sent.
    with pytest.raises((UnsupportedQueryError, ValueError)):
        connection.update_item(ann.group, range_key=ann.pk, actions=[Person.name.set("leaked?")])
    assert Person.get(people.group, "a").name == "Ann Secret"


# -- updates ------------------------------------------------------------------------------------------


def test_update_sets_and_removes_encrypted_and_plain_attributes_together(
    Person: Any, people: People, client: Any
) -> None:
    ann = people.items["a"]
    # a concurrent writer changes a plain attribute: the ALL_NEW response must bring it into `ann`
    Person.get(people.group, "a").update(actions=[Person.score.set(100)])
    new_email = f"new.{people.group}@secret-people.example"

    ann.update(
        actions=[
            Person.email.set(new_email),
            Person.name.set("Anna Renamed"),
            Person.nick.remove(),
            Person.age.set(41),
            Person.role.set("owner"),
            Person.score.add(5),
        ],
        add_version_condition=False,
    )
    assert (ann.email, ann.name, ann.nick, ann.age, ann.role, ann.score) == (
        new_email,
        "Anna Renamed",
        None,
        41,
        "owner",
        105,
    )
    assert ann.version == 3

    raw = raw_item(client, Person.Meta.table_name, people.key("a"))
    assert raw is not None
    assert raw["email__hmac"] == {"S": Person.email.hmac(new_email)}
    assert raw["age__hmac"] == {"S": Person.age.hmac(41)}
    assert raw["email__source"].keys() == raw["name__source"].keys() == raw["age__source"].keys() == {"B"}
    assert not {"nick__source", "nick__hmac", "email", "name", "nick", "age"} & set(raw)
    assert raw["role"] == {"S": "owner"} and raw["version"] == {"N": "3"}
    assert_no_plaintext(raw, new_email, "Anna Renamed", "secret-people", "annie")

    stored = Person.get(people.group, "a")
    assert (stored.email, stored.name, stored.nick, stored.age, stored.score) == (
        new_email,
        "Anna Renamed",
        None,
        41,
        105,
    )


def test_set_none_removes_both_stored_attributes(Person: Any, people: People, client: Any) -> None:
    ann = people.items["a"]
    ann.update(actions=[Person.nick.set(None), Person.age.set(None), Person.score.set(1)])
    assert ann.nick is None and ann.age is None and ann.score == 1
    raw = raw_item(client, Person.Meta.table_name, people.key("a"))
    assert raw is not None
    assert not {"nick__source", "nick__hmac", "age__source", "age__hmac"} & set(raw)
    assert {p.pk for p in Person.query(people.group, filter_condition=Person.nick.exists())} == {"c"}


def test_gsi_follows_an_email_update(Person: Any, people: People) -> None:
    old = people.email["b"]
    new = f"moved.{people.group}@secret-people.example"
    assert [p.pk for p in Person.email_index.query(old)] == ["b"]

    people.items["b"].update(actions=[Person.email.set(new)])
    assert list(Person.email_index.query(old)) == []
    assert [(p.pk, p.email) for p in Person.email_index.query(new)] == [("b", new)]
    assert {p.pk for p in Person.scan(Person.email == old)} == set()


def test_update_with_a_value_of_the_wrong_type_raises_and_writes_nothing(Person: Any, people: People) -> None:
    ann = people.items["a"]
    with pytest.raises(EncryptionError):
        ann.update(actions=[Person.role.set("changed"), Person.age.set("forty")])
    stored = Person.get(people.group, "a")
    assert (stored.role, stored.age, stored.version) == ("admin", 30, 1)


def test_updating_an_encrypted_table_key_raises(keyring: Keyring) -> None:
    Account, Member = define_keyed(keyring)
    for build in (
        lambda: Account.email.set("new@x"),
        lambda: Account.email.remove(),
        lambda: Member.member.set("new@x"),
        lambda: Member.member.remove(),
    ):
        with pytest.raises(UnsupportedQueryError):
            build()
    assert Account.name.set("fine") is not None


RAW_NAME_ACTIONS: list[tuple[str, Callable[[Any], Any]]] = [
    ("set_source", lambda P: Path("email__source").set(b"\x01forged")),
    ("set_hmac", lambda P: Path("email__hmac").set("forged-digest")),
    ("remove_hmac", lambda P: Path(["email__hmac"]).remove()),
    ("remove_source_without_hmac", lambda P: Path("name__source").remove()),
    ("nested_source_path", lambda P: Path("nick__source.x").remove()),
    ("add_hmac", lambda P: Path("age__hmac").add({"x"})),
]


@pytest.mark.parametrize("build", [b for _, b in RAW_NAME_ACTIONS], ids=[n for n, _ in RAW_NAME_ACTIONS])
def test_update_on_a_raw_stored_name_raises(
    Person: Any, people: People, client: Any, build: Callable[[Any], Any]
) -> None:
    before = raw_item(client, Person.Meta.table_name, people.key("c"))
    with pytest.raises(UnsupportedQueryError):
        people.items["c"].update(actions=[Person.role.set("changed"), build(Person)])
    assert raw_item(client, Person.Meta.table_name, people.key("c")) == before


def test_update_with_an_action_of_another_model_raises(Person: Any, people: People, keyring: Keyring) -> None:
    Account, _ = define_keyed(keyring)
    with pytest.raises(UnsupportedQueryError):
        people.items["a"].update(actions=[Account.name.set("x")])
    assert Person.get(people.group, "a").version == 1


# -- conditions on writes -----------------------------------------------------------------------------


def test_update_with_an_encrypted_condition(Person: Any, people: People) -> None:
    cy = people.items["c"]
    with pytest.raises(UpdateError):
        cy.update(actions=[Person.role.set("blocked")], condition=Person.email == people.email["a"])
    assert Person.get(people.group, "c").role == "user"

    cy.update(
        actions=[Person.role.set("allowed")],
        condition=(Person.email == people.email["c"]) & Person.nick.is_in("cee", "other"),
    )
    assert Person.get(people.group, "c").role == "allowed"


def test_save_with_an_encrypted_condition(Person: Any, people: People) -> None:
    bob = people.items["b"]
    bob.name = "Bob Blocked"
    with pytest.raises(PutError):
        bob.save(condition=Person.email == people.email["a"])
    assert Person.get(people.group, "b").name == "Bob Secret"

    bob = Person.get(people.group, "b")
    bob.name = "Bob Allowed"
    bob.save(
        condition=(Person.email == people.email["b"]) & (Person.age != 30) & Person.nick.does_not_exist()
    )
    assert Person.get(people.group, "b").name == "Bob Allowed"


def test_delete_with_an_encrypted_condition(Person: Any, people: People) -> None:
    di = people.items["d"]
    with pytest.raises(DeleteError):
        di.delete(condition=Person.email.is_in(people.email["a"], people.email["b"]))
    di.delete(condition=Person.email == people.email["d"])
    with pytest.raises(Person.DoesNotExist):
        Person.get(people.group, "d")


# -- optimistic locking -------------------------------------------------------------------------------


def test_version_attribute_guards_save_update_and_delete(Person: Any, people: People) -> None:
    stale = Person.get(people.group, "a")
    fresh = Person.get(people.group, "a")
    assert stale.version == fresh.version == 1

    fresh.name = "Fresh Name"
    fresh.save()
    assert fresh.version == 2

    stale.name = "Stale Name"
    with pytest.raises(PutError):
        stale.save()
    with pytest.raises(UpdateError):
        stale.update(actions=[Person.name.set("Stale Update")])
    with pytest.raises(DeleteError):
        stale.delete()
    stored = Person.get(people.group, "a")
    assert (stored.name, stored.version) == ("Fresh Name", 2)

    fresh.update(actions=[Person.email.set(f"locked.{people.group}@x.example")])
    assert fresh.version == 3
    with pytest.raises(UpdateError):
        Person(people.group, "a", email="x@y", name="n", role="r", version=2).update(
            actions=[Person.name.set("Too Late")]
        )
    stale.refresh()
    assert stale.version == 3 and stale.name == "Fresh Name"
    stale.update(actions=[Person.name.set("Now Current")])
    assert (stale.version, Person.get(people.group, "a").name) == (4, "Now Current")


def test_errors_are_stash_errors_without_plaintext(Person: Any) -> None:
    with pytest.raises(StashError) as info:
        Person.age == "forty-two-secret"  # noqa: B015
    assert "forty-two-secret" not in str(info.value)
    assert info.value.code == "encryption_failed"
