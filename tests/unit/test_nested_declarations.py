"""Nested encryption offline: what ``EncryptedMapAttribute`` declarations refuse at class creation, what
refuses to serialize outside its item, and the binding of each nested ciphertext to its full path.

No network: items are built with ``Model.serialize()`` and read with ``Model.from_raw_data()``.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any, Callable

import pytest
from pynamodb.attributes import (
    DynamicMapAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model
from stashtest import offline_meta, offline_model

from pynamodb_stash import (
    ConfigurationError,
    DecryptionError,
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    EncryptionError,
    HmacAttribute,
    Keyring,
    StashError,
    UnsupportedQueryError,
)

KEYRING = Keyring.generate()
SECRET = "SECRET-123-45-6789"


pytestmark = pytest.mark.usefixtures("offline")

# meta(table="Users", **extra) and model(cls_name="M", table="Users", **attributes), on KEYRING
meta = partial(offline_meta, keyring=KEYRING)
model = partial(offline_model, keyring=KEYRING)


def map_class(name: str, base: type = EncryptedMapAttribute, **attributes: Any) -> Any:
    return type(name, (base,), attributes)


# -- maps used by the tests below ------------------------------------------------------------------------


class Address(EncryptedMapAttribute):
    street = EncryptedAttribute(str, equality=True)
    city = UnicodeAttribute(null=True)


class Profile(EncryptedMapAttribute):
    ssn = EncryptedAttribute(str, equality=True)
    note = EncryptedAttribute(str, null=True)
    address = Address(null=True)
    age = NumberAttribute(null=True)


class Wrapper(EncryptedMapAttribute):
    profile = Profile(null=True)
    profiles = ListAttribute(of=Profile, null=True)


class Group(EncryptedMapAttribute):
    members = ListAttribute(of=Profile, null=True)


class PlainWithSecret(MapAttribute[str, Any]):
    secret = EncryptedAttribute(str)


class PlainAroundPlainWithSecret(MapAttribute[str, Any]):
    inner = PlainWithSecret(null=True)


class PlainAroundEncryptedMap(MapAttribute[str, Any]):
    inner = Profile(null=True)


class PlainAroundEncryptedList(MapAttribute[str, Any]):
    items = ListAttribute(of=Profile, null=True)


class PlainStreet(MapAttribute[str, Any]):
    street = UnicodeAttribute()


# -- declarations refused at class creation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"equality": True, "hash_key": True},
        {"equality": True, "range_key": True},
        {"hash_key": True},
        {"range_key": True},
    ],
    ids=["hash_key", "range_key", "hash_key-without-equality", "range_key-without-equality"],
)
def test_a_nested_key_is_refused_when_the_map_class_is_created(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        map_class("Keyed", ssn=EncryptedAttribute(str, **options))
    assert "Keyed.ssn" in str(info.value)
    assert info.value.code == "configuration_error"


def test_a_nested_key_two_levels_down_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        map_class(
            "Outer", inner=map_class("Inner", ssn=EncryptedAttribute(str, equality=True, range_key=True))()
        )


PLAINTEXT_BY_MISTAKE: list[tuple[str, Callable[[], Any]]] = [
    ("encrypted-field-in-plain-map-on-model", lambda: model(p=PlainWithSecret(null=True))),
    (
        "encrypted-field-in-plain-map-in-plain-map-on-model",
        lambda: model(p=PlainAroundPlainWithSecret(null=True)),
    ),
    (
        "plain-map-with-encrypted-field-in-encrypted-map",
        lambda: map_class("E", inner=PlainWithSecret(null=True)),
    ),
    (
        "plain-map-in-plain-map-with-encrypted-field-in-encrypted-map",
        lambda: map_class("E", inner=PlainAroundPlainWithSecret(null=True)),
    ),
    (
        "list-of-plain-map-with-encrypted-field-in-encrypted-map",
        lambda: map_class("E", items=ListAttribute(of=PlainWithSecret, null=True)),
    ),
    (
        "list-of-plain-map-with-encrypted-field-on-model",
        lambda: model(items=ListAttribute(of=PlainWithSecret)),
    ),
    (
        "list-of-encrypted-attribute-in-encrypted-map",
        lambda: map_class("E", items=ListAttribute(of=EncryptedAttribute, null=True)),
    ),
    (
        "list-of-encrypted-attribute-on-model",
        lambda: model(items=ListAttribute(of=EncryptedAttribute, null=True)),
    ),
    ("plain-map-around-encrypted-map-on-model", lambda: model(w=PlainAroundEncryptedMap(null=True))),
    (
        "plain-map-around-encrypted-map-in-encrypted-map",
        lambda: map_class("E", w=PlainAroundEncryptedMap(null=True)),
    ),
    (
        "plain-map-around-list-of-encrypted-maps-on-model",
        lambda: model(w=PlainAroundEncryptedList(null=True)),
    ),
    (
        "dynamic-map-with-encrypted-field-on-model",
        lambda: model(d=map_class("D", base=DynamicMapAttribute, secret=EncryptedAttribute(str))(null=True)),
    ),
]


@pytest.mark.parametrize(
    "declare", [d for _, d in PLAINTEXT_BY_MISTAKE], ids=[n for n, _ in PLAINTEXT_BY_MISTAKE]
)
def test_a_declaration_that_would_store_an_encrypted_field_unbound_is_refused(
    declare: Callable[[], Any],
) -> None:
    with pytest.raises(ConfigurationError) as info:
        declare()
    assert "EncryptedMapAttribute" in str(info.value)


RESERVED: list[tuple[str, Callable[[], Any]]] = [
    ("encrypted-x__source", lambda: map_class("R", x__source=EncryptedAttribute(str))),
    ("encrypted-x__hmac", lambda: map_class("R", x__hmac=EncryptedAttribute(str, null=True))),
    (
        "encrypted-attr_name-__source",
        lambda: map_class("R", x=EncryptedAttribute(str, attr_name="y__source")),
    ),
    ("encrypted-attr_name-__hmac", lambda: map_class("R", x=EncryptedAttribute(str, attr_name="y__hmac"))),
    ("plain-x__source", lambda: map_class("R", x__source=UnicodeAttribute(null=True))),
    ("plain-x__hmac", lambda: map_class("R", x__hmac=UnicodeAttribute(null=True))),
    (
        "plain-attr_name-__source",
        lambda: map_class("R", x=UnicodeAttribute(null=True, attr_name="x__source")),
    ),
    ("plain-attr_name-__hmac", lambda: map_class("R", x=NumberAttribute(null=True, attr_name="x__hmac"))),
    ("map-named-__source", lambda: map_class("R", m__source=Address(null=True))),
    ("list-named-__hmac", lambda: map_class("R", l__hmac=ListAttribute(of=Address, null=True))),
    (
        "plain-clashing-with-source",
        lambda: map_class("R", ssn=EncryptedAttribute(str), ssn__source=UnicodeAttribute(null=True)),
    ),
    (
        "plain-clashing-with-hmac",
        lambda: map_class(
            "R", ssn=EncryptedAttribute(str, equality=True), ssn__hmac=UnicodeAttribute(null=True)
        ),
    ),
    (
        "plain-attr_name-clashing-with-source",
        lambda: map_class(
            "R", ssn=EncryptedAttribute(str), other=UnicodeAttribute(null=True, attr_name="ssn__source")
        ),
    ),
]


@pytest.mark.parametrize("declare", [d for _, d in RESERVED], ids=[n for n, _ in RESERVED])
def test_names_ending_in_source_or_hmac_are_reserved_inside_maps(declare: Callable[[], Any]) -> None:
    with pytest.raises(ConfigurationError):
        declare()


def _index(name: str, **attributes: Any) -> Any:
    index_meta = type("Meta", (), {"index_name": name, "projection": AllProjection()})
    return type(name, (GlobalSecondaryIndex,), {"Meta": index_meta, **attributes})()


@pytest.mark.parametrize(
    "index",
    [
        lambda: _index("ByProfile", profile=HmacAttribute(of="profile", hash_key=True)),
        lambda: _index("BySsnPath", ssn=HmacAttribute(of="profile.ssn", hash_key=True)),
        lambda: _index("BySsnName", ssn=HmacAttribute(hash_key=True)),
        lambda: _index("ByStreet", street=HmacAttribute(of="street", hash_key=True)),
        lambda: _index(
            "ByRange", pk=UnicodeAttribute(hash_key=True), ssn=HmacAttribute(of="ssn", range_key=True)
        ),
    ],
    ids=["of-the-map", "of-a-dotted-path", "implicit-nested-name", "of-a-deeper-name", "range-key"],
)
def test_an_index_on_a_nested_field_is_refused(index: Callable[[], Any]) -> None:
    with pytest.raises(ConfigurationError):
        model(profile=Profile(null=True), idx=index())


def test_a_local_index_on_a_nested_field_is_refused() -> None:
    lsi_meta = type("Meta", (), {"index_name": "Lsi", "projection": AllProjection()})
    lsi = type(
        "Lsi",
        (LocalSecondaryIndex,),
        {
            "Meta": lsi_meta,
            "pk": UnicodeAttribute(hash_key=True),
            "ssn": HmacAttribute(of="profile", range_key=True),
        },
    )
    with pytest.raises(ConfigurationError):
        model(profile=Profile(null=True), idx=lsi())


def test_valid_nested_declarations_are_accepted_with_their_companions() -> None:
    cls = model(
        profile=Profile(null=True),
        wrapper=Wrapper(null=True),
        groups=ListAttribute(of=Group, null=True),
        extra=map_class(
            "Extra", raw=MapAttribute(null=True), typed=PlainStreet(null=True), n=NumberAttribute(null=True)
        )(null=True),
    )
    assert {"profile", "wrapper", "groups", "extra"} <= set(cls.get_attributes())
    assert {"ssn", "ssn__hmac", "note", "address", "age"} == set(Profile.get_attributes())
    assert "note__hmac" not in Profile.get_attributes()
    assert Profile.ssn.attr_name == "ssn__source" and Profile.note.attr_name == "note__source"
    assert Address.street__hmac.attr_name == "street__hmac"


# -- values outside their item refuse to serialize ------------------------------------------------------------


def _refusals() -> list[tuple[str, Callable[[Any], Any]]]:
    return [
        ("container-serialize", lambda M: Profile(ssn=SECRET).serialize(Profile(ssn=SECRET))),
        ("container-serialize-dict", lambda M: Profile(ssn=SECRET).serialize({"ssn": SECRET})),
        ("container-deserialize", lambda M: Profile(ssn=SECRET).deserialize({"ssn__source": {"B": b"\x01"}})),
        ("model-attribute-serialize", lambda M: M.profile.serialize(Profile(ssn=SECRET))),
        ("model-attribute-serialize-dict", lambda M: M.profile.serialize({"ssn": SECRET})),
        ("model-attribute-deserialize", lambda M: M.profile.deserialize({"ssn__source": {"B": b"\x01"}})),
        ("class-attribute-serialize", lambda M: Profile.address.serialize(Address(street=SECRET))),
        ("nested-field-serialize", lambda M: M.profile.address.street.serialize(SECRET)),
        ("class-field-serialize", lambda M: Address.street.serialize(SECRET)),
        ("nested-field-deserialize", lambda M: M.profile.ssn.deserialize(b"\x01")),
        ("whole-map-condition", lambda M: M.profile == Profile(ssn=SECRET)),
        ("whole-map-condition-dict", lambda M: M.profile == {"ssn": SECRET}),
        ("pending-map-action", lambda M: M.profile.set(Profile(ssn=SECRET)).serialize({}, {})),
        ("pending-field-action", lambda M: M.profile.address.street.set(SECRET).serialize({}, {})),
        ("list-of-maps-set", lambda M: M.history.set([Address(street=SECRET)])),
        ("list-of-maps-append", lambda M: M.history.append([Address(street=SECRET)])),
    ]


@pytest.mark.parametrize("build", [b for _, b in _refusals()], ids=[n for n, _ in _refusals()])
def test_encrypted_map_values_outside_their_item_raise_unsupported_query_error(
    build: Callable[[Any], Any],
) -> None:
    cls = model(profile=Profile(null=True), history=ListAttribute(of=Address, null=True))
    with pytest.raises(UnsupportedQueryError) as info:
        build(cls)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "attribute,value",
    [
        (lambda: Profile(null=True), lambda: Profile(ssn=SECRET)),
        (lambda: ListAttribute(of=Address, null=True), lambda: [Address(street=SECRET)]),
    ],
    ids=["map", "list-of-maps"],
)
def test_a_plain_pynamodb_model_cannot_store_encrypted_maps(
    attribute: Callable[[], Any], value: Callable[[], Any]
) -> None:
    plain = type("Plain", (Model,), {"Meta": meta(), "pk": UnicodeAttribute(hash_key=True), "x": attribute()})
    with pytest.raises(StashError) as info:
        plain(pk="1", x=value()).serialize()
    assert SECRET not in str(info.value)


# -- offline round trips, stored shape, HMACs ---------------------------------------------------------------


def test_offline_round_trip_with_custom_stored_names() -> None:
    Street = map_class(
        "Street",
        street=EncryptedAttribute(str, equality=True, attr_name="st"),
        city=UnicodeAttribute(null=True, attr_name="c"),
    )
    Holder = map_class(
        "Holder",
        tin=EncryptedAttribute(str, equality=True, attr_name="t"),
        where=Street(null=True, attr_name="w"),
    )
    cls = model(
        holder=Holder(null=True, attr_name="h"), olds=ListAttribute(of=Street, null=True, attr_name="o")
    )
    item = cls(
        pk="1",
        holder=Holder(tin=SECRET, where=Street(street="SECRET-st", city="c1")),
        olds=[Street(street="SECRET-old")],
    ).serialize()
    assert set(item) == {"pk", "h", "o"}
    assert set(item["h"]["M"]) == {"t__source", "t__hmac", "w"}
    assert set(item["h"]["M"]["w"]["M"]) == {"st__source", "st__hmac", "c"}
    assert item["h"]["M"]["w"]["M"]["c"] == {"S": "c1"}
    assert item["h"]["M"]["t__hmac"] == {"S": cls.holder.tin.hmac(SECRET)}
    assert item["h"]["M"]["w"]["M"]["st__hmac"] == {"S": cls.holder.where.street.hmac("SECRET-st")}
    assert set(item["o"]["L"][0]["M"]) == {"st__source", "st__hmac"}
    assert "SECRET" not in repr(item)

    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    (cls.holder.where.street == "SECRET-st").serialize(names, values)
    assert sorted(names) == ["h", "st__hmac", "w"]
    assert list(values.values()) == [{"S": cls.holder.where.street.hmac("SECRET-st")}]
    names.clear()
    cls.holder.tin.exists().serialize(names, {})
    assert sorted(names) == ["h", "t__source"]

    back = cls.from_raw_data(item)
    assert (back.holder.tin, back.holder.where.street, back.holder.where.city) == (SECRET, "SECRET-st", "c1")
    assert back.olds[0].street == "SECRET-old"


def test_dicts_and_map_instances_serialize_to_the_same_shape() -> None:
    cls = model(profile=Profile(null=True), history=ListAttribute(of=Address, null=True))
    from_instances = cls(
        pk="1",
        profile=Profile(ssn=SECRET, address=Address(street="s", city="c"), age=3),
        history=[Address(street="h", city="c")],
    ).serialize()
    from_dicts = cls(
        pk="1",
        profile={"ssn": SECRET, "address": {"street": "s", "city": "c"}, "age": 3},
        history=[{"street": "h", "city": "c"}],
    ).serialize()

    def shape(av: Any) -> Any:
        if isinstance(av, dict) and "M" in av:
            return {k: shape(v) for k, v in av["M"].items()}
        if isinstance(av, dict) and "L" in av:
            return [shape(v) for v in av["L"]]
        return av if "B" not in av else "B"

    assert {k: shape(v) for k, v in from_dicts.items()} == {k: shape(v) for k, v in from_instances.items()}
    back = cls.from_raw_data(from_dicts)
    assert (back.profile.ssn, back.profile.address.street, back.history[0].street) == (SECRET, "s", "h")


def test_a_wrong_nested_value_type_raises_encryption_error_without_the_value() -> None:
    cls = model(profile=Profile(null=True), history=ListAttribute(of=Address, null=True))
    with pytest.raises(EncryptionError) as info:
        cls(pk="1", profile=Profile(ssn=123456789)).serialize()
    assert "profile.ssn" in str(info.value) and "123456789" not in str(info.value)
    with pytest.raises(EncryptionError):
        cls(pk="1", history=[Address(street=b"bytes")]).serialize()
    with pytest.raises(EncryptionError):
        cls(pk="1", history=["not a map"]).serialize()
    with pytest.raises(EncryptionError):
        cls(pk="1", history=[None]).serialize()


def test_the_hmac_of_a_nested_field_is_readable_on_a_loaded_instance() -> None:
    """As for a top-level field (``user.email__hmac``): the map's companion gives the HMAC, it does not raise."""
    cls = model(profile=Profile(null=True))
    loaded = cls.from_raw_data(
        cls(pk="1", profile=Profile(ssn=SECRET, address=Address(street="s"))).serialize()
    )
    assert loaded.profile.ssn__hmac == cls.profile.ssn.hmac(SECRET)
    assert loaded.profile.address.street__hmac == cls.profile.address.street.hmac("s")


