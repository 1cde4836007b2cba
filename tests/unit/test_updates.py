"""Update actions on encrypted models, without a server (``pynamodb_stash._updates``).

``expand`` turns each ``x.set(v)``/``x.remove()`` of an encrypted attribute or map into actions on its
stored attributes, sealed to the item; refuses plain actions that would touch encrypted data; and keeps
compound HMACs in step with their parts. The expanded actions are applied here to a stored item as
DynamoDB would apply them, and the item is read back through the model: what an update writes must
decrypt, for that item only. ``sealed_sizes`` and ``update`` give the 400 KB check of what an update sets.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, List

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from layermodels import KEYRING, Account, Address, Event
from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action, RemoveAction, SetAction
from stashtest import offline_meta, offline_model

from pynamodb_stash import (
    CompoundHmacAttribute,
    DecryptionError,
    EncryptedAttribute,
    EncryptedModel,
    EncryptionError,
    UnsupportedQueryError,
)
from pynamodb_stash._updates import expand, item_key_of, sealed_sizes, update
from pynamodb_stash._wire import MAX_ITEM_SIZE, encode_key_value, item_size

pytestmark = pytest.mark.usefixtures("offline")

SECRET = "SECRET-zq-4471"


class User(EncryptedModel):
    Meta = offline_meta("Users", keyring=KEYRING)

    pk = UnicodeAttribute(hash_key=True)
    email = EncryptedAttribute(str, equality=True, null=True)
    name = EncryptedAttribute(str, null=True)
    age = EncryptedAttribute(int, null=True)
    tags = EncryptedAttribute(UnicodeSetAttribute(), equality=True, null=True)
    role = UnicodeAttribute(null=True)
    visits = NumberAttribute(null=True)
    notes = MapAttribute(null=True)
    address = Address(null=True)
    history = ListAttribute(of=Address, null=True)


class Member(EncryptedModel):
    """Compound HMACs over an encrypted and a plain part, and over two plain parts."""

    Meta = offline_meta("Members", keyring=KEYRING)

    pk = UnicodeAttribute(hash_key=True)
    email = EncryptedAttribute(str, equality=True, null=True)
    kind = UnicodeAttribute(null=True)
    level = NumberAttribute(null=True)
    note = EncryptedAttribute(str, null=True)
    email_kind = CompoundHmacAttribute("email", "kind")
    kind_level = CompoundHmacAttribute("kind", "level")


def described(actions: List[Action]) -> list[tuple[str, str]]:
    """Each action as (SET or REMOVE, its dotted path), sorted: their order is no part of the contract."""
    kinds = {SetAction: "SET", RemoveAction: "REMOVE"}
    return sorted((kinds.get(type(a), type(a).__name__), ".".join(a.values[0].path)) for a in actions)


def value_of(actions: List[Action], path: str) -> Any:
    """The stored value a SET in ``actions`` writes at ``path``."""
    (value,) = [a.values[1].value for a in actions if isinstance(a, SetAction) and ".".join(a.values[0].path) == path]
    return value


def applied(item: dict[str, Any], actions: List[Action]) -> dict[str, Any]:
    """``item`` as DynamoDB stores it once the expanded ``actions`` (SET to a value, REMOVE) are applied."""
    item = copy.deepcopy(item)
    for action in actions:
        *parents, last = action.values[0].path
        node = item
        for parent in parents:
            node = node[parent]["M"]
        if isinstance(action, SetAction):
            operand = action.values[1]
            assert isinstance(operand, Value), "an expanded action sets values, not expressions"
            node[last] = copy.deepcopy(operand.value)
        else:
            assert isinstance(action, RemoveAction)
            node.pop(last, None)
    return item


def updated(instance: Any, actions: List[Action]) -> Any:
    """The instance as read back after ``actions`` were applied to it as stored."""
    model = type(instance)
    return model.from_raw_data(applied(instance.serialize(), expand(instance, actions)))


def no_plaintext(actions: List[Action], *secrets: str) -> None:
    shown = repr([action.values for action in actions])
    for secret in secrets:
        assert secret not in shown


# -- x.set(v) and x.remove() of encrypted attributes ---------------------------------------------------------


def test_set_of_an_equality_field_seals_the_value_and_writes_its_hmac() -> None:
    user = User(pk="u1", email="old@example.com")
    expanded = expand(user, [User.email.set(SECRET)])
    assert described(expanded) == [("SET", "email__hmac"), ("SET", "email__source")]
    assert value_of(expanded, "email__hmac") == {"S": User.email.hmac(SECRET)}
    source = value_of(expanded, "email__source")
    assert list(source) == ["B"] and type(source["B"]) is bytes
    no_plaintext(expanded, SECRET)
    assert User.from_raw_data(applied(user.serialize(), expanded)).email == SECRET


def test_set_of_a_field_without_equality_writes_no_hmac() -> None:
    expanded = expand(User(pk="u1"), [User.name.set(SECRET)])
    assert described(expanded) == [("SET", "name__source")]
    no_plaintext(expanded, SECRET)


def test_the_value_is_sealed_to_its_item() -> None:
    """Moved to another item, what an update wrote for this one does not decrypt."""
    expanded = expand(User(pk="u1"), [User.email.set(SECRET)])
    other = User(pk="u2").serialize()
    with pytest.raises(DecryptionError):
        User.from_raw_data(applied(other, expanded))


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(email=TEXT, name=TEXT, age=st.integers(-(2**70), 2**70), role=TEXT.filter(bool))
def test_values_set_by_an_update_read_back(email: str, name: str, age: int, role: str) -> None:
    user = User(pk="u1", email="before", name="before", age=1, role="before")
    got = updated(user, [User.email.set(email), User.name.set(name), User.age.set(age), User.role.set(role)])
    assert (got.email, got.name, got.age, got.role) == (email, name, age, role)
    assert got.email__hmac == User.email.hmac(email)


@pytest.mark.parametrize("how", ["remove", "set_none"])
def test_remove_removes_the_value_and_its_hmac(how: str) -> None:
    user = User(pk="u1", email="a@example.com", name="Ann")
    actions = [User.email.remove(), User.name.remove()] if how == "remove" else [
        User.email.set(None), User.name.set(None)
    ]
    expanded = expand(user, actions)
    assert described(expanded) == [("REMOVE", "email__hmac"), ("REMOVE", "email__source"), ("REMOVE", "name__source")]
    stored = applied(user.serialize(), expanded)
    assert set(stored) == {"pk"}
    got = User.from_raw_data(stored)
    assert got.email is None and got.name is None


def test_an_empty_wrapped_set_is_removed_like_none() -> None:
    """PynamoDB stores an empty set as no value: setting one removes the value and its HMAC."""
    user = User(pk="u1", tags={"a", "b"})
    assert described(expand(user, [User.tags.set(set())])) == [("REMOVE", "tags__hmac"), ("REMOVE", "tags__source")]
    assert described(expand(user, [User.tags.set({"c"})])) == [("SET", "tags__hmac"), ("SET", "tags__source")]
    assert updated(user, [User.tags.set({"c"})]).tags == {"c"}


def test_a_value_of_the_wrong_type_is_refused_without_quoting_it() -> None:
    with pytest.raises(EncryptionError) as raised:
        expand(User(pk="u1"), [User.age.set(SECRET)])
    assert SECRET not in str(raised.value) and "User.age" in str(raised.value)


def test_an_action_of_another_model_is_refused() -> None:
    with pytest.raises(UnsupportedQueryError) as raised:
        expand(User(pk="u1"), [Member.email.set(SECRET)])
    assert "another model" in str(raised.value)


def test_an_action_built_on_a_base_model_applies_to_its_subclass() -> None:
    class Base(EncryptedModel):
        Meta = offline_meta("Bases", keyring=KEYRING)

        pk = UnicodeAttribute(hash_key=True)
        secret = EncryptedAttribute(str, equality=True, null=True)

    class Sub(Base):
        pass

    got = updated(Sub(pk="s1"), [Base.secret.set(SECRET)])
    assert type(got) is Sub and got.secret == SECRET
    assert got.secret__hmac == Sub.secret.hmac(SECRET)


# -- encrypted maps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_dict", [False, True], ids=["map", "dict"])
def test_a_whole_map_is_set_sealed_in_one_action(as_dict: bool) -> None:
    user = User(pk="u1", address=Address(street="old street", city="Old"))
    value = {"street": SECRET, "city": "Paris"} if as_dict else Address(street=SECRET, city="Paris")
    expanded = expand(user, [User.address.set(value)])
    assert described(expanded) == [("SET", "address")]
    stored = value_of(expanded, "address")["M"]
    assert set(stored) == {"street__source", "street__hmac", "city"}
    assert stored["city"] == {"S": "Paris"} and stored["street__hmac"] == {"S": User.address.street.hmac(SECRET)}
    no_plaintext(expanded, SECRET)
    got = User.from_raw_data(applied(user.serialize(), expanded))
    assert (got.address.street, got.address.city) == (SECRET, "Paris")


@pytest.mark.parametrize("how", ["remove", "set_none"])
def test_a_whole_map_is_removed_in_one_action(how: str) -> None:
    user = User(pk="u1", address=Address(street="s", city="c"))
    action = User.address.remove() if how == "remove" else User.address.set(None)
    assert described(expand(user, [action])) == [("REMOVE", "address")]


def test_a_field_of_a_map_is_set_at_its_path() -> None:
    user = User(pk="u1", address=Address(street="old street", city="Old"))
    expanded = expand(user, [User.address.street.set(SECRET)])
    assert described(expanded) == [("SET", "address.street__hmac"), ("SET", "address.street__source")]
    assert value_of(expanded, "address.street__hmac") == {"S": User.address.street.hmac(SECRET)}
    got = User.from_raw_data(applied(user.serialize(), expanded))
    assert (got.address.street, got.address.city) == (SECRET, "Old")


def test_a_field_of_a_map_is_removed_with_its_hmac() -> None:
    user = User(pk="u1", address=Address(street="s", city="c"))
    expanded = expand(user, [User.address.street.remove()])
    assert described(expanded) == [("REMOVE", "address.street__hmac"), ("REMOVE", "address.street__source")]


# -- plain actions ------------------------------------------------------------------------------------------


PASSED: list[tuple[str, Callable[[], Action]]] = [
    ("plain set", lambda: User.role.set("admin")),
    ("plain add", lambda: User.visits.add(1)),
    ("plain remove", lambda: User.role.remove()),
    ("plain map", lambda: User.notes.set({"k": "v"})),
    ("stale plaintext removed", lambda: Path("email").remove()),
    ("typed plain field of an encrypted map", lambda: User.address.city.set("Paris")),
    ("whole encrypted map removed by path", lambda: Path("address").remove()),
    ("whole list of maps removed", lambda: User.history.remove()),
]


@pytest.mark.parametrize("build", [b for _, b in PASSED], ids=[n for n, _ in PASSED])
def test_plain_actions_that_leave_encrypted_values_alone_pass_as_they_are(build: Callable[[], Action]) -> None:
    action = build()
    expanded = expand(User(pk="u1"), [action])
    assert len(expanded) == 1 and expanded[0] is action


REFUSED: list[tuple[str, Callable[[], Action]]] = [
    ("set a ciphertext", lambda: Path("email__source").set(SECRET)),
    ("remove a ciphertext", lambda: Path("email__source").remove()),
    ("set an hmac", lambda: Path("email__hmac").set(SECRET)),
    ("remove an hmac", lambda: Path("email__hmac").remove()),
    ("set a plaintext beside the ciphertext", lambda: Path("email").set(SECRET)),
    ("set a nested ciphertext", lambda: Path(["address", "street__source"]).set(SECRET)),
    ("remove a nested hmac", lambda: Path(["address", "street__hmac"]).remove()),
    ("untyped path into an encrypted map", lambda: Path(["address", "city"]).set(SECRET)),
    ("whole encrypted map set by path", lambda: Path("address").set({"M": {"street": {"S": SECRET}}})),
    ("list element removed", lambda: Path("history[0]").remove()),
    ("field of a list element", lambda: Path(["history[0]", "city"]).set(SECRET)),
]


@pytest.mark.parametrize("build", [b for _, b in REFUSED], ids=[n for n, _ in REFUSED])
def test_plain_actions_on_encrypted_data_are_refused(build: Callable[[], Action]) -> None:
    with pytest.raises(UnsupportedQueryError) as raised:
        expand(User(pk="u1"), [User.role.set("admin"), build()])
    assert "holds encrypted data" in str(raised.value) and SECRET not in str(raised.value)


def test_a_model_that_encrypts_nothing_sends_its_actions_as_they_are_without_a_keyring() -> None:
    Bare = offline_model("Bare", keyring=None, role=UnicodeAttribute(null=True))
    actions = [Bare.role.set("admin"), Path("anything__source").remove()]
    assert expand(Bare(pk="b1"), actions) is actions


# -- the plaintext policy ------------------------------------------------------------------------------------


def test_during_a_migration_a_new_value_also_removes_the_stale_plaintext() -> None:
    Migrating = offline_model(
        "Migrating", keyring=KEYRING, email=EncryptedAttribute(str, equality=True, null=True),
        address=Address(null=True),
    )
    Migrating.Meta.plaintext_policy = "read_plaintext"
    item = Migrating(pk="m1")
    expanded = expand(item, [Migrating.email.set(SECRET)])
    assert ("REMOVE", "email") in described(expanded)
    assert described(expand(item, [Migrating.email.set(SECRET), Path("email").remove()])).count(
        ("REMOVE", "email")
    ) == 1
    assert ("REMOVE", "address.street") not in described(expand(item, [Migrating.address.street.set(SECRET)]))
    assert ("REMOVE", "email") not in described(expand(User(pk="u1"), [User.email.set(SECRET)]))


# -- compound HMACs follow their parts -------------------------------------------------------------------------


def test_setting_an_encrypted_part_updates_the_compound() -> None:
    member = Member(pk="m1", email="old@example.com", kind="admin", level=1)
    expanded = expand(member, [Member.email.set(SECRET)])
    assert ("SET", "email_kind__hmac") in described(expanded)
    assert ("SET", "kind_level__hmac") not in described(expanded)
    assert value_of(expanded, "email_kind__hmac") == {"S": Member.email_kind.serialize((SECRET, "admin"))}
    got = Member.from_raw_data(applied(member.serialize(), expanded))  # a compound out of step would not read
    assert got.email == SECRET


def test_setting_a_plain_part_updates_every_compound_it_is_part_of() -> None:
    member = Member(pk="m1", email="a@example.com", kind="admin", level=1)
    expanded = expand(member, [Member.kind.set("staff")])
    assert value_of(expanded, "email_kind__hmac") == {"S": Member.email_kind.serialize(("a@example.com", "staff"))}
    assert value_of(expanded, "kind_level__hmac") == {"S": Member.kind_level.serialize(("staff", 1))}
    assert Member.from_raw_data(applied(member.serialize(), expanded)).kind == "staff"


def test_a_compound_takes_the_new_values_of_all_its_parts_set_together() -> None:
    member = Member(pk="m1", email="a@example.com", kind="admin", level=1)
    expanded = expand(member, [Member.email.set(SECRET), Member.kind.set("staff")])
    assert value_of(expanded, "email_kind__hmac") == {"S": Member.email_kind.serialize((SECRET, "staff"))}


@pytest.mark.parametrize("build", [lambda: Member.email.remove(), lambda: Member.kind.remove(),
                                   lambda: Member.email.set(None)], ids=["encrypted", "plain", "set_none"])
def test_removing_a_part_removes_the_compound(build: Callable[[], Action]) -> None:
    member = Member(pk="m1", email="a@example.com", kind="admin")
    expanded = expand(member, [build()])
    assert ("REMOVE", "email_kind__hmac") in described(expanded)
    stored = applied(member.serialize(), expanded)
    assert "email_kind__hmac" not in stored
    Member.from_raw_data(stored)


def test_a_part_set_while_another_is_missing_leaves_no_compound() -> None:
    member = Member(pk="m1", kind=None)
    assert ("REMOVE", "email_kind__hmac") in described(expand(member, [Member.email.set(SECRET)]))


def test_actions_on_other_attributes_leave_the_compounds_alone() -> None:
    member = Member(pk="m1", email="a@example.com", kind="admin", level=1)
    expanded = expand(member, [Member.note.set(SECRET)])
    assert described(expanded) == [("SET", "note__source")]


@pytest.mark.parametrize(
    ("build", "compounds"),
    [(lambda: Member.level.add(1), ["kind_level"]),
     (lambda: Member.kind.set(Member.kind | "default"), ["email_kind", "kind_level"])],
    ids=["add", "if_not_exists"],
)
def test_a_part_updated_other_than_by_set_or_remove_is_refused(
    build: Callable[[], Action], compounds: list[str]
) -> None:
    """The new value is known to DynamoDB only: the compound could not follow."""
    with pytest.raises(UnsupportedQueryError) as raised:
        expand(Member(pk="m1", email="a@example.com", kind="admin", level=1), [build()])
    assert any(f"Member.{name}" in str(raised.value) for name in compounds)


@pytest.mark.parametrize(
    "actions",
    [lambda: [Member.email.set(SECRET), Path("email").remove()], lambda: [Path("email").remove()]],
    ids=["with-new-value", "alone"],
)
def test_removing_a_stale_plaintext_keeps_the_compound(actions: Callable[[], List[Action]]) -> None:
    member = Member(pk="m1", email="a@example.com", kind="admin")
    expanded = expand(member, actions())
    assert ("REMOVE", "email_kind__hmac") not in described(expanded)
    email = SECRET if ("SET", "email__source") in described(expanded) else "a@example.com"
    assert applied(member.serialize(), expanded).get("email_kind__hmac") == {
        "S": Member.email_kind.serialize((email, "admin"))
    }


# -- item_key_of: the key an update seals to -------------------------------------------------------------------


def test_the_item_key_is_the_encoded_primary_key() -> None:
    assert item_key_of(User(pk="u1")) == encode_key_value("S", "u1")
    assert item_key_of(Event(group="g", seq=7)) == encode_key_value("S", "g") + encode_key_value("N", "7")


def test_a_numeric_key_binds_as_dynamodb_returns_it() -> None:
    """DynamoDB gives back ``2`` for a stored ``2.0``: both spellings seal to one key."""
    assert item_key_of(Event(group="g", seq=2.0)) == item_key_of(Event(group="g", seq=2))
    got = updated(Event(group="g", seq=2.0), [Event.payload.set(SECRET)])
    assert got.payload == SECRET


def test_an_hmac_keyed_item_seals_to_its_hmac() -> None:
    account = Account(email="ann@example.com")
    assert item_key_of(account) == encode_key_value("S", Account.email.hmac("ann@example.com"))
    assert updated(account, [Account.name.set(SECRET)]).name == SECRET


def test_an_item_without_its_key_cannot_be_updated_with_a_value() -> None:
    with pytest.raises(EncryptionError) as raised:
        item_key_of(User())
    assert "primary key" in str(raised.value)
    with pytest.raises(EncryptionError):
        expand(User(email="a@example.com"), [User.email.set(SECRET)])
    with pytest.raises(EncryptionError):
        expand(Event(group="g"), [Event.payload.set(SECRET)])


def test_a_key_dynamodb_cannot_store_is_refused_naming_the_attribute_not_the_value() -> None:
    with pytest.raises(EncryptionError) as raised:
        item_key_of(Event(group="g", seq=1.5e200))
    assert "seq" in str(raised.value) and "200" not in str(raised.value)


# -- the 400 KB check ---------------------------------------------------------------------------------------------


def test_sealed_sizes_counts_the_ciphertexts_and_encrypted_maps_an_update_sets() -> None:
    user = User(pk="u1", address=Address(street="s"))
    expanded = expand(user, [
        User.email.set("a" * 100), User.name.set("b" * 10), User.role.set("c" * 1000), User.age.remove(),
        User.address.set(Address(street="d" * 50, city="e" * 500)), User.notes.set({"f": "g" * 2000}),
    ])
    sizes = sealed_sizes(expanded, ["address", "history"])
    assert set(sizes) == {"email__source", "name__source", "address"}
    for name, size in sizes.items():
        assert size == item_size({name: value_of(expanded, name)})
    assert sizes["email__source"] > 100 and sizes["address"] > 500


def test_sealed_sizes_counts_a_nested_ciphertext_by_its_path() -> None:
    expanded = expand(User(pk="u1", address=Address(street="s")), [User.address.street.set("x" * 300)])
    sizes = sealed_sizes(expanded, ["address"])
    assert list(sizes) == ["address.street__source"] and sizes["address.street__source"] > 300


def test_sealed_sizes_of_removals_and_plain_values_is_nothing() -> None:
    expanded = expand(User(pk="u1"), [User.email.remove(), User.role.set("x" * 500), User.notes.set({"k": "v"})])
    assert sealed_sizes(expanded, ["address"]) == {}
    assert sealed_sizes(expanded, ["notes"]) == {"notes": item_size({"notes": value_of(expanded, "notes")})}


class Sender:
    """Stands in for PynamoDB's update: records what it was sent, and raises ``error`` if given."""

    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[List[Action]] = []
        self.error = error

    def __call__(self, actions: List[Action]) -> Any:
        self.sent.append(actions)
        if self.error is not None:
            raise self.error
        return {"Attributes": {}}


