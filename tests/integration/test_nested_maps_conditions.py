"""Conditions and filters on fields of ``EncryptedMapAttribute`` (on DynamoDB Local): equality on HMACs at
any depth, ``exists()``, conditions guarding writes, and the operators refused when the expression is
built. Shared declarations: ``tests/nestedtest.py``.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from nestedtest import SSN, STREET, Address, Profile, define_event, define_user, full_user, model_fixture
from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.expressions.operand import Path
from stashtest import unique

from pynamodb_stash import UnsupportedQueryError

# -- fixtures: a table per model for the module (``keyring``, ``client``, ``connection`` from conftest.py)

User = model_fixture(define_user, "nested_users")
Event = model_fixture(define_event, "nested_events")


# -- conditions and filters -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def events(Event: Any) -> str:
    """Four events in one group: ssn/street values chosen per test below; seq 3 has no profile."""
    group = unique("grp")
    Event(
        group=group,
        seq=0,
        profile=Profile(ssn="A", address=Address(street="S0", city="X"), note="n"),
        history=[Address(street="H0", city="X")],
    ).save()
    Event(
        group=group,
        seq=1,
        profile=Profile(ssn="B", address=Address(street="S1", city="Y")),
        history=[Address(street="H1", city="Y"), Address(street="H0", city="Y")],
    ).save()
    Event(group=group, seq=2, profile=Profile(ssn="A")).save()
    Event(group=group, seq=3).save()
    return group


def _seqs(Event: Any, group: str, condition: Any) -> list[int]:
    return sorted(int(e.seq) for e in Event.query(group, filter_condition=condition, consistent_read=True))


FILTERS: list[tuple[str, Callable[[Any], Any], list[int]]] = [
    ("eq", lambda E: E.profile.ssn == "A", [0, 2]),
    ("eq_deep", lambda E: E.profile.address.street == "S1", [1]),
    ("eq_none_match", lambda E: E.profile.ssn == "nobody", []),
    ("ne", lambda E: E.profile.ssn != "A", [1, 3]),
    ("ne_deep", lambda E: E.profile.address.street != "S1", [0, 2, 3]),
    ("is_in", lambda E: E.profile.ssn.is_in("B", "nobody"), [1]),
    ("is_in_deep", lambda E: E.profile.address.street.is_in("S0", "S1"), [0, 1]),
    ("exists", lambda E: E.profile.ssn.exists(), [0, 1, 2]),
    ("exists_deep", lambda E: E.profile.address.street.exists(), [0, 1]),
    ("exists_no_equality", lambda E: E.profile.note.exists(), [0]),
    ("does_not_exist", lambda E: E.profile.note.does_not_exist(), [1, 2, 3]),
    ("does_not_exist_deep", lambda E: E.profile.address.street.does_not_exist(), [2, 3]),
    ("plain_field_in_encrypted_map", lambda E: E.profile.address.city == "Y", [1]),
    ("combined", lambda E: (E.profile.ssn == "A") & E.profile.address.exists(), [0]),
    ("negated", lambda E: ~(E.profile.ssn == "A"), [1, 3]),
]


@pytest.mark.parametrize("build,expected", [(b, e) for _, b, e in FILTERS], ids=[n for n, _, _ in FILTERS])
def test_filters_on_nested_fields(
    Event: Any, events: str, build: Callable[[Any], Any], expected: list[int]
) -> None:
    assert _seqs(Event, events, build(Event)) == expected


def test_scan_filter_on_nested_field(Event: Any, events: str) -> None:
    found = [
        (e.group, int(e.seq)) for e in Event.scan(Event.profile.address.street == "S0", consistent_read=True)
    ]
    assert found == [(events, 0)]
    assert Event.count(events, filter_condition=Event.profile.ssn.is_in("A", "B")) == 3


def test_nested_condition_values_are_hashed_on_the_wire(Event: Any) -> None:
    condition = Event.profile.address.street == "S0"
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    expression = condition.serialize(names, values)
    assert sorted(names) == ["address", "profile", "street__hmac"]
    assert list(values.values()) == [{"S": Event.profile.address.street.hmac("S0")}]
    assert "S0" not in repr(values) and "S0" not in expression


def test_filter_on_a_field_of_a_list_element_works_or_is_refused_when_built(Event: Any, events: str) -> None:
    """``history[1].street == v``: either DynamoDB filters on ``history[1].street__hmac``, or it is refused
    with UnsupportedQueryError when the expression is built (never another error, never a wrong answer)."""
    try:
        condition = Event.history[1].street == "H0"
    except UnsupportedQueryError:
        return
    assert _seqs(Event, events, condition) == [1]


def test_conditions_on_nested_fields_guard_writes(User: Any, client: Any) -> None:
    pk = unique("cond")
    user = full_user(User, pk)
    user.save()
    with pytest.raises(PutError):
        user.save(condition=User.profile.ssn == "someone else")
    with pytest.raises(UpdateError):
        user.update(actions=[User.profile.age.set(1)], condition=User.profile.address.street != STREET)
    user.update(actions=[User.profile.age.set(2)], condition=User.profile.address.street == STREET)
    assert User.get(pk, consistent_read=True).profile.age == 2
    with pytest.raises(DeleteError):
        user.delete(condition=User.profile.note.does_not_exist())
    user.delete(condition=User.profile.ssn.is_in(SSN) & User.profile.note.exists())
    assert client.get_item(TableName=User.Meta.table_name, Key={"pk": {"S": pk}}).get("Item") is None


UNSUPPORTED: list[tuple[str, Callable[[Any], Any]]] = [
    ("lt", lambda U: U.profile.ssn < "x"),
    ("le", lambda U: U.profile.address.street <= "x"),
    ("gt", lambda U: U.profile.ssn > "x"),
    ("ge", lambda U: U.work.street >= "x"),
    ("between", lambda U: U.profile.ssn.between("a", "z")),
    ("startswith", lambda U: U.profile.address.street.startswith("1 ")),
    ("contains", lambda U: U.profile.ssn.contains("123")),
    ("is_type", lambda U: U.profile.ssn.is_type()),
    ("size", lambda U: size(U.profile.address.street)),
    ("index", lambda U: U.profile.ssn[0]),
    ("if_not_exists", lambda U: U.profile.ssn | "x"),
    ("plus", lambda U: U.profile.note + "x"),
    ("add", lambda U: U.profile.ssn.add("x")),
    ("delete", lambda U: U.profile.ssn.delete("x")),
    ("append", lambda U: U.profile.note.append(["x"])),
    ("prepend", lambda U: U.profile.note.prepend(["x"])),
    ("eq_without_equality", lambda U: U.profile.note == "x"),
    ("ne_without_equality", lambda U: U.profile.note != "x"),
    ("is_in_without_equality", lambda U: U.profile.note.is_in("x")),
    ("hmac_without_equality", lambda U: U.profile.note.hmac("x")),
    ("set_from_attribute", lambda U: U.profile.ssn.set(U.profile.note)),
    ("set_from_path", lambda U: U.profile.ssn.set(Path("pk"))),
    ("path_eq", lambda U: Path(U.profile.ssn) == "x"),
    ("path_set", lambda U: Path(U.profile.address.street).set("x")),
    ("nested_hmac_lt", lambda U: U.profile.ssn__hmac < "x"),
    ("nested_hmac_set", lambda U: U.profile.address.street__hmac.set("x")),
    ("whole_map_eq", lambda U: U.profile == Profile(ssn="x")),
    ("whole_map_is_in", lambda U: U.work.is_in(Address(street="x", city="y"))),
    ("list_set", lambda U: U.history.set([Address(street="x", city="y")])),
    ("list_append", lambda U: U.history.append([Address(street="x", city="y")])),
    ("list_prepend", lambda U: U.history.prepend([Address(street="x", city="y")])),
]


@pytest.mark.parametrize("build", [b for _, b in UNSUPPORTED], ids=[n for n, _ in UNSUPPORTED])
def test_unsupported_operations_on_nested_encrypted_fields_raise_when_built(
    User: Any, build: Callable[[Any], Any]
) -> None:
    with pytest.raises(UnsupportedQueryError) as info:
        build(User)
    assert info.value.code == "unsupported_query"