def test_hmacs_are_scoped_per_path_and_per_table() -> None:
    first = model(
        "First",
        "TableA",
        ssn=EncryptedAttribute(str, equality=True, null=True),
        profile=Profile(null=True),
        other=Profile(null=True),
        wrapper=Wrapper(null=True),
    )
    second = model("Second", "TableB", profile=Profile(null=True))
    digests = {
        first.ssn.hmac(SECRET),
        first.profile.ssn.hmac(SECRET),
        first.other.ssn.hmac(SECRET),
        first.wrapper.profile.ssn.hmac(SECRET),
        first.profile.address.street.hmac(SECRET),
        second.profile.ssn.hmac(SECRET),
    }
    assert len(digests) == 6
    # A model declared later with the same map class does not re-root the first model's expressions.
    assert first.profile.ssn.hmac(SECRET) != second.profile.ssn.hmac(SECRET)
    item = first(pk="1", profile=Profile(ssn=SECRET)).serialize()
    assert item["profile"]["M"]["ssn__hmac"] == {"S": first.profile.ssn.hmac(SECRET)}


# -- AAD: each nested ciphertext is bound to its full path, list positions and item ---------------------------------


def bound_model(table: str = "Bound", **meta_extra: Any) -> Any:
    namespace: dict[str, Any] = {
        "Meta": meta(table, **meta_extra),
        "pk": UnicodeAttribute(hash_key=True),
        "ssn": EncryptedAttribute(str, equality=True, null=True),
        "profile": Profile(null=True),
        "other": Profile(null=True),
        "people": ListAttribute(of=Profile, null=True),
        "wrapper": Wrapper(null=True),
        "groups": ListAttribute(of=Group, null=True),
    }
    return type("Bound", (EncryptedModel,), namespace)


