"""Model declarations: what is refused at class creation, the schema, and expressions built offline."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import pytest
from pynamodb.attributes import (
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.expressions.condition import size
from pynamodb.expressions.operand import Path
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection, LocalSecondaryIndex
from stashtest import offline_meta, offline_model

from pynamodb_stash import (
    ConfigurationError,
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    EncryptionError,
    HmacAttribute,
    HmacDigest,
    Keyring,
    StashError,
    UnsupportedQueryError,
)

KEYRING = Keyring.generate()
PLAINTEXT = "alice@example.com"


pytestmark = pytest.mark.usefixtures("offline")

# meta(table="Users", **extra) and model(cls_name="M", table="Users", *, with_pk=True, **attributes), on KEYRING
meta = partial(offline_meta, keyring=KEYRING)
model = partial(offline_model, keyring=KEYRING)


def gsi(name: str = "EmailIndex", projection: Any = None, **attributes: Any) -> Any:
    index_meta = type(
        "Meta",
        (),
        {"index_name": name, "projection": projection or AllProjection(), "read_capacity_units": 1,
         "write_capacity_units": 1},
    )
    return type(name, (GlobalSecondaryIndex,), {"Meta": index_meta, **attributes})()


class User(EncryptedModel):
    class Meta:
        table_name = "Users"
        host = "http://127.0.0.1:9"
        keyring = KEYRING

    class EmailIndex(GlobalSecondaryIndex["User"]):
        class Meta:
            index_name = "EmailIndex"
            projection = AllProjection()
            read_capacity_units = write_capacity_units = 1

        email = HmacAttribute(hash_key=True)

    pk = UnicodeAttribute(hash_key=True)
    email = EncryptedAttribute(str, equality=True)
    name = EncryptedAttribute(str, null=True)
    age = EncryptedAttribute(int, null=True, equality=True)
    role = UnicodeAttribute(null=True)
    email_index = EmailIndex()


def serialized(condition: Any) -> tuple[str, dict[str, str], dict[str, Any]]:
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    expression = condition.serialize(names, values)
    return expression, names, values


# -- refused at class creation ---------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["hash_key", "range_key"])
def test_key_without_equality(flag: str) -> None:
    with pytest.raises(ConfigurationError):
        model(with_pk=flag == "range_key", email=EncryptedAttribute(str, **{flag: True}))


@pytest.mark.parametrize(
    "plain_only",
    [VersionAttribute(), TTLAttribute(), DiscriminatorAttribute()],
    ids=lambda a: type(a).__name__,
)
def test_encrypting_attributes_dynamodb_or_pynamodb_must_read(plain_only: Any) -> None:
    with pytest.raises(ConfigurationError):
        model(x=EncryptedAttribute(plain_only))


@pytest.mark.parametrize(
    "type_", [tuple, frozenset, object, complex, bytearray, UnicodeAttribute, "str", None], ids=repr
)
def test_unsupported_type(type_: Any) -> None:
    with pytest.raises(ConfigurationError):
        model(x=EncryptedAttribute(type_))


@pytest.mark.parametrize(
    "attribute",
    [
        lambda: {"x__source": UnicodeAttribute()},
        lambda: {"x__hmac": UnicodeAttribute()},
        lambda: {"x__hmac": NumberAttribute()},
        lambda: {"x": UnicodeAttribute(attr_name="x__source")},
        lambda: {"x": UnicodeAttribute(attr_name="x__hmac")},
        lambda: {"x__source": EncryptedAttribute(str)},
        lambda: {"x": EncryptedAttribute(str, attr_name="x__hmac")},
        lambda: {"x": EncryptedAttribute(str, attr_name="y__source")},
        lambda: {"x__source": ListAttribute()},
    ],
    ids=["name-source", "name-hmac", "number-hmac", "attr_name-source", "attr_name-hmac", "encrypted-source",
         "encrypted-attr_name-hmac", "encrypted-attr_name-source", "list-source"],
)
def test_reserved_suffixes(attribute: Callable[[], dict[str, Any]]) -> None:
    with pytest.raises(ConfigurationError):
        model(**attribute())


def test_plain_attribute_clashing_with_a_companion() -> None:
    with pytest.raises(ConfigurationError):
        model(email=EncryptedAttribute(str, equality=True), email__hmac=UnicodeAttribute(null=True))


def test_hmac_index_naming_a_missing_field() -> None:
    with pytest.raises(ConfigurationError):
        model(email=EncryptedAttribute(str, equality=True), idx=gsi(email=HmacAttribute("nope", hash_key=True)))
    with pytest.raises(ConfigurationError):
        model(email=EncryptedAttribute(str, equality=True), idx=gsi(phone=HmacAttribute(hash_key=True)))


def test_hmac_index_naming_a_field_without_equality() -> None:
    with pytest.raises(ConfigurationError):
        model(email=EncryptedAttribute(str), idx=gsi(email=HmacAttribute(hash_key=True)))
    with pytest.raises(ConfigurationError):
        model(role=UnicodeAttribute(), idx=gsi(role=HmacAttribute(hash_key=True)))


def test_hmac_scope_without_equality() -> None:
    with pytest.raises(ConfigurationError):
        EncryptedAttribute(str, hmac_scope="emails")


class MapWithEncrypted(MapAttribute[str, Any]):
    street = EncryptedAttribute(str)
    city = UnicodeAttribute(null=True)


class OuterMap(MapAttribute[str, Any]):
    inner = MapWithEncrypted(null=True)


class PlainAddress(MapAttribute[str, Any]):
    street = UnicodeAttribute()
    city = UnicodeAttribute(null=True)


class ListHolder(MapAttribute[str, Any]):
    items = ListAttribute(of=MapWithEncrypted, null=True)


@pytest.mark.parametrize(
    "attribute",
    [
        lambda: MapWithEncrypted(),
        lambda: MapWithEncrypted(null=True),
        lambda: MapWithEncrypted(attr_name="addr"),
        lambda: OuterMap(null=True),
        lambda: ListAttribute(of=MapWithEncrypted),
        lambda: ListAttribute(of=MapWithEncrypted, null=True, attr_name="addrs"),
        lambda: ListHolder(null=True),
    ],
    ids=["map", "map-null", "map-attr_name", "nested-map", "list-of-map", "list-of-map-attr_name", "map-list-map"],
)
def test_encrypted_attribute_inside_a_plain_container(attribute: Callable[[], Any]) -> None:
    """A nested EncryptedAttribute would not be bound to its path: refused with ConfigurationError."""
    with pytest.raises(ConfigurationError):
        model(address=attribute())


@pytest.mark.parametrize(
    "attribute",
    [lambda: PlainAddress(), lambda: PlainAddress(null=True, attr_name="addr"), lambda: MapAttribute(null=True)],
    ids=["typed-map", "typed-map-attr_name", "raw-map"],
)
def test_plain_maps_are_accepted_next_to_encrypted_fields(attribute: Callable[[], Any]) -> None:
    cls = model(email=EncryptedAttribute(str), address=attribute())
    assert "address" in cls.get_attributes()


def test_plain_map_round_trips_offline() -> None:
    cls = model(email=EncryptedAttribute(str), address=PlainAddress(null=True))
    raw = cls(pk="u1", email=PLAINTEXT, address=PlainAddress(street="Main St 1")).serialize()
    assert raw["address"] == {"M": {"street": {"S": "Main St 1"}}}
    assert cls.from_raw_data(raw).address.street == "Main St 1"


class SecureAddress(EncryptedMapAttribute):
    street = EncryptedAttribute(str)
    zip = EncryptedAttribute(str, equality=True, null=True)
    city = UnicodeAttribute(null=True)


def test_encrypted_fields_inside_an_encrypted_map_are_accepted() -> None:
    cls = model(email=EncryptedAttribute(str), home=SecureAddress(null=True))
    home = SecureAddress(street="Main St 1", zip="1011", city="Amsterdam")
    raw = cls(pk="u1", email=PLAINTEXT, home=home).serialize()
    stored = raw["home"]["M"]
    assert set(stored) == {"street__source", "zip__source", "zip__hmac", "city"}
    assert stored["city"] == {"S": "Amsterdam"}
    assert "Main St 1" not in repr(stored)
    back = cls.from_raw_data(raw).home
    assert (back.street, back.zip, back.city) == ("Main St 1", "1011", "Amsterdam")


@pytest.mark.parametrize(
    "namespace",
    [
        lambda: {"s": EncryptedAttribute(str, equality=True, hash_key=True)},
        lambda: {"s": EncryptedAttribute(str, equality=True, range_key=True)},
        lambda: {"s": EncryptedAttribute(str, attr_name="s__source")},
        lambda: {"s": EncryptedAttribute(str, equality=True), "s__hmac": UnicodeAttribute(null=True)},
        lambda: {"inner": MapWithEncrypted(null=True)},
    ],
    ids=["nested-hash-key", "nested-range-key", "reserved-name", "companion-clash", "plain-map-inside"],
)
def test_refused_encrypted_map_declarations(namespace: Callable[[], dict[str, Any]]) -> None:
    with pytest.raises(ConfigurationError):
        type("BadMap", (EncryptedMapAttribute,), namespace())


def test_encrypted_map_inside_a_plain_map_is_refused() -> None:
    holder = type("Holder", (MapAttribute,), {"address": SecureAddress(null=True)})
    with pytest.raises(ConfigurationError):
        model(wrapper=holder(null=True))


def test_condition_on_a_nested_equality_field_targets_its_hmac() -> None:
    cls = model(home=SecureAddress(null=True))
    expression, names, values = serialized(cls.home.zip == "1011")
    assert expression == "#0.#1 = :0"
    assert set(names) == {"home", "zip__hmac"}
    (value,) = values.values()
    assert "1011" not in value["S"]
    assert value == {"S": cls.home.zip.hmac("1011")}
    with pytest.raises(UnsupportedQueryError):
        cls.home.street == "Main St 1"  # noqa: B015
    with pytest.raises(UnsupportedQueryError):
        cls.home.zip < "2000"  # noqa: B015


def test_every_refusal_is_a_stash_error() -> None:
    assert issubclass(ConfigurationError, StashError)
    with pytest.raises(StashError) as excinfo:
        model(x__source=UnicodeAttribute())
    assert excinfo.value.code == "configuration_error"


# -- the schema ------------------------------------------------------------------------------------------


def _definitions(cls: Any) -> dict[str, str]:
    return {d["AttributeName"]: d["AttributeType"] for d in cls._get_schema()["attribute_definitions"]}


def _key_schema(entries: list[dict[str, str]]) -> dict[str, str]:
    return {e["AttributeName"]: e["KeyType"] for e in entries}


def test_hmac_companion_is_the_table_hash_key() -> None:
    cls = model(with_pk=False, email=EncryptedAttribute(str, equality=True, hash_key=True))
    schema = cls._get_schema()
    assert _key_schema(schema["key_schema"]) == {"email__hmac": "HASH"}
    assert _definitions(cls) == {"email__hmac": "S"}


def test_hmac_companion_is_the_table_range_key() -> None:
    cls = model(email=EncryptedAttribute(str, equality=True, range_key=True))
    schema = cls._get_schema()
    assert _key_schema(schema["key_schema"]) == {"pk": "HASH", "email__hmac": "RANGE"}
    assert _definitions(cls) == {"pk": "S", "email__hmac": "S"}


def test_gsi_keyed_on_the_hmac() -> None:
    schema = User._get_schema()
    assert _definitions(User) == {"pk": "S", "email__hmac": "S"}
    (index,) = schema["global_secondary_indexes"]
    assert index["index_name"] == "EmailIndex"
    assert _key_schema(index["key_schema"]) == {"email__hmac": "HASH"}
    for definition in schema["attribute_definitions"]:
        assert not definition["AttributeName"].endswith("__source")
        assert definition["AttributeName"] != "email"


def test_lsi_with_hmac_range_key() -> None:
    lsi_meta = type("Meta", (), {"index_name": "ByEmail", "projection": KeysOnlyProjection()})
    lsi = type(
        "ByEmail",
        (LocalSecondaryIndex,),
        {"Meta": lsi_meta, "pk": UnicodeAttribute(hash_key=True), "email": HmacAttribute(range_key=True)},
    )
    cls = model(sk=UnicodeAttribute(range_key=True), email=EncryptedAttribute(str, equality=True), by_email=lsi())
    (index,) = cls._get_schema()["local_secondary_indexes"]
    assert _key_schema(index["key_schema"]) == {"pk": "HASH", "email__hmac": "RANGE"}


def test_hmac_attribute_of_names_the_field() -> None:
    cls = model(email=EncryptedAttribute(str, equality=True), idx=gsi(by_mail=HmacAttribute("email", hash_key=True)))
    (index,) = cls._get_schema()["global_secondary_indexes"]
    assert _key_schema(index["key_schema"]) == {"email__hmac": "HASH"}


def test_attr_name_sets_the_stored_names() -> None:
    cls = model(
        with_pk=False,
        email=EncryptedAttribute(str, equality=True, hash_key=True, attr_name="e"),
        name=EncryptedAttribute(str, attr_name="n"),
        idx=gsi(email=HmacAttribute(hash_key=True)),
    )
    schema = cls._get_schema()
    assert _key_schema(schema["key_schema"]) == {"e__hmac": "HASH"}
    assert _key_schema(schema["global_secondary_indexes"][0]["key_schema"]) == {"e__hmac": "HASH"}
    item = cls(email=PLAINTEXT, name="Alice").serialize()
    assert set(item) == {"e__source", "e__hmac", "n__source"}
    assert cls.email.attr_name == "e__source"
    assert item["e__hmac"] == {"S": cls.email.hmac(PLAINTEXT)}
    back = cls.from_raw_data(item)
    assert (back.email, back.name) == (PLAINTEXT, "Alice")


def test_serialized_item_holds_only_ciphertext_and_hmacs() -> None:
    item = User(pk="u1", email=PLAINTEXT, name="Alice", age=33, role="admin").serialize()
    assert set(item) == {"pk", "email__source", "email__hmac", "name__source", "age__source", "age__hmac", "role"}
    assert item["role"] == {"S": "admin"}
    assert set(item["email__source"]) == {"B"}
    assert item["email__hmac"] == {"S": User.email.hmac(PLAINTEXT)}
    assert item["age__hmac"] == {"S": User.age.hmac(33)}
    for name in ("email__source", "name__source", "age__source", "email__hmac"):
        stored = next(iter(item[name].values()))
        text = stored if isinstance(stored, str) else stored.decode("latin-1")
        assert PLAINTEXT not in text
        assert "Alice" not in text


def test_positional_hash_key_goes_to_the_field() -> None:
    cls = model(with_pk=False, email=EncryptedAttribute(str, equality=True, hash_key=True), n=UnicodeAttribute())
    item = cls(PLAINTEXT, n="1")
    assert item.email == PLAINTEXT
    assert item.serialize()["email__hmac"] == {"S": cls.email.hmac(PLAINTEXT)}


def test_hmac_differs_per_table_attribute_and_type() -> None:
    other_table = model("Other", table="Users2", email=EncryptedAttribute(str, equality=True))
    other_attr = model("Other2", email=EncryptedAttribute(str, equality=True), backup=EncryptedAttribute(
        str, equality=True))
    digests = {
        User.email.hmac(PLAINTEXT),
        other_table.email.hmac(PLAINTEXT),
        other_attr.backup.hmac(PLAINTEXT),
        User.email.hmac(PLAINTEXT.upper()),
    }
    assert len(digests) == 4
    assert User.age.hmac(1) != User.email.hmac("1")


def test_logical_table_name_keeps_hmacs_of_a_renamed_table() -> None:
    renamed = type(
        "Renamed",
        (EncryptedModel,),
        {
            "Meta": meta("Users-restored-2024", logical_table_name="Users"),
            "pk": UnicodeAttribute(hash_key=True),
            "email": EncryptedAttribute(str, equality=True),
        },
    )
    assert renamed.email.hmac(PLAINTEXT) == User.email.hmac(PLAINTEXT)


def test_shared_hmac_scope() -> None:
    a = model("A", table="T1", email=EncryptedAttribute(str, equality=True, hmac_scope="emails"))
    b = model("B", table="T2", contact=EncryptedAttribute(str, equality=True, hmac_scope="emails"))
    c = model("C", table="T2", contact=EncryptedAttribute(str, equality=True))
    assert a.email.hmac(PLAINTEXT) == b.contact.hmac(PLAINTEXT)
    assert c.contact.hmac(PLAINTEXT) != b.contact.hmac(PLAINTEXT)


# -- conditions ------------------------------------------------------------------------------------------


def test_equality_condition_targets_the_hmac_with_the_hmac_value() -> None:
    expression, names, values = serialized(User.email == PLAINTEXT)
    assert expression == "#0 = :0"
    assert names == {"email__hmac": "#0"}
    assert values == {":0": {"S": User.email.hmac(PLAINTEXT)}}
    assert PLAINTEXT not in repr((expression, names, values))


def test_not_equal_and_is_in_target_the_hmac() -> None:
    expression, names, values = serialized(User.email != PLAINTEXT)
    assert expression == "#0 <> :0"
    assert names == {"email__hmac": "#0"}
    assert values == {":0": {"S": User.email.hmac(PLAINTEXT)}}

    expression, names, values = serialized(User.email.is_in(PLAINTEXT, "bob@example.com"))
    assert names == {"email__hmac": "#0"}
    assert sorted(v["S"] for v in values.values()) == sorted(
        [User.email.hmac(PLAINTEXT), User.email.hmac("bob@example.com")]
    )
    assert PLAINTEXT not in repr(values)


def test_condition_on_a_non_string_field_hashes_the_typed_value() -> None:
    _, names, values = serialized(User.age == 33)
    assert names == {"age__hmac": "#0"}
    assert values == {":0": {"S": User.age.hmac(33)}}


def test_index_hash_key_hashes_the_plaintext() -> None:
    index_attribute = User.email_index._hash_key_attribute()
    assert index_attribute.serialize(PLAINTEXT) == User.email.hmac(PLAINTEXT)


def test_hmac_digest_passes_through() -> None:
    digest = HmacDigest(User.email.hmac(PLAINTEXT))
    _, _, values = serialized(User.email == digest)
    assert values == {":0": {"S": str(digest)}}


def test_exists_targets_the_source() -> None:
    expression, names, values = serialized(User.name.exists())
    assert names == {"name__source": "#0"}
    assert values == {}
    assert expression == "attribute_exists (#0)"
    _, names, _ = serialized(User.email.does_not_exist())
    assert names == {"email__source": "#0"}


def test_condition_with_a_value_of_the_wrong_type_raises_at_build() -> None:
    with pytest.raises(EncryptionError):
        User.email == 123456789  # noqa: B015
    with pytest.raises(EncryptionError):
        User.age.is_in(1, "two")


def test_equality_needs_equality_true() -> None:
    for build in (lambda: User.name == "x", lambda: User.name != "x", lambda: User.name.is_in("x"),
                  lambda: User.name.hmac("x")):
        with pytest.raises(UnsupportedQueryError):
            build()


SIZE_OPERATORS: dict[str, Callable[[Any], Any]] = {
    "size": lambda a: size(a),
    "size-compared": lambda a: size(a) > 3,
}
OPERATORS: dict[str, Callable[[Any], Any]] = {
    "<": lambda a: a < "x",
    "<=": lambda a: a <= "x",
    ">": lambda a: a > "x",
    ">=": lambda a: a >= "x",
    "between": lambda a: a.between("a", "b"),
    "startswith": lambda a: a.startswith("a"),
    "contains": lambda a: a.contains("a"),
    "is_type": lambda a: a.is_type(),
    "index": lambda a: a[0],
    "+": lambda a: a + 1,
    "radd": lambda a: 1 + a,
    "-": lambda a: a - 1,
    "rsub": lambda a: 1 - a,
    "|": lambda a: a | "x",
    "append": lambda a: a.append(["x"]),
    "prepend": lambda a: a.prepend(["x"]),
    "add": lambda a: a.add(1),
    "delete": lambda a: a.delete("x"),
}


@pytest.mark.parametrize("operator", OPERATORS.values(), ids=OPERATORS.keys())
@pytest.mark.parametrize("attribute", ["email", "name", "email__hmac"])
def test_other_operators_raise_at_build(operator: Callable[[Any], Any], attribute: str) -> None:
    with pytest.raises(UnsupportedQueryError):
        operator(getattr(User, attribute))


@pytest.mark.parametrize("operator", SIZE_OPERATORS.values(), ids=SIZE_OPERATORS.keys())
@pytest.mark.parametrize("attribute", ["email", "name"])
def test_size_of_an_encrypted_attribute_raises_at_build(operator: Callable[[Any], Any], attribute: str) -> None:
    """size(x) would filter on the ciphertext length, which tracks the plaintext length."""
    with pytest.raises(UnsupportedQueryError):
        operator(getattr(User, attribute))


def test_raw_path_on_an_encrypted_attribute_fails_closed() -> None:
    with pytest.raises(UnsupportedQueryError):
        Path(User.email) == PLAINTEXT  # noqa: B015
    with pytest.raises(UnsupportedQueryError):
        User.email.serialize(PLAINTEXT)


# -- update actions --------------------------------------------------------------------------------------


def test_set_of_a_key_field_raises_at_build() -> None:
    hash_model = model(with_pk=False, email=EncryptedAttribute(str, equality=True, hash_key=True))
    range_model = model(email=EncryptedAttribute(str, equality=True, range_key=True))
    for cls in (hash_model, range_model):
        with pytest.raises(UnsupportedQueryError):
            cls.email.set("new@example.com")
        with pytest.raises(UnsupportedQueryError):
            cls.email.remove()


def test_set_from_another_attribute_or_expression_raises() -> None:
    with pytest.raises(UnsupportedQueryError):
        User.email.set(User.name)
    with pytest.raises(UnsupportedQueryError):
        User.email.set(Path("role"))
    with pytest.raises(UnsupportedQueryError):
        User.email__hmac.set("x")
    with pytest.raises(UnsupportedQueryError):
        User.email__hmac.remove()


@pytest.mark.parametrize("build", [lambda: User.email.set(PLAINTEXT), lambda: User.email.remove(),
                                   lambda: User.email.set(None)])
def test_pending_encrypted_action_refuses_to_serialize_outside_update(build: Callable[[], Any]) -> None:
    action = build()
    with pytest.raises(UnsupportedQueryError):
        action.serialize({}, {})


def test_pending_encrypted_action_does_not_show_the_plaintext() -> None:
    action = User.email.set(PLAINTEXT)
    assert PLAINTEXT not in repr(action)
    assert PLAINTEXT not in str(action)
    assert "<encrypted>" in repr(action)
    assert PLAINTEXT not in repr([action])


def test_update_kwargs_hold_ciphertext_and_hmac_only() -> None:
    """The offline half of update(): the expression sets both stored attributes, never the plaintext."""
    user = User(pk="u1", email="old@example.com")
    update = user.get_update_kwargs_from_instance([User.email.set(PLAINTEXT), User.name.remove()])
    names = update["ExpressionAttributeNames"]
    assert set(names.values()) == {"email__source", "email__hmac", "name__source"}
    values = update["ExpressionAttributeValues"]
    assert {"S": User.email.hmac(PLAINTEXT)} in values.values()
    assert sum("B" in v for v in values.values()) == 1
    assert PLAINTEXT not in repr(update)
    assert "REMOVE" in update["UpdateExpression"]


def test_plain_update_of_a_stored_name_is_refused() -> None:
    user = User(pk="u1", email="old@example.com")
    for action in (Path("email__source").set(b"x"), Path("email__hmac").remove()):
        with pytest.raises(UnsupportedQueryError):
            user.get_update_kwargs_from_instance([action])


# -- declarations that would undo a protection -----------------------------------------------------------


def test_a_truncated_hmac_cannot_share_a_scope() -> None:
    """A truncated HMAC is a prefix of the full one under the same key: sharing the key undoes truncation."""
    from pynamodb_stash import Equality

    with pytest.raises(ConfigurationError, match="hmac_scope"):
        EncryptedAttribute(str, equality=Equality(hmac_bits=16), hmac_scope="emails")
    EncryptedAttribute(str, equality=Equality(hmac_bits=128), hmac_scope="emails")  # untruncated: fine


def test_a_compound_cannot_include_a_truncated_field() -> None:
    from pynamodb_stash import CompoundHmacAttribute, Equality

    with pytest.raises(ConfigurationError, match="truncated"):
        model(
            "Leaky",
            email=EncryptedAttribute(str, equality=Equality(hmac_bits=8)),
            kind=UnicodeAttribute(),
            email_kind=CompoundHmacAttribute("email", "kind"),
        )
    model(
        "Fine",
        email=EncryptedAttribute(str, equality=True),
        kind=UnicodeAttribute(),
        email_kind=CompoundHmacAttribute("email", "kind"),
    )


@pytest.mark.parametrize("name", ["b.c", "b[0]", "b]"])
@pytest.mark.parametrize("as_list", [False, True])
def test_maps_nested_in_an_encrypted_map_have_no_path_separator_in_their_names(name: str, as_list: bool) -> None:
    """``profile.b.c.d`` must be spelled one way: else two fields bind the same path and swap undetected."""

    class Inner(EncryptedMapAttribute):
        d = EncryptedAttribute(str)

    nested = ListAttribute(of=Inner, attr_name=name) if as_list else Inner(attr_name=name)
    with pytest.raises(ConfigurationError, match="no '.'"):
        type("Outer", (EncryptedMapAttribute,), {"b": nested})


def test_equality_on_float_is_refused_pointing_to_decimal() -> None:
    """``0.1 + 0.2 != 0.3`` and NaN equals nothing: an HMAC on binary floats would surprise."""
    with pytest.raises(ConfigurationError, match="Decimal"):
        EncryptedAttribute(float, equality=True)
    plain_float = model("Floats", ratio=EncryptedAttribute(float, null=True))
    assert plain_float.from_raw_data(plain_float(pk="p", ratio=2).serialize()).ratio == 2.0
