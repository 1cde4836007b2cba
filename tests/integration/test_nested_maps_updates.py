"""Updates of ``EncryptedMapAttribute`` fields, whole maps and lists of maps (on DynamoDB Local): each
``set()``/``remove()`` keeps ``__source`` and ``__hmac`` in step, plain fields update as usual, and raw
paths to stored names or list elements are refused. Shared declarations: ``tests/nestedtest.py``.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from nestedtest import NOTE, SSN, STREET, Address, Profile, define_user, full_user, model_fixture, raw_user
from pynamodb.expressions.operand import Path
from stashtest import assert_no_plaintext, assert_sealed, unique

from pynamodb_stash import UnsupportedQueryError

# -- fixtures: a table per model for the module (``keyring``, ``client``, ``connection`` from conftest.py)

User = model_fixture(define_user, "nested_users")


# -- updates --------------------------------------------------------------------------------------------


def _by_ssn(User: Any, pk: str, value: str) -> bool:
    return any(u.pk == pk for u in User.scan(User.profile.ssn == value, consistent_read=True))


def _by_street(User: Any, pk: str, value: str) -> bool:
    return any(u.pk == pk for u in User.scan(User.profile.address.street == value, consistent_read=True))


def test_nested_field_set_keeps_the_hmac_in_sync(User: Any, client: Any) -> None:
    pk = unique("upd")
    user = full_user(User, pk)
    user.save()
    user.update(
        actions=[User.profile.ssn.set("555-55-5555"), User.profile.address.street.set("2 Elm Street")]
    )
    assert (user.profile.ssn, user.profile.address.street) == ("555-55-5555", "2 Elm Street")

    raw = raw_user(client, User, pk)
    assert_sealed(raw["profile"]["M"], "ssn", hmac=User.profile.ssn.hmac("555-55-5555"))
    assert_sealed(
        raw["profile"]["M"]["address"]["M"], "street", hmac=User.profile.address.street.hmac("2 Elm Street")
    )
    assert raw["profile"]["M"]["address"]["M"]["city"] == {"S": "Springfield"}
    assert_no_plaintext(raw, "555-55-5555", "2 Elm Street")
    got = User.get(pk, consistent_read=True)
    assert (got.profile.ssn, got.profile.address.street, got.profile.note) == (
        "555-55-5555",
        "2 Elm Street",
        NOTE,
    )
    assert _by_ssn(User, pk, "555-55-5555") and not _by_ssn(User, pk, SSN)
    assert _by_street(User, pk, "2 Elm Street") and not _by_street(User, pk, STREET)


def test_nested_field_without_equality_set(User: Any, client: Any) -> None:
    pk = unique("note")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    user.update(actions=[User.profile.note.set("new note text")])
    raw = raw_user(client, User, pk)
    assert_sealed(raw["profile"]["M"], "note")
    assert_no_plaintext(raw, "new note text")
    assert User.get(pk, consistent_read=True).profile.note == "new note text"


@pytest.mark.parametrize("how", ["remove", "set_none"])
def test_nested_field_remove_removes_source_and_hmac(User: Any, client: Any, how: str) -> None:
    pk = unique("rm")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    fields = (User.profile.ssn, User.profile.address.street, User.profile.note)
    user.update(actions=[f.remove() if how == "remove" else f.set(None) for f in fields])
    raw = raw_user(client, User, pk)
    assert set(raw["profile"]["M"]) == {"address", "age"}
    assert raw["profile"]["M"]["address"]["M"] == {"city": {"S": "Springfield"}}
    got = User.get(pk, consistent_read=True)
    assert got.profile.ssn is None and got.profile.address.street is None and got.profile.note is None
    assert got.profile.age == 40 and [h.street for h in got.history] == [
        f"{STREET} (old)",
        f"{STREET} (older)",
    ]
    assert not _by_ssn(User, pk, SSN)


def test_whole_map_set_replaces_every_source_and_hmac(User: Any, client: Any) -> None:
    pk = unique("whole")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    user.update(
        actions=[User.profile.set(Profile(ssn="777-77-7777", address=Address(street="9 Oak Road", city="Z")))]
    )
    assert user.profile.ssn == "777-77-7777" and user.profile.note is None and user.profile.age is None

    raw = raw_user(client, User, pk)
    profile = raw["profile"]["M"]
    assert set(profile) == {"ssn__source", "ssn__hmac", "address"}
    assert_sealed(profile, "ssn", hmac=User.profile.ssn.hmac("777-77-7777"))
    assert_sealed(profile["address"]["M"], "street", hmac=User.profile.address.street.hmac("9 Oak Road"))
    assert_no_plaintext(raw, "777-77-7777", "9 Oak Road")
    got = User.get(pk, consistent_read=True)
    assert (got.profile.ssn, got.profile.address.street, got.profile.address.city) == (
        "777-77-7777",
        "9 Oak Road",
        "Z",
    )
    assert (
        _by_street(User, pk, "9 Oak Road") and not _by_street(User, pk, STREET) and not _by_ssn(User, pk, SSN)
    )


def test_inner_map_set_replaces_it_in_place(User: Any, client: Any) -> None:
    pk = unique("inner")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    user.update(
        actions=[User.profile.address.set(Address(street="3 Pine Lane", city="P")), User.work.set(None)]
    )
    raw = raw_user(client, User, pk)
    assert "work" not in raw
    assert_sealed(
        raw["profile"]["M"]["address"]["M"], "street", hmac=User.profile.address.street.hmac("3 Pine Lane")
    )
    assert_sealed(raw["profile"]["M"], "ssn", hmac=User.profile.ssn.hmac(SSN))
    got = User.get(pk, consistent_read=True)
    assert (got.profile.ssn, got.profile.address.street, got.work) == (SSN, "3 Pine Lane", None)
    assert _by_street(User, pk, "3 Pine Lane")


@pytest.mark.parametrize("how", ["remove", "set_none"])
def test_whole_map_remove(User: Any, client: Any, how: str) -> None:
    pk = unique("rmmap")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    user.update(
        actions=[User.profile.remove() if how == "remove" else User.profile.set(None), User.history.remove()]
    )
    raw = raw_user(client, User, pk)
    assert set(raw) == {"pk", "work"}
    got = User.get(pk, consistent_read=True)
    assert got.profile is None and got.history is None and got.work.street == f"{STREET} (work)"


def test_plain_fields_of_an_encrypted_map_update_as_usual(User: Any, client: Any) -> None:
    pk = unique("plainupd")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    user.update(actions=[User.profile.age.add(1), User.profile.address.city.set("Elsewhere")])
    raw = raw_user(client, User, pk)
    assert raw["profile"]["M"]["age"] == {"N": "41"}
    assert raw["profile"]["M"]["address"]["M"]["city"] == {"S": "Elsewhere"}
    got = User.get(pk, consistent_read=True)
    assert (got.profile.age, got.profile.address.city, got.profile.address.street) == (
        41,
        "Elsewhere",
        STREET,
    )


RAW_NESTED_NAMES: list[tuple[str, Callable[[], Any]]] = [
    ("set_source", lambda: Path(["profile", "ssn__source"]).set("123-45-6789")),
    ("set_deep_source", lambda: Path(["profile", "address", "street__source"]).set(b"\x01forged")),
    ("set_hmac", lambda: Path("profile.ssn__hmac").set("forged-digest")),
    ("remove_hmac", lambda: Path(["profile", "address", "street__hmac"]).remove()),
    ("remove_source", lambda: Path(["profile", "note__source"]).remove()),
    ("list_element_source", lambda: Path(["history[0]", "street__source"]).set("plain")),
]


@pytest.mark.parametrize("build", [b for _, b in RAW_NESTED_NAMES], ids=[n for n, _ in RAW_NESTED_NAMES])
def test_update_on_a_raw_nested_stored_name_raises(User: Any, client: Any, build: Callable[[], Any]) -> None:
    """As for top-level ``x__source``/``x__hmac``: a raw path to a nested stored name would write plaintext
    or leave the item unreadable, so ``update()`` refuses it and writes nothing."""
    pk = unique("rawname")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    before = raw_user(client, User, pk)
    with pytest.raises(UnsupportedQueryError):
        user.update(actions=[User.profile.age.set(99), build()])
    assert raw_user(client, User, pk) == before
    assert User.get(pk, consistent_read=True).profile.ssn == SSN


@pytest.mark.parametrize(
    "build",
    [
        lambda U: U.history[0].street.set("new street"),
        lambda U: U.history[0].set(Address(street="new street", city="c")),
    ],
    ids=["field", "element"],
)
def test_update_of_a_list_element_is_refused_or_correct(
    User: Any, client: Any, build: Callable[[Any], Any]
) -> None:
    """Either refused with UnsupportedQueryError (nothing written), or the element is sealed for its position."""
    pk = unique("elem")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    before = raw_user(client, User, pk)
    try:
        user.update(actions=[build(User)])
    except UnsupportedQueryError:
        assert raw_user(client, User, pk) == before
        return
    got = User.get(pk, consistent_read=True)
    assert [h.street for h in got.history] == ["new street", f"{STREET} (older)"]
    assert_no_plaintext(raw_user(client, User, pk), "new street")


@pytest.mark.parametrize(
    "build",
    [
        lambda U: U.history[0].remove(),
        lambda U: Path("history[0]").remove(),
        lambda U: Path(["history[0]"]).remove(),
    ],
    ids=["attribute", "path-string", "path-list"],
)
def test_remove_of_a_list_element_is_refused_or_leaves_a_readable_item(
    User: Any, client: Any, build: Callable[[Any], Any]
) -> None:
    """DynamoDB shifts the later elements down, and their ciphertexts are bound to their positions: removing
    an element other than the last must be refused (nothing written) rather than make the item unreadable."""
    pk = unique("rmelem")
    full_user(User, pk).save()
    user = User.get(pk, consistent_read=True)
    before = raw_user(client, User, pk)
    try:
        user.update(actions=[build(User)])
    except UnsupportedQueryError:
        assert raw_user(client, User, pk) == before
        return
    assert [h.street for h in User.get(pk, consistent_read=True).history] == [f"{STREET} (older)"]

