"""The schema of an encrypted model, computed once per class (``pynamodb_stash._layout``): the frozen
``Layout`` every other layer reads, the ``ModelState`` a model class keeps in ``_stash``, and the schema
questions asked of indexes (what an index projects, which fields key one).
"""

from __future__ import annotations

from typing import Any

import pytest
from layermodels import KEYRING, Account, Address
from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, IncludeProjection, KeysOnlyProjection
from stashtest import offline_index, offline_meta, offline_model

from pynamodb_stash import (
    CompoundHmacAttribute,
    DecryptionError,
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    EncryptionError,
    HmacAttribute,
    TenantKeyrings,
)
from pynamodb_stash._layout import (
    Layout,
    ModelState,
    index_keyed,
    index_projects,
    layout,
    logical_table,
    map_list,
    nested_fields,
    nested_kind,
    stored_projection,
)
from pynamodb_stash._wire import encode_key_value

pytestmark = pytest.mark.usefixtures("offline")


class Inner(EncryptedMapAttribute):
    note = EncryptedAttribute(str, attr_name="n")
    label = UnicodeAttribute(null=True)


class Outer(EncryptedMapAttribute):
    secret = EncryptedAttribute(str, null=True)
    inner = Inner(null=True, attr_name="in")
    inners = ListAttribute(of=Inner, null=True)


class User(EncryptedModel):
    Meta = offline_meta("Users", keyring=KEYRING)

    pk = UnicodeAttribute(hash_key=True)
    sk = NumberAttribute(range_key=True, attr_name="s")
    email = EncryptedAttribute(str, equality=True)
    name = EncryptedAttribute(str, null=True)
    role = UnicodeAttribute(null=True, attr_name="r", default="member")
    level = NumberAttribute(null=True)
    version = VersionAttribute()
    notes = MapAttribute(null=True)
    tags = ListAttribute(null=True)
    address = Address(null=True)
    history = ListAttribute(of=Address, null=True, attr_name="past")
    email_role = CompoundHmacAttribute("email", "role")
    by_email = offline_index("by-email", KeysOnlyProjection(), email=HmacAttribute(hash_key=True))
    by_email_with_values = offline_index(
        "by-email-with-values", IncludeProjection(["email", "level"]), email=HmacAttribute(hash_key=True)
    )
    by_role = offline_index("by-role", AllProjection(), role=UnicodeAttribute(hash_key=True, attr_name="r"))


def entries(cls: Any) -> dict[str, Any]:
    return {entry.name: entry for entry in layout(cls).plain}


# -- Layout --------------------------------------------------------------------------------------------------


def test_plain_entries_are_what_pynamodb_handles_itself() -> None:
    """Not the encrypted fields, their companions or the encrypted maps; compound HMACs are plain."""
    assert set(entries(User)) == {"pk", "sk", "role", "level", "version", "notes", "tags", "email_role"}


def test_a_plain_entry_says_how_its_attribute_is_stored_and_read() -> None:
    plain = entries(User)
    assert (plain["role"].stored, plain["role"].attr_type, plain["role"].attribute) == ("r", "S", User.role)
    assert (plain["sk"].stored, plain["sk"].attr_type) == ("s", "N")
    assert plain["email_role"].stored == "email_role__hmac"
    assert plain["role"].direct and plain["level"].direct and not plain["role"].container
    # Descriptors of their own (a version, a compound computed from its parts, a map) are not bypassed.
    assert not plain["version"].direct and not plain["email_role"].direct and not plain["notes"].direct
    assert plain["notes"].container and plain["tags"].container


def test_nested_entries_are_the_encrypted_maps_and_lists_of_them() -> None:
    nested = {entry.name: entry for entry in layout(User).nested}
    assert set(nested) == {"address", "history"}
    assert (nested["address"].stored, nested["address"].map_class, nested["address"].is_list) == (
        "address", Address, False
    )
    assert (nested["history"].stored, nested["history"].map_class, nested["history"].is_list) == ("past", Address, True)
    assert nested["history"].attribute is User.history


def test_fields_are_the_models_encrypted_attributes() -> None:
    assert sorted(field.python_name for field in layout(User).fields) == ["email", "name"]
    assert all(field is getattr(User, field.python_name) for field in layout(User).fields)
    assert layout(User).fields == tuple(User._stash.fields.values())


