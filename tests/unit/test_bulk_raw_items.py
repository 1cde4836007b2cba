"""The bulk raw-item functions against the single-item ones, without a server: each item's result is what
``encrypt_item``/``decrypt_item`` gives it (value, or error type, code and message), each error reaches the
error handler once, items of different tenants or classes in one call each get their own keys and fields,
and a bulk call is one audit operation (one ``decrypt`` event for all its items). The models are in
``tests/unit/rawitemtest.py``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Dict, List

import pytest
from pynamodb.attributes import UnicodeAttribute
from rawitemtest import KEYRING, OTHER_KEYRING, Account, Event, Patient, Record, Typed, Typed2, item_canon
from stashtest import av_to_doc

from pynamodb_stash import (
    AuditEvent,
    EncryptedAttribute,
    EncryptedModel,
    ItemResult,
    StashError,
    TenantKeyrings,
    audit,
    bulk_decrypt_items,
    bulk_encrypt_items,
    configure,
    decrypt_item,
    encrypt_item,
)

pytestmark = pytest.mark.usefixtures("offline")


def _plain_items() -> List[Any]:
    """Plaintext items of every kind a bulk call meets: good ones in both shapes, and ones each refused."""
    return [
        {"pk": {"S": "p1"}, "s": {"S": "one"}, "tag": {"S": "t1"}, "i": {"N": "7"}, "role": {"S": "r"}},
        {"pk": "p2", "s": "two", "d": Decimal("1.5"), "tags": {"a", "b"}, "extra": [1, "x"]},
        {"pk": {"S": "p3"}, "profile": {"M": {"ssn": {"S": "123"}, "address": {"M": {"street": {"S": "Elm"}}}}}},
        {"pk": {"S": "p4"}, "history": {"L": [{"M": {"street": {"S": "a"}}}, {"M": {"street": {"S": "b"}}}]}},
        {"pk": {"S": "p5"}, "i": {"S": "not a number"}},  # type_mismatch of a value
        {"pk": {"S": "p6"}, "s__source": {"B": b"forged"}},  # reserved_name
        {"s": {"S": "no key"}},  # no primary key
        "not a mapping",
        None,
        {"pk": {"S": "p7"}, "i": {"N": "1.5"}},  # a fraction for an int
        {"pk": "p8", "f": float("nan")},  # not storable
        {},
    ]


def _same_error(bulk: StashError, single: StashError) -> None:
    assert (type(bulk), bulk.code, str(bulk)) == (type(single), single.code, str(single))


def _one_by_one(
    function: Callable[..., Dict[str, Any]], model: Any, items: List[Any], **options: Any
) -> List[Any]:
    out: List[Any] = []
    for item in items:
        try:
            out.append(function(model, item, **options))
        except StashError as error:
            out.append(error)
    return out


def test_bulk_encrypt_gives_each_item_what_encrypt_item_gives_it() -> None:
    items = _plain_items()
    results = bulk_encrypt_items(Typed, items)
    singles = _one_by_one(encrypt_item, Typed, items)
    assert len(results) == len(items) and all(isinstance(r, ItemResult) for r in results)
    for result, single in zip(results, singles):
        if isinstance(single, StashError):
            assert result.error is not None and result.value is None
            _same_error(result.error, single)
            continue
        assert result.ok and result.value is not None
        assert list(result.value) == list(single)  # the same attributes, in the same order
        # Fresh nonces: the ciphertexts differ, the plaintexts and HMACs do not.
        assert decrypt_item(Typed, result.value) == decrypt_item(Typed, single)
        assert _without_ciphertexts(result.value) == _without_ciphertexts(single)


def _without_ciphertexts(item: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in item.items() if not k.endswith("__source") and k not in ("profile", "history")}


def test_bulk_decrypt_gives_each_item_what_decrypt_item_gives_it() -> None:
    good = [r.unwrap() for r in bulk_encrypt_items(Typed, _plain_items()[:4])]
    flipped = dict(good[0])
    blob = bytearray(flipped["s__source"]["B"])
    blob[-1] ^= 1
    flipped["s__source"] = {"B": bytes(blob)}
    items: List[Any] = [
        *good,
        flipped,  # decryption_failed
        {**good[0], "s": {"S": "planted"}},  # a plaintext beside its ciphertext: the ciphertext is what is read
        {k: v for k, v in good[0].items() if k != "pk"},  # missing_key_attributes
        {k: v for k, v in good[0].items() if k != "tag__hmac"},  # missing_hmac
        encrypt_item(Typed2, {"pk": {"S": "x"}, "s": {"S": "y"}}),  # key_not_found: another keyring's
        "not a mapping",
        {"pk": {"S": "p9"}, "s__source": {"S": "not binary"}},
        [],
        {},
    ]
    for shape in ("auto", "dynamodb", "document"):
        given = items if shape != "document" else [_as_document(item) for item in items]
        results = bulk_decrypt_items(Typed, given, shape=shape)  # type: ignore[arg-type]
        singles = _one_by_one(decrypt_item, Typed, given, shape=shape)
        assert len(results) == len(singles) == len(given)
        for result, single in zip(results, singles):
            if isinstance(single, StashError):
                assert result.error is not None and result.value is None
                _same_error(result.error, single)
            else:
                assert result.unwrap() == single
                assert list(result.unwrap()) == list(single)


def _as_document(item: Any) -> Any:
    if not isinstance(item, dict) or not all(isinstance(v, dict) and len(v) == 1 for v in item.values()):
        return item
    return {name: av_to_doc(value) for name, value in item.items()}


def test_bulk_reads_each_item_as_its_own_class_and_key_schema() -> None:
    plain: List[Any] = [
        {"pk": {"S": "r1"}, "kind": {"S": "patient"}, "owner": {"S": "o"}, "diagnosis": {"S": "flu"}},
        {"pk": {"S": "r2"}, "kind": {"S": "invoice"}, "owner": {"S": "o"}, "amount": {"N": "9.99"}},
        {"pk": {"S": "r3"}, "kind": {"S": "nobody"}, "owner": {"S": "o"}},  # an unknown class
    ]
    results = bulk_encrypt_items(Record, plain)
    assert [r.ok for r in results] == [True, True, False]
    assert "diagnosis__source" in results[0].unwrap() and "amount__source" in results[1].unwrap()
    decrypted = bulk_decrypt_items(Record, [r.unwrap() for r in results[:2]])
    assert [item_canon(r.unwrap()) for r in decrypted] == [item_canon(item) for item in plain[:2]]
    assert bulk_decrypt_items(Patient, [results[1].unwrap()])[0].error is not None  # an invoice is no patient
    for model, item in (
        (Account, {"email": {"S": "a@example.com"}, "name": {"S": "A"}}),
        (Event, {"group": {"S": "g"}, "seq": {"N": "3"}, "payload": {"S": "p"}}),
    ):
        stored = bulk_encrypt_items(model, [item, item])
        assert [item_canon(r.unwrap()) for r in bulk_decrypt_items(model, [s.unwrap() for s in stored])] \
            == [item_canon(item)] * 2


def test_items_of_different_tenants_in_one_call_get_their_own_keyrings() -> None:
    keyrings = {"acme": KEYRING, "initech": OTHER_KEYRING}

    class Tenanted(EncryptedModel):
        Meta = type("Meta", (), {"table_name": "raw_offline_tenanted",
                                 "keyring": TenantKeyrings(keyrings.__getitem__, attribute="tenant")})
        pk, tenant = UnicodeAttribute(hash_key=True), UnicodeAttribute()
        secret = EncryptedAttribute(str, equality=True)

    plain = [{"pk": {"S": f"t{n}"}, "tenant": {"S": name}, "secret": {"S": f"s{n}"}}
             for n, name in enumerate(["acme", "initech", "acme", "initech"])]
    stored = [r.unwrap() for r in bulk_encrypt_items(Tenanted, plain)]
    key_ids = [item["secret__source"]["B"][2:2 + item["secret__source"]["B"][1]].decode() for item in stored]
    assert key_ids == [KEYRING.primary_key_id, OTHER_KEYRING.primary_key_id] * 2
    assert [r.unwrap() for r in bulk_decrypt_items(Tenanted, stored)] == plain
    moved = {**stored[1], "tenant": {"S": "acme"}}  # another tenant's item: not authentic under acme's keys
    assert bulk_decrypt_items(Tenanted, [stored[0], moved])[1].error is not None


def test_each_items_error_reaches_the_error_handler_once() -> None:
    reported: List[BaseException] = []
    configure(error_handler=reported.append)
    try:
        results = bulk_encrypt_items(Typed, _plain_items())
        failed = [r.error for r in results if r.error is not None]
        assert failed and [id(e) for e in reported] == [id(e) for e in failed]
        reported.clear()
        tampered = {**results[0].unwrap(), "pk": {"S": "moved"}}
        decrypted = bulk_decrypt_items(Typed, [results[0].unwrap(), tampered, "x", tampered])
        failed = [r.error for r in decrypted if r.error is not None]
        assert len(failed) == 3 and [id(e) for e in reported] == [id(e) for e in failed]
    finally:
        configure(error_handler=None)


def test_a_bulk_decrypt_is_one_audit_operation() -> None:
    stored = [r.unwrap() for r in bulk_encrypt_items(Typed, _plain_items()[:4])]
    events: List[AuditEvent] = []
    configure(audit_sink=events.append)
    try:
        _one_event_per_call(stored, events)
    finally:
        configure(audit_sink=None)


def _one_event_per_call(stored: List[Dict[str, Any]], events: List[AuditEvent]) -> None:
    with audit(sub="job-7"):
        results = bulk_decrypt_items(Typed, stored * 25)
    assert all(r.ok for r in results)
    [event] = events
    assert (event.operation, event.items, event.outcome) == ("decrypt", 100, "ok")
    assert event.model == "Typed" and event.metadata == {"sub": "job-7"}
    assert set(event.attributes) >= {"s", "tag", "profile", "history"}
    assert event.key_ids == (KEYRING.primary_key_id,)

    events.clear()
    tampered = {**stored[0], "pk": {"S": "moved"}}
    results = bulk_decrypt_items(Typed, [stored[0], tampered, stored[1]])
    assert [r.ok for r in results] == [True, False, True]
    [event] = events
    assert (event.operation, event.items, event.outcome) == ("decrypt", 3, "decryption_failed")

    events.clear()
    decrypt_item(Typed, stored[0])  # a single call stays an operation of its own
    decrypt_item(Typed, stored[1])
    assert [(e.operation, e.items) for e in events] == [("decrypt", 1), ("decrypt", 1)]
