"""What reads of encrypted models ask for and must check, without a server (``pynamodb_stash._reads``).

``projection`` completes ``attributes_to_get`` with what decryption needs (stored names, the key, the
discriminator and tenant attribute, as far as the index read holds them); ``exact_constraints`` and
``exact_index_key`` collect the truncated-HMAC comparisons each result must meet after decryption;
``key_identity`` and ``batch_key`` say which ``batch_get`` keys are one stored key.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st
from layermodels import KEYRING, Account, Address, Event
from pynamodb.attributes import DiscriminatorAttribute, UnicodeAttribute
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, IncludeProjection, KeysOnlyProjection
from stashtest import offline_index, offline_meta, offline_model

from pynamodb_stash import (
    EncryptedAttribute,
    EncryptedModel,
    Equality,
    HmacAttribute,
    TenantKeyrings,
    UnsupportedQueryError,
)
from pynamodb_stash._reads import batch_key, exact_constraints, exact_index_key, key_identity, projection

pytestmark = pytest.mark.usefixtures("offline")

SECRET = "SECRET-zq-5813"


class User(EncryptedModel):
    Meta = offline_meta("Users", keyring=KEYRING)

    pk = UnicodeAttribute(hash_key=True)
    email = EncryptedAttribute(str, equality=True)
    name = EncryptedAttribute(str, null=True)
    mail = EncryptedAttribute(str, equality=True, null=True, attr_name="contact")
    role = UnicodeAttribute(null=True, attr_name="r")
    address = Address(null=True)
    by_email = offline_index("by-email", KeysOnlyProjection(), email=HmacAttribute(hash_key=True))
    by_email_with_values = offline_index(
        "by-email-with-values", IncludeProjection(["email", "name"]), email=HmacAttribute(hash_key=True)
    )
    by_role = offline_index("by-role", AllProjection(), role=UnicodeAttribute(hash_key=True, attr_name="r"))


class Record(EncryptedModel):
    Meta = offline_meta("Records", keyring=KEYRING)

    pk = UnicodeAttribute(hash_key=True)
    kind = DiscriminatorAttribute()
    owner = EncryptedAttribute(str, equality=True)
    by_owner = offline_index("by-owner", KeysOnlyProjection(), owner=HmacAttribute(hash_key=True))


class Patient(Record, discriminator="patient"):
    diagnosis = EncryptedAttribute(str, equality=True)


class Ticket(EncryptedModel):
    """``status`` keeps 16 bits of its HMAC: its comparisons also match other values."""

    Meta = offline_meta("Tickets", keyring=KEYRING)

    pk = UnicodeAttribute(hash_key=True)
    status = EncryptedAttribute(str, equality=Equality(hmac_bits=16))
    code = EncryptedAttribute(str, equality=Equality(hmac_bits=8), null=True)
    owner = EncryptedAttribute(str, equality=True)
    batch = UnicodeAttribute(null=True)
    by_status = offline_index("by-status", AllProjection(), status=HmacAttribute(hash_key=True))
    by_owner = offline_index("by-owner", AllProjection(), owner=HmacAttribute(hash_key=True))


def tenanted() -> Any:
    return offline_model(
        "Tenanted", keyring=TenantKeyrings(lambda tenant: KEYRING, attribute="org"),
        org=UnicodeAttribute(), email=EncryptedAttribute(str, equality=True),
        by_email=offline_index("by-email", KeysOnlyProjection(), email=HmacAttribute(hash_key=True)),
    )


def projected(cls: Any, names: Any, index_name: Optional[str] = None) -> set[str]:
    """:func:`projection`'s names, each asked for once (their order means nothing to DynamoDB)."""
    found = projection(cls, names, index_name)
    assert found is not None and len(found) == len(set(found)), found
    return set(found)


# -- projection ----------------------------------------------------------------------------------------------


def test_no_projection_reads_everything() -> None:
    assert projection(User, None) is None
    assert projection(User, None, "by-email") is None


def test_a_model_that_encrypts_nothing_sends_the_projection_as_given() -> None:
    Bare = offline_model("Bare", keyring=None, role=UnicodeAttribute(null=True))
    names = ["role"]
    assert projection(Bare, names) is names


@pytest.mark.parametrize("name", ["email", "email__source", "email__hmac"])
def test_an_encrypted_attribute_is_read_by_its_stored_names(name: str) -> None:
    assert projected(User, [name]) == {"email__source", "email__hmac", "pk"}


def test_an_attribute_object_or_a_single_name_is_accepted() -> None:
    assert projected(User, [User.email]) == {"email__source", "email__hmac", "pk"}
    assert projected(User, "email") == {"email__source", "email__hmac", "pk"}


