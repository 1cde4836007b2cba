"""Tampered nested values (on DynamoDB Local): ciphertexts and HMACs moved, swapped or forged between
items, fields, list elements and tables, and stored values of the wrong type, all fail to read.
Shared declarations: ``tests/nestedtest.py``.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
from nestedtest import SSN, define_user, full_user, model_fixture, put_raw, raw_user
from stashtest import unique

from pynamodb_stash import DecryptionError, Keyring

# -- fixtures: a table per model for the module (``keyring``, ``client``, ``connection`` from conftest.py)

User = model_fixture(define_user, "nested_users")


# -- tamper: moved, swapped and forged nested values ------------------------------------------------------


@pytest.fixture
def pair(User: Any, client: Any) -> tuple[str, str]:
    """Two fully populated users with distinct values; both read back untampered."""
    a, b = unique("ta"), unique("tb")
    full_user(User, a).save()
    full_user(User, b, ssn="987-65-4321", street="5 Side Street").save()
    assert User.get(a, consistent_read=True).profile.ssn == SSN
    assert User.get(b, consistent_read=True).profile.ssn == "987-65-4321"
    return a, b


def _tampered(User: Any, client: Any, pk: str, change: Callable[[dict[str, Any]], None]) -> None:
    item = copy.deepcopy(raw_user(client, User, pk))
    change(item)
    put_raw(client, User, item)


def _unreadable(User: Any, pk: str) -> None:
    with pytest.raises(DecryptionError):
        User.get(pk, consistent_read=True)
    with pytest.raises(DecryptionError):
        list(User.batch_get([pk]))


def _map(item: dict[str, Any], *path: Any) -> dict[str, Any]:
    node: Any = item
    for step in path:
        node = node["L"][step] if isinstance(step, int) else node[step]
        if "M" in node:
            node = node["M"]
    assert isinstance(node, dict)
    return node


@pytest.mark.parametrize("with_hmac", [True, False], ids=["source+hmac", "source-only"])
def test_nested_source_swapped_between_items(
    User: Any, client: Any, pair: tuple[str, str], with_hmac: bool
) -> None:
    a, b = pair
    other = _map(raw_user(client, User, b), "profile")

    def change(item: dict[str, Any]) -> None:
        _map(item, "profile")["ssn__source"] = other["ssn__source"]
        if with_hmac:
            _map(item, "profile")["ssn__hmac"] = other["ssn__hmac"]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_deep_source_swapped_between_items(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, b = pair
    other = _map(raw_user(client, User, b), "profile", "address")
    _tampered(
        User,
        client,
        a,
        lambda item: _map(item, "profile", "address").update(
            street__source=other["street__source"], street__hmac=other["street__hmac"]
        ),
    )
    _unreadable(User, a)


def test_whole_map_moved_to_another_item(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, b = pair
    other = raw_user(client, User, b)
    _tampered(User, client, a, lambda item: item.update(profile=other["profile"]))
    _unreadable(User, a)


def test_whole_item_copied_under_another_primary_key(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair
    item = raw_user(client, User, a)
    copied = unique("copy")
    put_raw(client, User, {**item, "pk": {"S": copied}})
    _unreadable(User, copied)


def test_nested_sources_swapped_between_two_fields(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair

    def change(item: dict[str, Any]) -> None:
        profile, address = _map(item, "profile"), _map(item, "profile", "address")
        profile["ssn__source"], address["street__source"] = address["street__source"], profile["ssn__source"]
        profile["ssn__hmac"], address["street__hmac"] = address["street__hmac"], profile["ssn__hmac"]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_same_map_class_swapped_between_two_attributes(User: Any, client: Any, pair: tuple[str, str]) -> None:
    """``profile.address`` and ``work`` are both ``Address`` maps, at different paths."""
    a, _ = pair

    def change(item: dict[str, Any]) -> None:
        item["profile"]["M"]["address"], item["work"] = item["work"], item["profile"]["M"]["address"]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_list_elements_swapped(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair

    def change(item: dict[str, Any]) -> None:
        first, second = item["history"]["L"]
        item["history"]["L"] = [second, first]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_source_moved_into_another_list_element(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair

    def change(item: dict[str, Any]) -> None:
        first, second = _map(item, "history", 0), _map(item, "history", 1)
        second["street__source"], second["street__hmac"] = first["street__source"], first["street__hmac"]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_list_truncated_at_the_front(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair
    _tampered(User, client, a, lambda item: item["history"]["L"].pop(0))
    _unreadable(User, a)


def test_map_field_moved_into_a_list_element_and_back(User: Any, client: Any, pair: tuple[str, str]) -> None:
    """``profile.address.street`` and ``history[0].street``: same map class, same field name, other paths."""
    a, _ = pair

    def change(item: dict[str, Any]) -> None:
        address, element = _map(item, "profile", "address"), _map(item, "history", 0)
        for name in ("street__source", "street__hmac"):
            address[name], element[name] = element[name], address[name]

    _tampered(User, client, a, change)
    _unreadable(User, a)


def test_whole_map_moved_into_a_list_element(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair
    _tampered(
        User, client, a, lambda item: item["history"]["L"].__setitem__(0, item["profile"]["M"]["address"])
    )
    _unreadable(User, a)


def test_nested_hmac_swapped_between_items(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, b = pair
    other = _map(raw_user(client, User, b), "profile")
    _tampered(User, client, a, lambda item: _map(item, "profile").update(ssn__hmac=other["ssn__hmac"]))
    _unreadable(User, a)


def test_nested_hmac_replaced_by_one_for_another_value(User: Any, client: Any, pair: tuple[str, str]) -> None:
    """An item must not be made to answer ``street == "5 Side Street"`` while holding another street."""
    a, _ = pair
    forged = User.profile.address.street.hmac("5 Side Street")
    _tampered(
        User, client, a, lambda item: _map(item, "profile", "address").update(street__hmac={"S": forged})
    )
    _unreadable(User, a)


def test_list_element_hmac_replaced(User: Any, client: Any, pair: tuple[str, str]) -> None:
    a, _ = pair
    _tampered(
        User,
        client,
        a,
        lambda item: _map(item, "history", 1).update(street__hmac=_map(item, "history", 0)["street__hmac"]),
    )
    _unreadable(User, a)


def test_item_moved_to_another_table_with_the_same_declaration(
    User: Any, client: Any, ddb_url: str, keyring: Keyring, pair: tuple[str, str]
) -> None:
    a, _ = pair
    Other = define_user(ddb_url, unique("nested_other"), keyring)
    Other.create_table(wait=True)
    try:
        put_raw(client, Other, raw_user(client, User, a))
        with pytest.raises(DecryptionError):
            Other.get(a, consistent_read=True)
    finally:
        Other.delete_table()


# -- wrong stored types ---------------------------------------------------------------------------------

WRONG_TYPES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("map_as_string", lambda it: it.update(profile={"S": "123-45-6789"})),
    ("map_as_list", lambda it: it.update(profile={"L": [{"S": "x"}]})),
    ("map_as_binary", lambda it: it.update(profile={"B": b"\x01\x02"})),
    ("map_as_bool", lambda it: it.update(profile={"BOOL": True})),
    ("map_as_string_set", lambda it: it.update(work={"SS": ["a"]})),
    ("inner_map_as_number", lambda it: _map(it, "profile").update(address={"N": "1"})),
    ("inner_map_as_list", lambda it: _map(it, "profile").update(address={"L": []})),
    ("list_as_map", lambda it: it.update(history={"M": {}})),
    ("list_as_string", lambda it: it.update(history={"S": "x"})),
    ("list_element_as_string", lambda it: it["history"]["L"].__setitem__(0, {"S": "x"})),
    ("list_element_as_list", lambda it: it["history"]["L"].__setitem__(1, {"L": []})),
    ("list_element_null", lambda it: it["history"]["L"].__setitem__(0, {"NULL": True})),
    ("source_as_string", lambda it: _map(it, "profile").update(ssn__source={"S": "123-45-6789"})),
    ("source_as_number", lambda it: _map(it, "profile").update(ssn__source={"N": "123"})),
    ("source_as_map", lambda it: _map(it, "profile").update(note__source={"M": {}})),
    ("source_as_binary_set", lambda it: _map(it, "profile", "address").update(street__source={"BS": [b"x"]})),
    ("source_as_empty_binary", lambda it: _map(it, "profile").update(ssn__source={"B": b""})),
    ("source_as_short_binary", lambda it: _map(it, "profile").update(note__source={"B": b"\x01"})),
    ("source_as_bool", lambda it: _map(it, "history", 0).update(street__source={"BOOL": False})),
    ("hmac_as_number", lambda it: _map(it, "profile").update(ssn__hmac={"N": "1"})),
    ("hmac_as_binary", lambda it: _map(it, "history", 1).update(street__hmac={"B": b"x"})),
    ("hmac_missing", lambda it: _map(it, "profile", "address").pop("street__hmac")),
]


@pytest.mark.parametrize("change", [c for _, c in WRONG_TYPES], ids=[n for n, _ in WRONG_TYPES])
def test_a_stored_nested_value_of_the_wrong_type_raises_decryption_error(
    User: Any, client: Any, change: Callable[[dict[str, Any]], None]
) -> None:
    pk = unique("wrong")
    full_user(User, pk).save()
    _tampered(User, client, pk, change)
    _unreadable(User, pk)
    with pytest.raises(DecryptionError):
        [u for u in User.scan(User.pk == pk, consistent_read=True)]