def test_compound_parts_are_what_an_encrypted_only_read_needs_besides_the_values() -> None:
    """The compounds themselves and their plain parts (an encrypted part is read as a field)."""
    assert {entry.name for entry in layout(User).compound_parts} == {"email_role", "role"}
    assert layout(Account).compound_parts == ()


def test_the_tenant_attribute_is_among_the_compound_parts() -> None:
    Member = offline_model(
        "Member", keyring=TenantKeyrings(lambda tenant: KEYRING, attribute="org"), org=UnicodeAttribute(),
        email=EncryptedAttribute(str, equality=True), kind=UnicodeAttribute(null=True),
        email_kind=CompoundHmacAttribute("email", "kind"),
    )
    assert {entry.name for entry in layout(Member).compound_parts} == {"email_kind", "kind", "org"}


def test_has_defaults_says_whether_any_attribute_has_one() -> None:
    assert layout(User).has_defaults
    assert not layout(Account).has_defaults
    Fresh = offline_model("Fresh", keyring=KEYRING, n=NumberAttribute(null=True, default_for_new=0))
    assert layout(Fresh).has_defaults


def test_the_keys_are_their_stored_names_and_types() -> None:
    assert (layout(User).hash_key, layout(User).range_key) == (("pk", "S"), ("s", "N"))
    assert (layout(Account).hash_key, layout(Account).range_key) == (("email__hmac", "S"), None)


def test_the_item_key_encodes_the_hash_then_the_range_key() -> None:
    plan = layout(User)
    assert plan.item_key({"pk": {"S": "u1"}, "s": {"N": "7"}, "r": {"S": "x"}}) == (
        encode_key_value("S", "u1") + encode_key_value("N", "7")
    )
    assert plan.item_key({"pk": {"S": "u1"}, "s": {"N": "2.0"}}) == plan.item_key({"pk": {"S": "u1"}, "s": {"N": "2"}})


@pytest.mark.parametrize(
    "item",
    [{"pk": {"S": "u1"}}, {"s": {"N": "1"}}, {"pk": {"N": "1"}, "s": {"N": "1"}}, {}],
    ids=["no-range", "no-hash", "hash-of-another-type", "empty"],
)
def test_an_item_without_its_whole_key_has_no_item_key(item: dict[str, Any]) -> None:
    assert layout(User).item_key(item) is None


def test_a_key_with_no_canonical_form_raises_the_callers_error_naming_the_attribute() -> None:
    item = {"pk": {"S": "u1"}, "s": {"N": "9" * 39}}
    with pytest.raises(EncryptionError) as raised:
        layout(User).item_key(item)
    assert "s:" in str(raised.value) and "9" * 39 not in str(raised.value)
    with pytest.raises(DecryptionError):
        layout(User).item_key(item, DecryptionError)


# -- ModelState ---------------------------------------------------------------------------------------------


def test_a_model_keeps_its_state_in_one_attribute() -> None:
    state = User._stash
    assert isinstance(state, ModelState)
    assert state.fields == {"email": User.email, "name": User.name}
    assert state.compounds == {"email_role": User.email_role}
    assert all(field.model is User for field in state.fields.values())


def test_the_layout_is_computed_on_first_use_and_kept() -> None:
    Late = offline_model("Late", keyring=KEYRING, secret=EncryptedAttribute(str, null=True))
    assert Late._stash.layout is None and Late._stash.runtime is None and Late._stash.runtimes == {}
    first = layout(Late)
    assert isinstance(first, Layout) and Late._stash.layout is first and layout(Late) is first


def test_a_subclass_has_its_own_state_and_its_own_fields() -> None:
    """Fields are bound to their model (and table): a subclass must not share its base's."""

    class Base(EncryptedModel):
        Meta = offline_meta("Bases", keyring=KEYRING)

        pk = UnicodeAttribute(hash_key=True)
        secret = EncryptedAttribute(str, equality=True)

    class Sub(Base):
        Meta = offline_meta("Subs", keyring=KEYRING)

    assert Sub._stash is not Base._stash
    assert Sub._stash.fields["secret"] is not Base._stash.fields["secret"]
    assert Sub._stash.fields["secret"].model is Sub and Base._stash.fields["secret"].model is Base
    assert layout(Sub) is not layout(Base) and layout(Sub).fields == (Sub.secret,)
    assert Sub.secret.hmac("x") != Base.secret.hmac("x")  # each under its own table


# -- indexes ------------------------------------------------------------------------------------------------