def test_an_attribute_without_equality_has_no_hmac_to_read() -> None:
    assert projected(User, ["name"]) == {"name__source", "pk"}


@pytest.mark.parametrize("name", ["mail", "contact", "contact__source", "contact__hmac"])
def test_a_renamed_attribute_is_found_by_its_python_or_stored_name(name: str) -> None:
    assert projected(User, [name]) == {"contact__source", "contact__hmac", "pk"}


def test_plain_attributes_and_encrypted_maps_pass_as_they_are() -> None:
    assert projected(User, [User.role, "address", "undeclared"]) == {"r", "address", "undeclared", "pk"}


def test_the_key_is_always_read_and_each_name_once() -> None:
    assert projected(User, ["pk", "name", "email", "name"]) == {"pk", "name__source", "email__source", "email__hmac"}
    assert projected(Event, ["payload"]) == {"payload__source", "group", "seq"}


def test_an_hmac_key_is_read_by_its_stored_name() -> None:
    assert projected(Account, ["name"]) == {"name__source", "email__hmac"}
    assert projected(Account, ["email"]) == {"email__source", "email__hmac"}


def test_a_model_whose_only_encrypted_data_is_a_map_still_reads_its_key() -> None:
    Holder = offline_model("Holder", keyring=KEYRING, address=Address(null=True))
    assert projected(Holder, ["address"]) == {"address", "pk"}


def test_a_polymorphic_read_adds_the_discriminator_and_finds_subclass_fields_through_the_base() -> None:
    assert projected(Record, ["owner"]) == {"owner__source", "owner__hmac", "pk", "kind"}
    assert projected(Record, ["diagnosis"]) == {"diagnosis__source", "diagnosis__hmac", "pk", "kind"}
    assert projected(Patient, ["diagnosis"]) == {"diagnosis__source", "diagnosis__hmac", "pk", "kind"}


def test_a_tenanted_read_adds_the_tenant_attribute() -> None:
    assert projected(tenanted(), ["email"]) == {"email__source", "email__hmac", "pk", "org"}


def test_a_keys_only_index_keyed_on_an_hmac_gives_the_hmac_alone() -> None:
    """The index holds no value: the attribute reads None, its HMAC is read (and is a valid key)."""
    assert projected(User, ["email"], "by-email") == {"email__hmac", "pk"}


def test_an_index_that_projects_the_values_gives_them() -> None:
    assert projected(User, ["email", "name"], "by-email-with-values") == {
        "email__source", "email__hmac", "name__source", "pk"
    }
    assert projected(User, ["email"], "by-role") == projected(User, ["email"])


def test_what_a_keys_only_index_does_not_project_is_not_added() -> None:
    """Asking for an attribute the index does not project is an error: the items are read as the model."""
    assert projected(Record, ["owner"], "by-owner") == {"owner__hmac", "pk"}
    assert projected(tenanted(), ["email"], "by-email") == {"email__hmac", "pk"}


# -- exact_constraints ---------------------------------------------------------------------------------------


def named(found: list[tuple[Any, Any]]) -> list[tuple[str, tuple[Any, ...]]]:
    """Obligations as (field name, values), sorted (their order means nothing): each field is the model's own."""
    assert all(field is getattr(Ticket, field.python_name) for field, _ in found)
    return sorted((field.python_name, tuple(expected)) for field, expected in found)


def test_a_truncated_comparison_is_an_obligation_on_every_result() -> None:
    assert named(exact_constraints(Ticket, Ticket.status == "open")) == [("status", ("open",))]
    assert named(exact_constraints(Ticket, Ticket.status.is_in("open", "new"))) == [("status", ("open", "new"))]


def test_full_hmacs_and_plain_comparisons_need_no_check() -> None:
    assert exact_constraints(Ticket, (Ticket.owner == "ann") & (Ticket.batch == "b")) == []
    assert exact_constraints(Ticket, (Ticket.owner == "ann") | ~(Ticket.batch == "b")) == []
    assert exact_constraints(Ticket, None, None) == []


def test_truncated_comparisons_under_and_are_all_collected_from_every_condition() -> None:
    filters = (Ticket.status == "open") & ((Ticket.batch == "b") & Ticket.code.is_in("x", "y"))
    assert named(exact_constraints(Ticket, None, filters, Ticket.status == "new")) == [
        ("code", ("x", "y")), ("status", ("new",)), ("status", ("open",))
    ]


