"""The raw-item API without a server, on bad input: tampered, truncated or malformed stored items, plaintext
items the model's rules refuse, and the bulk functions, which give each item its own result.

Every refusal must be a ``StashError`` whose message, args and printed traceback hold no plaintext,
ciphertext or HMAC. The models are in ``tests/unit/rawitemtest.py``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

import pytest
from rawitemtest import MARKER, Typed, Typed2, assert_clean
from stashtest import av_to_doc

from pynamodb_stash import (
    DecryptionError,
    EncryptionError,
    ItemResult,
    KeyNotFoundError,
    StashError,
    bulk_decrypt_items,
    bulk_encrypt_items,
    decrypt_item,
    encrypt_item,
)

pytestmark = pytest.mark.usefixtures("offline")


# -- bad input ------------------------------------------------------------------------------------------


def _good() -> dict[str, Any]:
    return encrypt_item(Typed, {"pk": {"S": "p1"}, "s": {"S": MARKER}, "tag": {"S": MARKER + "t"}})


def _truncate(n: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(item: dict[str, Any]) -> dict[str, Any]:
        blob = item["s__source"]["B"]
        return {**item, "s__source": {"B": blob[:n]}}

    return mutate


def _flip(item: dict[str, Any]) -> dict[str, Any]:
    blob = bytearray(item["s__source"]["B"])
    blob[len(blob) // 2] ^= 0x40
    return {**item, "s__source": {"B": bytes(blob)}}


DECRYPT_MUTATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "S-where-B": lambda item: {**item, "s__source": {"S": MARKER}},
    "N-where-B": lambda item: {**item, "s__source": {"N": "1"}},
    "M-where-B": lambda item: {**item, "s__source": {"M": {"x": {"S": MARKER}}}},
    "BOOL-where-B": lambda item: {**item, "s__source": {"BOOL": True}},
    "truncated-0": _truncate(0),
    "truncated-1": _truncate(1),
    "truncated-2": _truncate(2),
    "truncated-header": _truncate(4),
    "truncated-header+nonce": _truncate(16),
    "truncated-last-byte": _truncate(-1),
    "bit-flip": _flip,
    "version-byte": lambda item: {**item, "s__source": {"B": b"\x07" + item["s__source"]["B"][1:]}},
    "bad-base64": lambda item: {**item, "s__source": {"B": MARKER + "!!"}},
    "missing-pk": lambda item: {k: v for k, v in item.items() if k != "pk"},
    "pk-of-another-item": lambda item: {**item, "pk": {"S": "p2"}},
    "pk-wrong-type": lambda item: {**item, "pk": {"N": "1"}},
    "missing-hmac": lambda item: {k: v for k, v in item.items() if k != "tag__hmac"},
    "hmac-of-another-value": lambda item: {**item, "tag__hmac": {"S": Typed.tag.hmac("other")}},
    "hmac-wrong-type": lambda item: {**item, "tag__hmac": {"B": b"\x00"}},
    "source-moved-to-other-field": lambda item: {**item, "b__source": item["s__source"]},
    "map-where-encrypted-map": lambda item: {**item, "profile": {"S": MARKER}},
    "list-where-list-of-maps": lambda item: {**item, "history": {"M": {}}},
}


@pytest.mark.parametrize("mutation", list(DECRYPT_MUTATIONS), ids=list(DECRYPT_MUTATIONS))
def test_bad_stored_items_raise_a_clear_decryption_error(mutation: str) -> None:
    good = _good()
    bad = DECRYPT_MUTATIONS[mutation](good)
    with pytest.raises(DecryptionError) as info:
        decrypt_item(Typed, bad)
    assert isinstance(info.value, StashError) and info.value.code
    assert_clean(info.value, good["s__source"]["B"], good["tag__hmac"]["S"], Typed.tag.hmac("other"))
    with pytest.raises(DecryptionError) as info:
        Typed.from_stream_image(bad)
    assert_clean(info.value, good["s__source"]["B"], good["tag__hmac"]["S"])


# Malformed DynamoDB JSON that reaches deeper code: each must still be a StashError, not a crash.
MALFORMED = {
    "map-member-not-an-attribute-value": {"pk": {"S": "p1"}, "m": {"M": {"x": MARKER}}},
    "list-member-not-an-attribute-value": {"pk": {"S": "p1"}, "l": {"L": [MARKER]}},
    "key-S-holding-a-number": {"pk": {"S": 12345}, "s__source": {"B": b"\x01\x02k1" + bytes(40)}},
    "key-S-holding-none": {"pk": {"S": None}},
}


@pytest.mark.parametrize("name", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_dynamodb_json_raises_a_stash_error_not_a_crash(name: str) -> None:
    item = MALFORMED[name]
    with pytest.raises(DecryptionError) as info:
        decrypt_item(Typed, item)
    assert_clean(info.value)
    with pytest.raises(EncryptionError) as enc_info:
        encrypt_item(Typed, {**item, "s": {"S": MARKER}})
    assert_clean(enc_info.value)


def test_a_ciphertext_of_another_keyring_raises_key_not_found() -> None:
    stored = encrypt_item(Typed2, {"pk": {"S": "p1"}, "s": {"S": MARKER}})
    with pytest.raises(KeyNotFoundError) as info:
        decrypt_item(Typed, stored)
    assert info.value.code == "key_not_found" and "k-other" in str(info.value)
    assert_clean(info.value, stored["s__source"]["B"])


ENCRYPT_BAD = {
    "str-where-int": {"pk": {"S": "p1"}, "i": {"S": MARKER}},
    "fraction-where-int": {"pk": {"S": "p1"}, "i": {"N": "1.5"}},
    "bad-number": {"pk": {"S": "p1"}, "f": {"N": MARKER}},
    "naive-datetime": {"pk": {"S": "p1"}, "dt": {"S": "2024-01-01T00:00:00"}},
    "bad-datetime": {"pk": {"S": "p1"}, "dt": {"S": MARKER}},
    "bad-date": {"pk": {"S": "p1"}, "day": {"S": MARKER}},
    "datetime-where-date": {"pk": {"S": "p1"}, "day": {"S": "2024-01-01T00:00:00+00:00"}},
    "set-in-dict": {"pk": {"S": "p1"}, "obj": {"M": {"x": {"SS": [MARKER]}}}},
    "number-set-where-str-set": {"pk": {"S": "p1"}, "tags": {"NS": ["1"]}},
    "bad-utc": {"pk": {"S": "p1"}, "utc": {"S": MARKER}},
    "bad-json-codec": {"pk": {"S": "p1"}, "js": {"S": MARKER + "{"}},
    "bytes-where-str": {"pk": {"S": "p1"}, "s": {"B": MARKER.encode()}},
    "missing-pk": {"s": {"S": MARKER}},
    "pk-wrong-type": {"pk": {"N": "1"}, "s": {"S": MARKER}},
    "map-not-a-map": {"pk": {"S": "p1"}, "profile": {"S": MARKER}},
    "list-of-maps-not-a-list": {"pk": {"S": "p1"}, "history": {"S": MARKER}},
    "map-missing-required-field": {"pk": {"S": "p1"}, "profile": {"M": {"note": {"S": MARKER}}}},
    "nan-document": {"pk": "p1", "f": float("nan"), "role": MARKER},
    "bad-base64-binary": {"pk": {"S": "p1"}, "b": {"B": MARKER + "!"}},
    "object-document": {"pk": "p1", "s": object()},
}


@pytest.mark.parametrize("name", list(ENCRYPT_BAD), ids=list(ENCRYPT_BAD))
def test_bad_plaintext_items_raise_a_clear_encryption_error(name: str) -> None:
    with pytest.raises(EncryptionError) as info:
        encrypt_item(Typed, ENCRYPT_BAD[name])
    assert info.value.code == "encryption_failed"
    assert_clean(info.value)


@pytest.mark.parametrize("item", [None, ["pk", "p1"], "pk", 42, b"pk", ("pk", "p1")], ids=repr)
def test_non_mapping_items_are_refused(item: Any) -> None:
    with pytest.raises(EncryptionError):
        encrypt_item(Typed, item)
    with pytest.raises(DecryptionError):
        decrypt_item(Typed, item)


def test_encrypt_item_without_its_primary_key_is_refused_even_with_nothing_to_encrypt() -> None:
    """The docstring: ``EncryptionError`` if the item ``lacks its primary key``."""
    with pytest.raises(EncryptionError):
        encrypt_item(Typed, {"role": {"S": "admin"}})
    with pytest.raises(EncryptionError):
        encrypt_item(Typed, {"role": "admin"})


def test_an_encrypted_attribute_named_by_its_python_name_is_refused_not_passed_through() -> None:
    from pynamodb.attributes import UnicodeAttribute

    from pynamodb_stash import EncryptedAttribute, EncryptedModel, EncryptionError, Keyring

    class Renamed(EncryptedModel):
        class Meta:
            table_name = "renamed"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True, attr_name="mail")

    with pytest.raises(EncryptionError) as raised:
        encrypt_item(Renamed, {"pk": "1", "email": "alice@example.com"})
    assert "alice" not in str(raised.value)
    assert "mail__source" in encrypt_item(Renamed, {"pk": "1", "mail": "alice@example.com"})


@pytest.mark.parametrize("name", ["tag__hmac", "s__source", "undeclared__hmac", "other__source"])
@pytest.mark.parametrize("shape", ["dynamodb", "document"])
def test_encrypt_item_refuses_reserved_names_in_plaintext_input(name: str, shape: str) -> None:
    """An HMAC given in a plaintext item would be stored as given, and answer lookups for another value."""
    forged = Typed(pk="x", tag="someone-else").serialize()["tag__hmac"]
    item: dict[str, Any] = {"pk": {"S": "p1"}, "tag": {"S": "mine"}, name: forged}
    if shape == "document":
        item = {key: av_to_doc(value) for key, value in item.items()}
    with pytest.raises(EncryptionError) as raised:
        encrypt_item(Typed, item, shape=shape)  # type: ignore[arg-type]
    assert raised.value.code == "reserved_name" and name in str(raised.value)
    assert forged["S"] not in str(raised.value)


def test_decrypt_item_applies_the_plaintext_policy() -> None:
    """A plaintext ``s`` written where ``s__source`` was: refused under "forbid", never passed through."""
    stored = encrypt_item(Typed, {"pk": {"S": "p1"}, "s": {"S": "real"}, "tag": {"S": "t"}})
    del stored["s__source"]
    stored["s"] = {"S": MARKER}
    for read in (lambda: decrypt_item(Typed, stored), lambda: bulk_decrypt_items(Typed, [stored])[0].unwrap()):
        with pytest.raises(DecryptionError) as raised:
            read()
        assert raised.value.code == "plaintext_found"
        assert_clean(raised.value, MARKER)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("d", 1.5, "expected Decimal, got float"),  # the model refuses a float for a Decimal: so does this
        ("i", True, "expected int, got bool"),
        ("s", 7, "expected str, got int"),
    ],
)
def test_encrypt_item_applies_the_models_type_rules_to_document_values(name: str, value: Any, expected: str) -> None:
    with pytest.raises(EncryptionError) as raised:
        encrypt_item(Typed, {"pk": "p1", name: value}, shape="document")
    assert expected in str(raised.value) and f"Typed.{name}" in str(raised.value)
    with pytest.raises(EncryptionError) as raised_by_model:
        Typed(pk="p1", **{name: value}).serialize()
    assert expected in str(raised_by_model.value)


@pytest.mark.parametrize("shape", ["dynamodb", "document"])
def test_encrypt_item_says_a_fractional_number_is_not_an_int(shape: str) -> None:
    """Numbers arrive as N or Decimal: one with a fraction for an int attribute says so (not "got Decimal")."""
    item = {"pk": {"S": "p1"}, "i": {"N": "1.5"}} if shape == "dynamodb" else {"pk": "p1", "i": Decimal("1.5")}
    with pytest.raises(EncryptionError) as raised:
        encrypt_item(Typed, item, shape=shape)  # type: ignore[arg-type]
    assert "Typed.i" in str(raised.value) and "fractional" in str(raised.value) and "1.5" not in str(raised.value)




# -- bulk -----------------------------------------------------------------------------------------------


def test_bulk_encrypt_one_result_per_item_in_order() -> None:
    items = [
        {"pk": {"S": "a"}, "s": {"S": "A"}},
        {"pk": {"S": "b"}, "i": {"S": MARKER}},
        "not a mapping",
        {"pk": "c", "s": "C"},
        {"s": {"S": MARKER}},
        {"pk": {"S": "d"}, "s": {"S": "D"}},
    ]
    results = bulk_encrypt_items(Typed, (item for item in items))  # any iterable
    assert len(results) == len(items)
    assert all(isinstance(r, ItemResult) for r in results)
    assert [r.ok for r in results] == [True, False, False, True, False, True]
    assert [type(r.error) for r in results] == [type(None), EncryptionError, EncryptionError, type(None),
                                                EncryptionError, type(None)]
    for result in results:
        assert (result.value is None) != (result.error is None)
        if result.error is not None:
            assert_clean(result.error)
    assert decrypt_item(Typed, results[0].unwrap()) == items[0]
    assert decrypt_item(Typed, results[3].unwrap()) == items[3]
    assert decrypt_item(Typed, results[5].unwrap())["pk"] == {"S": "d"}


def test_bulk_decrypt_mixed_good_and_bad_items() -> None:
    good = [encrypt_item(Typed, {"pk": {"S": f"p{n}"}, "s": {"S": f"secret {n}"}, "tag": {"S": f"t{n}"}})
            for n in range(4)]
    tampered = _flip(good[1])
    truncated = _truncate(10)(good[2])
    wrong_type = {**good[3], "s__source": {"S": MARKER}}
    missing_key = {k: v for k, v in good[0].items() if k != "pk"}
    foreign = encrypt_item(Typed2, {"pk": {"S": "x"}, "s": {"S": MARKER}})
    items: list[Any] = [good[0], tampered, good[1], truncated, "not a mapping", good[2], wrong_type, missing_key,
                        foreign, good[3], None, []]
    results = bulk_decrypt_items(Typed, items)
    assert len(results) == len(items)
    assert [r.ok for r in results] == [True, False, True, False, False, True, False, False, False, True, False, False]
    expected = {0: 0, 2: 1, 5: 2, 9: 3}
    for position, n in expected.items():
        assert results[position].value == {"pk": {"S": f"p{n}"}, "s": {"S": f"secret {n}"}, "tag": {"S": f"t{n}"}}
        assert results[position].unwrap() is results[position].value
    errors = [r.error for r in results if not r.ok]
    assert len({id(e) for e in errors}) == len(errors), "each bad item has its own error"
    assert [type(results[i].error) for i in (1, 3, 4, 6, 7, 8, 10, 11)] == [
        DecryptionError, DecryptionError, DecryptionError, DecryptionError, DecryptionError, KeyNotFoundError,
        DecryptionError, DecryptionError,
    ]
    assert results[1].error is not None and results[1].error.code == "decryption_failed"
    for index in (1, 3, 4, 6, 7, 8, 10, 11):
        result = results[index]
        with pytest.raises(StashError) as info:
            result.unwrap()
        assert info.value is result.error
        assert_clean(info.value, good[1]["s__source"]["B"], good[2]["s__source"]["B"], foreign["s__source"]["B"])


def test_bulk_of_nothing_is_nothing() -> None:
    assert bulk_encrypt_items(Typed, []) == [] and bulk_decrypt_items(Typed, iter(())) == []


def test_bulk_survives_malformed_items() -> None:
    """One malformed item must not lose the others: every item gets its own result."""
    good = encrypt_item(Typed, {"pk": {"S": "p1"}, "s": {"S": "fine"}})
    items = [good, *MALFORMED.values(), good]
    results = bulk_decrypt_items(Typed, items)
    assert [r.ok for r in results] == [True] + [False] * len(MALFORMED) + [True]
    assert all(isinstance(r.error, DecryptionError) for r in results[1:-1])
    plain_results = bulk_encrypt_items(Typed, [{"pk": {"S": "p1"}, "s": {"S": "x"}}, *MALFORMED.values()])
    assert [r.ok for r in plain_results] == [True] + [False] * len(MALFORMED)


def test_item_result_unwrap() -> None:
    ok = ItemResult(value={"pk": {"S": "a"}})
    assert ok.ok and ok.unwrap() == {"pk": {"S": "a"}}
    error = DecryptionError("x")
    failed: ItemResult[dict[str, Any]] = ItemResult(error=error)
    assert not failed.ok
    with pytest.raises(DecryptionError) as info:
        failed.unwrap()
    assert info.value is error