BOUND = bound_model()


def _profile(n: int) -> Profile:
    return Profile(ssn=f"ssn-{n}", note=f"note-{n}", address=Address(street=f"street-{n}"))


def bound_item(pk: str = "item-1") -> dict[str, Any]:
    return BOUND(
        pk=pk,
        ssn="ssn-top",
        profile=_profile(1),
        other=_profile(2),
        people=[_profile(3), _profile(4)],
        wrapper=Wrapper(profile=_profile(5), profiles=[_profile(6), _profile(7)]),
        groups=[Group(members=[_profile(8), _profile(9)]), Group(members=[_profile(10), _profile(11)])],
    ).serialize()


def node(item: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    """The stored map at ``path`` (names and list positions), or the item itself for ``()``."""
    current: Any = item
    for step in path:
        current = current["L"][step] if isinstance(step, int) else current[step]
        if "M" in current:
            current = current["M"]
    assert "L" not in current, f"{path} names a list, not a map"
    return current


def test_the_untampered_bound_item_reads_back() -> None:
    back = BOUND.from_raw_data(bound_item())
    assert back.ssn == "ssn-top" and back.profile.ssn == "ssn-1" and back.other.address.street == "street-2"
    assert [p.ssn for p in back.people] == ["ssn-3", "ssn-4"]
    assert back.wrapper.profile.note == "note-5" and [p.ssn for p in back.wrapper.profiles] == [
        "ssn-6",
        "ssn-7",
    ]
    assert [[m.ssn for m in g.members] for g in back.groups] == [["ssn-8", "ssn-9"], ["ssn-10", "ssn-11"]]


MOVES: list[tuple[str, tuple[Any, ...], tuple[Any, ...]]] = [
    ("profile.ssn-to-people[0].ssn", ("profile",), ("people", 0)),
    ("people[0].ssn-to-people[1].ssn", ("people", 0), ("people", 1)),
    ("people[1].ssn-to-people[0].ssn", ("people", 1), ("people", 0)),
    ("profile.ssn-to-other.ssn", ("profile",), ("other",)),
    ("profile.ssn-to-wrapper.profile.ssn", ("profile",), ("wrapper", "profile")),
    ("wrapper.profiles[0].ssn-to-people[0].ssn", ("wrapper", "profiles", 0), ("people", 0)),
    ("wrapper.profile.ssn-to-wrapper.profiles[0].ssn", ("wrapper", "profile"), ("wrapper", "profiles", 0)),
    (
        "groups[0].members[1]-to-groups[1].members[0]",
        ("groups", 0, "members", 1),
        ("groups", 1, "members", 0),
    ),
    (
        "groups[0].members[0]-to-groups[1].members[0]",
        ("groups", 0, "members", 0),
        ("groups", 1, "members", 0),
    ),
    (
        "groups[1].members[0]-to-groups[0].members[1]",
        ("groups", 1, "members", 0),
        ("groups", 0, "members", 1),
    ),
    ("groups[0].members[0]-to-people[0]", ("groups", 0, "members", 0), ("people", 0)),
    ("top-level-ssn-to-profile.ssn", (), ("profile",)),
    ("profile.ssn-to-top-level-ssn", ("profile",), ()),
]


@pytest.mark.parametrize("source,target", [(s, t) for _, s, t in MOVES], ids=[n for n, _, _ in MOVES])
def test_an_ssn_moved_to_another_path_does_not_decrypt(
    source: tuple[Any, ...], target: tuple[Any, ...]
) -> None:
    item = bound_item()
    moved = copy.deepcopy(item)
    for name in ("ssn__source", "ssn__hmac"):
        node(moved, target)[name] = copy.deepcopy(node(item, source)[name])
    with pytest.raises(DecryptionError):
        BOUND.from_raw_data(moved)


@pytest.mark.parametrize(
    "source,target",
    [
        (("profile", "address"), ("other", "address")),
        (("people", 0, "address"), ("people", 1, "address")),
        (("profile", "address"), ("wrapper", "profile", "address")),
        (("groups", 0, "members", 0, "address"), ("groups", 0, "members", 1, "address")),
    ],
    ids=[
        "profile-to-other",
        "people[0]-to-people[1]",
        "profile-to-wrapper.profile",
        "groups[0].members[0]-to-[1]",
    ],
)
def test_a_whole_inner_map_moved_to_another_path_does_not_decrypt(
    source: tuple[Any, ...], target: tuple[Any, ...]
) -> None:
    item = bound_item()
    moved = copy.deepcopy(item)
    parent, name = target[:-1], target[-1]
    node(moved, parent)[name] = copy.deepcopy(node(item, source[:-1])[source[-1]])
    with pytest.raises(DecryptionError):
        BOUND.from_raw_data(moved)


@pytest.mark.parametrize(
    "path",
    [("groups",), ("people",), ("wrapper", "profiles"), ("groups", 0, "members")],
    ids=["groups", "people", "wrapper.profiles", "groups[0].members"],
)
def test_reordered_list_elements_do_not_decrypt(path: tuple[Any, ...]) -> None:
    item = bound_item()
    moved = copy.deepcopy(item)
    holder = node(moved, path[:-1])[path[-1]]
    holder["L"].reverse()
    with pytest.raises(DecryptionError):
        BOUND.from_raw_data(moved)


def test_member_lists_swapped_between_groups_do_not_decrypt() -> None:
    moved = copy.deepcopy(bound_item())
    first, second = node(moved, ("groups", 0)), node(moved, ("groups", 1))
    first["members"], second["members"] = second["members"], first["members"]
    with pytest.raises(DecryptionError):
        BOUND.from_raw_data(moved)


def test_a_source_moved_to_another_field_of_the_same_map_does_not_decrypt() -> None:
    item = bound_item()
    moved = copy.deepcopy(item)
    profile = node(moved, ("profile",))
    profile["note__source"] = profile["ssn__source"]
    with pytest.raises(DecryptionError):
        BOUND.from_raw_data(moved)


def test_an_hmac_moved_to_another_path_does_not_decrypt() -> None:
    item = bound_item()
    moved = copy.deepcopy(item)
    node(moved, ("people", 1))["ssn__hmac"] = node(item, ("people", 0))["ssn__hmac"]
    with pytest.raises(DecryptionError):
        BOUND.from_raw_data(moved)


def test_nested_values_are_bound_to_the_item() -> None:
    item = bound_item("item-1")
    with pytest.raises(DecryptionError):
        BOUND.from_raw_data({**item, "pk": {"S": "item-2"}})
    other = bound_item("item-2")
    moved = copy.deepcopy(item)
    node(moved, ("groups", 1, "members", 1))["ssn__source"] = node(other, ("groups", 1, "members", 1))[
        "ssn__source"
    ]
    node(moved, ("groups", 1, "members", 1))["ssn__hmac"] = node(other, ("groups", 1, "members", 1))[
        "ssn__hmac"
    ]
    with pytest.raises(DecryptionError):
        BOUND.from_raw_data(moved)


def test_nested_values_are_bound_to_the_logical_table() -> None:
    item = bound_item()
    with pytest.raises(DecryptionError):
        bound_model("Renamed").from_raw_data(item)
    restored = bound_model("Restored", logical_table_name="Bound").from_raw_data(item)
    assert restored.groups[1].members[1].ssn == "ssn-11" and restored.profile.address.street == "street-1"


# -- update actions built offline ------------------------------------------------------------------------------


def test_nested_update_actions_expand_to_ciphertext_and_hmac() -> None:
    cls = model(profile=Profile(null=True))
    user = cls(pk="1", profile=Profile(ssn="old"))
    kwargs = user.get_update_kwargs_from_instance(
        [cls.profile.ssn.set(SECRET), cls.profile.address.street.remove(), cls.profile.note.set(None)]
    )
    names = kwargs["ExpressionAttributeNames"]
    values = kwargs["ExpressionAttributeValues"]
    assert {
        "profile",
        "ssn__source",
        "ssn__hmac",
        "address",
        "street__source",
        "street__hmac",
        "note__source",
    } <= set(names.values())
    assert "note__hmac" not in names.values()
    assert {"S": cls.profile.ssn.hmac(SECRET)} in values.values()
    assert any(list(v) == ["B"] for v in values.values())
    assert SECRET not in repr(kwargs)


def test_a_nested_update_action_of_another_model_is_refused() -> None:
    first = model("First", "TableA", profile=Profile(null=True))
    second = model("Second", "TableB", profile=Profile(null=True))
    with pytest.raises(UnsupportedQueryError):
        first(pk="1").get_update_kwargs_from_instance([second.profile.ssn.set(SECRET)])
    with pytest.raises(UnsupportedQueryError):
        first(pk="1").get_update_kwargs_from_instance([second.profile.set(Profile(ssn=SECRET))])