def item_size_error(message: str = "Item size to update has exceeded the maximum allowed size") -> UpdateError:
    cause = ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "UpdateItem")
    return UpdateError("Failed to update item", cause=cause)


def test_update_sends_the_expanded_actions() -> None:
    send = Sender()
    assert update(User(pk="u1"), [User.email.set(SECRET)], send) == {"Attributes": {}}
    (sent,) = send.sent
    assert described(sent) == [("SET", "email__hmac"), ("SET", "email__source")]


def test_encrypted_values_over_400_kb_are_refused_before_any_request() -> None:
    send = Sender()
    with pytest.raises(EncryptionError) as raised:
        update(User(pk="u1"), [User.name.set(SECRET + "x" * MAX_ITEM_SIZE), User.email.set("a")], send)
    assert raised.value.code == "item_too_large" and send.sent == []
    assert "name__source" in str(raised.value) and SECRET not in str(raised.value)


def test_dynamodb_refusing_the_item_size_is_an_item_too_large_error() -> None:
    send = Sender(item_size_error())
    with pytest.raises(EncryptionError) as raised:
        update(User(pk="u1"), [User.name.set("x" * 1000)], send)
    assert raised.value.code == "item_too_large" and len(send.sent) == 1
    assert "name__source" in str(raised.value) and "x" * 20 not in str(raised.value)


@pytest.mark.parametrize(
    ("error", "actions"),
    [(item_size_error("The conditional request failed"), lambda: [User.name.set("x")]),
     (item_size_error(), lambda: [User.role.set("x")])],
    ids=["another-failure", "nothing-encrypted-set"],
)
def test_other_update_errors_pass_unchanged(error: UpdateError, actions: Callable[[], List[Action]]) -> None:
    with pytest.raises(UpdateError) as raised:
        update(User(pk="u1"), actions(), Sender(error))
    assert raised.value is error