def test_an_include_projection_names_what_is_stored() -> None:
    fields = User._stash.fields
    projected = stored_projection(IncludeProjection(["name", "email", "level", "email"]), fields)
    assert isinstance(projected, IncludeProjection)
    assert sorted(projected.non_key_attributes) == ["email__hmac", "email__source", "level", "name__source"]


def test_an_include_projection_finds_a_field_by_python_or_logical_name() -> None:
    Renamed = offline_model(
        "Renamed", keyring=KEYRING, mail=EncryptedAttribute(str, equality=True, attr_name="contact")
    )
    for names in (["mail"], ["contact"], ["mail", "contact"]):
        projected = stored_projection(IncludeProjection(names), Renamed._stash.fields)
        assert projected is not None and sorted(projected.non_key_attributes) == ["contact__hmac", "contact__source"]


@pytest.mark.parametrize(
    "projection",
    [IncludeProjection(["level", "r"]), KeysOnlyProjection(), AllProjection(), None],
    ids=["no-encrypted-name", "keys-only", "all", "none"],
)
def test_a_projection_naming_no_encrypted_attribute_is_left_alone(projection: Any) -> None:
    assert stored_projection(projection, User._stash.fields) is None


def test_a_table_read_or_an_all_index_projects_everything() -> None:
    for index_name in (None, "by-role", "no-such-index"):
        projects = index_projects(User, index_name)
        assert all(projects(name) for name in ("pk", "email__source", "r", "anything"))


def test_a_keys_only_index_projects_the_table_and_index_keys() -> None:
    projects = index_projects(User, "by-email")
    assert [projects(name) for name in ("pk", "s", "email__hmac")] == [True, True, True]
    assert [projects(name) for name in ("email__source", "r", "level")] == [False, False, False]


def test_an_include_index_projects_the_stored_names_of_what_it_includes() -> None:
    projects = index_projects(User, "by-email-with-values")
    assert all(projects(name) for name in ("pk", "s", "email__hmac", "email__source", "level"))
    assert not projects("name__source") and not projects("r")


def test_index_keyed_names_the_fields_whose_hmac_keys_an_index() -> None:
    assert index_keyed(User) == frozenset({"email"})
    assert index_keyed(Account) == frozenset()  # a table key is not an index key

    RangeKeyed = offline_model(
        "RangeKeyed", keyring=KEYRING, kind=UnicodeAttribute(), code=EncryptedAttribute(str, equality=True),
        other=EncryptedAttribute(str, equality=True),
        by_kind=offline_index("by-kind", AllProjection(), kind=UnicodeAttribute(hash_key=True),
                              code=HmacAttribute(range_key=True)),
    )
    assert index_keyed(RangeKeyed) == frozenset({"code"})


def test_an_index_on_a_compound_keys_no_field() -> None:
    Compound = offline_model(
        "Compound", keyring=KEYRING, email=EncryptedAttribute(str, equality=True), kind=UnicodeAttribute(),
        email_kind=CompoundHmacAttribute("email", "kind"),
        by_both=offline_index("by-both", KeysOnlyProjection(), email_kind=HmacAttribute(hash_key=True)),
    )
    assert index_keyed(Compound) == frozenset()


# -- names and nesting --------------------------------------------------------------------------------------


def test_the_logical_table_is_logical_table_name_else_table_name() -> None:
    assert logical_table(type("Meta", (), {"table_name": "users-restored", "logical_table_name": "users"})) == "users"
    assert logical_table(type("Meta", (), {"table_name": "users"})) == "users"
    assert logical_table(type("Meta", (), {})) is None


def test_nested_kind_is_the_map_class_of_an_encrypted_map_or_a_list_of_them() -> None:
    assert nested_kind(User.address) is Address and nested_kind(User.history) is Address
    assert map_list(User.history) is Address and map_list(User.address) is None
    for plain in (User.notes, User.tags, User.role, ListAttribute(of=MapAttribute)):
        assert nested_kind(plain) is None


def test_nested_fields_are_found_at_every_depth_by_their_stored_paths() -> None:
    found = dict(nested_fields(Outer, "doc"))
    assert set(found) == {"doc.secret", "doc.in.n", "doc.inners[].n"}
    assert found["doc.secret"].python_name == "secret" and found["doc.in.n"].python_name == "note"
    assert dict(nested_fields(Address, "past[]")) == {"past[].street": Address.street}