@pytest.mark.parametrize(
    "condition",
    [
        lambda: (Ticket.status == SECRET) | (Ticket.batch == "b"),
        lambda: ~(Ticket.status == SECRET),
        lambda: ((Ticket.status == SECRET) & (Ticket.batch == "b")) | (Ticket.owner == "ann"),
        lambda: ~((Ticket.batch == "b") & Ticket.status.is_in(SECRET)),
    ],
    ids=["or", "not", "and-under-or", "and-under-not"],
)
def test_a_truncated_comparison_under_or_or_not_is_refused(condition: Any) -> None:
    with pytest.raises(UnsupportedQueryError) as raised:
        exact_constraints(Ticket, condition())
    assert "Ticket.status" in str(raised.value) and SECRET not in str(raised.value)


def _leaf(kind: str, value: str) -> Condition:
    return {"exact": Ticket.status == value, "full": Ticket.owner == value, "plain": Ticket.batch == value}[kind]


LEAVES = st.tuples(st.sampled_from(["exact", "full", "plain"]), st.sampled_from(["a", "b", "c"]))
TREES = st.recursive(
    LEAVES,
    lambda inner: st.tuples(st.sampled_from(["and", "or"]), inner, inner) | st.tuples(st.just("not"), inner),
    max_leaves=8,
)


def _condition(tree: tuple[Any, ...]) -> Condition:
    if tree[0] == "and":
        return _condition(tree[1]) & _condition(tree[2])
    if tree[0] == "or":
        return _condition(tree[1]) | _condition(tree[2])
    if tree[0] == "not":
        return ~_condition(tree[1])
    return _leaf(*tree)


def _expected(tree: tuple[Any, ...], under_and: bool = True) -> Optional[list[str]]:
    """The values of the truncated comparisons; None if one stands under | or ~."""
    if tree[0] in ("and", "or", "not"):
        found: list[str] = []
        for child in tree[1:]:
            inner = _expected(child, under_and and tree[0] == "and")
            if inner is None:
                return None
            found += inner
        return found
    kind, value = tree
    if kind != "exact":
        return []
    return [value] if under_and else None


@given(TREES)
def test_obligations_are_the_truncated_comparisons_reached_through_and_only(tree: tuple[Any, ...]) -> None:
    expected = _expected(tree)
    if expected is None:
        with pytest.raises(UnsupportedQueryError):
            exact_constraints(Ticket, _condition(tree))
    else:
        assert named(exact_constraints(Ticket, _condition(tree))) == sorted(("status", (v,)) for v in expected)


def test_a_query_of_an_index_keyed_on_a_truncated_hmac_must_match_its_key() -> None:
    assert named(exact_index_key(Ticket, "by-status", "open")) == [("status", ("open",))]
    assert exact_index_key(Ticket, "by-owner", "ann") == []
    assert exact_index_key(Ticket, None, "t1") == []


# -- key_identity and batch_key -------------------------------------------------------------------------------


def test_a_hash_key_is_serialized_as_the_model_stores_it() -> None:
    assert batch_key(User, "u1") == {"pk": "u1"}
    assert batch_key(Event, ("g", 7)) == {"group": "g", "seq": "7"}
    assert batch_key(Event, ["g", 7]) == batch_key(Event, ("g", 7))


def test_an_hmac_key_is_its_hmac_so_spellings_that_normalize_alike_are_one_key() -> None:
    first, second = batch_key(Account, " Ann@Example.com"), batch_key(Account, "ann@example.com")
    assert first == second == {"email__hmac": Account.email.hmac("ann@example.com")}
    assert key_identity(Account, first) == key_identity(Account, second)


@given(st.integers(-(2**53), 2**53), st.integers(-(2**53), 2**53))
def test_numbers_are_one_key_exactly_when_they_are_equal(a: int, b: int) -> None:
    """DynamoDB compares numbers by value: ``2`` and ``2.0`` are one key."""
    first, second = batch_key(Event, ("g", a)), batch_key(Event, ("g", float(b)))
    assert (key_identity(Event, first) == key_identity(Event, second)) == (a == b)


@given(st.text(max_size=8), st.text(max_size=8))
def test_strings_are_one_key_exactly_when_they_are_the_same(a: str, b: str) -> None:
    assert (key_identity(User, batch_key(User, a)) == key_identity(User, batch_key(User, b))) == (a == b)


def test_a_key_dynamodb_cannot_store_is_left_for_dynamodb_to_refuse() -> None:
    assert key_identity(Event, {"group": "g", "seq": "not a number"}) != key_identity(Event, {"group": "g", "seq": "1"})


@pytest.mark.parametrize("item", [SECRET, SECRET.encode(), 7, (SECRET,), (SECRET, 1, 2), None], ids=repr)
def test_a_range_model_takes_hash_and_range_pairs_and_does_not_quote_the_rest(item: Any) -> None:
    with pytest.raises(ValueError) as raised:
        batch_key(Event, item)
    assert "Event.batch_get" in str(raised.value) and SECRET not in str(raised.value)
