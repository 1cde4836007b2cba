"""The deliberate deviations of ``EncryptedModel`` from PynamoDB's ``Model``: the one list the conformance
suite consults. Nothing else may differ.

Each entry says what differs, why, and how the suite accounts for it. The runner calls the functions
below; it has no other exception. A difference found by the suite that is *not* deliberate goes in
``test_conformance.OPEN`` (a strict xfail naming it) until it is fixed, never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Dict, List, Optional, Sequence


@dataclass(frozen=True)
class Deviation:
    id: str
    mode: str  # "A", "B" or "AB": where it applies
    what: str
    why: str
    how: str


DEVIATIONS = (
    Deviation(
        "error_messages",
        "AB",
        "pynamodb-stash never quotes a key value (nor any other value) in an error message; PynamoDB does "
        "(e.g. ``Invalid key value 'h1': ...`` from batch_get).",
        "Messages are logged; a key may be an HMAC or personal data.",
        "Errors are compared as exception class (the first class from pynamodb.exceptions, "
        "pynamodb_stash.exceptions or builtins in its MRO) plus ``cause_response_code`` plus the "
        "cancellation reason codes of a transaction; never by message (which also holds request ids).",
    ),
    Deviation(
        "projection_adds_keys",
        "B",
        "With attributes_to_get (get, batch_get, query, scan), a model that has something to decrypt (or a "
        "registered subclass that has) also fetches its key attributes and its discriminator.",
        "Decryption needs the primary key (ciphertexts are bound to it) and the item's class. Consequences: "
        "get() of an item that has none of the projected attributes returns it (all None), where "
        "DynamoDB answers an empty item and PynamoDB raises DoesNotExist; and a projected get()/batch_get() "
        "through a subclass of an item stored as another class raises PynamoDB's own ValueError (wrong "
        "class), where PynamoDB, fetching no discriminator, returns it as the subclass. (And a projected "
        "query/scan with a limit that stops inside a page works, where PynamoDB raises KeyError computing "
        "last_evaluated_key from an item read without its keys.)",
        "In mode B, a projected read's results are compared on the projected attributes only, and not on "
        "their class; a projected get() that finds none of them compares as 'nothing'. Mode B draws no "
        "projected get()/batch_get() through a subclass, and projects the keys in a query/scan with a "
        "limit. Requests are not compared in mode B at all.",
    ),
    Deviation(
        "stored_form_in_raw_responses",
        "B",
        "What save(), update() and delete() return is DynamoDB's raw response: update's ``Attributes`` "
        "(ALL_NEW) hold ciphertexts and HMACs, and ``ConsumedCapacity`` counts the larger stored item. "
        "Likewise ``serialize()``, ``to_dynamodb_dict()`` and ``to_simple_dict()`` give the stored form.",
        "These are DynamoDB's own answer about the stored item, or the item as it is stored: encrypted.",
        "In mode B the responses are compared by their top-level keys and the serialized forms not at all; "
        "the instance the operation updated, or the instance read back from the serialized form, is "
        "compared in full.",
    ),
    Deviation(
        "requests_in_mode_b",
        "B",
        "Requests differ when something is encrypted: stored names (``x__source``, ``x__hmac``), "
        "ciphertexts, HMACs instead of values, two SET/REMOVE actions for one, projections with keys.",
        "That is the encryption.",
        "Mode B compares results and errors, and checks that no plain name or plaintext of an encrypted "
        "attribute is on the wire; mode A compares every request.",
    ),
    Deviation(
        "hmac_index",
        "B",
        "A GSI keyed on an encrypted attribute (``HmacAttribute(hash_key=True)`` on the index) is keyed on "
        "its HMAC: scanning it returns items in HMAC order and splits segments by HMAC; its "
        "last_evaluated_key holds the HMAC; KEYS_ONLY and INCLUDE projections hold the HMAC, not the value "
        "(results have None for the attribute); and a filter of a query on it can test ``exists()`` of the "
        "attribute (``x__source`` is no key), where DynamoDB refuses a filter on the index's key.",
        "The index holds what DynamoDB stores: the HMAC. Lookups by plaintext (query, count) match as "
        "PynamoDB's do.",
        "Scans of such an index are compared as sorted lists and drawn with no limit, page size, segment "
        "or resumption; last_evaluated_key is compared by presence; the attribute is left out of the "
        "results of reads on such an index unless it projects ALL; queries on it draw no filter on it.",
    ),
    Deviation(
        "simple_dict_of_ciphertexts",
        "B",
        "``to_simple_dict()`` without ``force`` succeeds on an item whose encrypted attributes hold binary or "
        "set values, where PynamoDB's raises ``ValueError`` for such values.",
        "The simple dict holds the stored form: an encrypted value is a ciphertext in base64 text, which "
        "``from_simple_dict`` reads back unambiguously, whatever the plaintext's type (PynamoDB refuses "
        "binary and set values because their simple form reads back as a string or list).",
        "Mode B draws simple round trips with ``force=True`` when the model encrypts something (plain "
        "binary and set values then convert on both sides); test_deliberate_deviation_is_as_documented pins "
        "the difference.",
    ),
    Deviation(
        "set_none_removes",
        "B",
        "``EncryptedAttribute.set(None)`` removes the stored attributes; PynamoDB's ``set(None)`` writes "
        "a NULL, which ``exists()`` then matches.",
        "DESIGN.md (contract): set(None) means remove; a NULL ``x__hmac`` would break an index on it.",
        "Mode B never draws ``set(None)`` on an encrypted attribute.",
    ),
    Deviation(
        "builtin_empty_set",
        "B",
        "``EncryptedAttribute(set)`` stores an empty set as a value (encrypted) and reads it back as "
        "``set()``; ``exists()`` matches it. PynamoDB's ``UnicodeSetAttribute`` stores nothing for an "
        "empty set, reads ``None``, and ``does_not_exist()`` matches. (A wrapped PynamoDB attribute, "
        "``EncryptedAttribute(UnicodeSetAttribute())``, behaves as PynamoDB.)",
        "Decided in issue 14 (item 1) and documented in docs/storage-format.md: the built-in type is not a "
        "PynamoDB attribute, and a round trip gives back exactly what was saved.",
        "Mode B draws no empty set for an attribute encrypted with the built-in ``set``; "
        "test_deliberate_deviation_is_as_documented pins the difference.",
    ),
    Deviation(
        "local_round_trip_numbers",
        "B",
        "A number in an attribute encrypted with a PynamoDB attribute as codec "
        "(``EncryptedAttribute(NumberAttribute())``, number sets, numbers inside a wrapped map or list) is "
        "written in DynamoDB's spelling, so a round trip that never reaches DynamoDB (``serialize()`` then "
        "``from_raw_data()``, ``to_dynamodb_dict()`` then ``from_dynamodb_dict()``, the simple dict) gives "
        "``7131000002.0`` back as the int ``7131000002``, where PynamoDB, keeping the client's spelling, gives "
        "the float back.",
        "DynamoDB canonicalizes a stored number, and PynamoDB reads that (the int) back after a save: a "
        "ciphertext cannot be canonicalized by DynamoDB, so the library writes what DynamoDB would store. "
        "The stored round trip, the common one, then matches PynamoDB's; only the local one differs, and "
        "only in the type of an integral number (the values are equal).",
        "In mode B, the instance read back from a local round trip compares such numbers by value.",
    ),
    Deviation(
        "declared_python_type",
        "B",
        "``EncryptedAttribute(dict)`` / ``(list)`` return the declared Python type, where a "
        "``MapAttribute`` returns a ``MapAttribute`` and a ``ListAttribute`` holds maps as "
        "``MapAttribute``s.",
        "The user chose the built-in codec's type. (``EncryptedAttribute(MapAttribute())`` is meant to keep "
        "PynamoDB's types; that it does not yet is test_conformance.OPEN['wrapped_map_type'].)",
        "Values of attributes encrypted with a built-in type are compared as plain dicts and lists.",
    ),
)
"""Normalizations that are not deviations (both sides would differ from run to run, or PynamoDB's own
order is arbitrary) are in ``REQUEST_NORMALIZATIONS``."""

REQUEST_NORMALIZATIONS = (
    "The table name: each side has its own table; it is replaced by <table> in requests and responses.",
    "ClientRequestToken (transactions): botocore draws a random idempotency token per call.",
    "ResponseMetadata in what save/update/delete return: request id, date and checksum of each call.",
    "BatchGetItem keys are sorted: PynamoDB takes them from a set(), so its own order is arbitrary.",
)

_BY_ID = {d.id: d for d in DEVIATIONS}


def applies(deviation_id: str, mode: str) -> bool:
    return mode in _BY_ID[deviation_id].mode


# -- the functions the runner calls --------------------------------------------------------------------


def projected_view(
    items: Sequence[Optional[Dict[str, Any]]], attributes: Optional[Sequence[str]], mode: str, encrypts: bool
) -> List[Optional[Dict[str, Any]]]:
    """``projection_adds_keys``: results of a projected read, as compared."""
    if attributes is None or not (applies("projection_adds_keys", mode) and encrypts):
        return list(items)
    return [None if item is None else {k: v for k, v in item.items() if k in attributes} for item in items]


def projected_get(outcome: Any, attributes: Optional[Sequence[str]], mode: str, encrypts: bool) -> Any:
    """``projection_adds_keys``: the outcome of a projected get(), as compared ("nothing": ``("ok", None)``)."""
    if attributes is None or not (applies("projection_adds_keys", mode) and encrypts):
        return outcome
    if outcome == ("error", ("DoesNotExist", None, ())):
        return "ok", None
    if outcome[0] == "ok" and all(v is None for v in outcome[1].values()):
        return "ok", None
    return outcome


def no_projected_get_through_subclass(mode: str, encrypts: bool) -> bool:
    """``projection_adds_keys``: whether the generator must not draw a projected get()/batch_get() on a
    subclass."""
    return applies("projection_adds_keys", mode) and encrypts


def hmac_index_view(
    result: Dict[str, Any], hmac_key: Optional[str], projection: str, scan: bool, mode: str
) -> Dict[str, Any]:
    """``hmac_index``: the results of a query or scan on an index, as compared. ``hmac_key``: the
    encrypted attribute whose HMAC keys the index on the stash side, if any."""
    if hmac_key is None or not applies("hmac_index", mode):
        return result
    items = result["items"]
    if projection != "all":
        items = [{k: v for k, v in item.items() if k != hmac_key} for item in items]
    if scan:
        items = sorted(items, key=repr)
    return {**result, "items": items, "last_evaluated_key": result["last_evaluated_key"] is not None}


def keys_in_limited_projection(mode: str, encrypts: bool) -> bool:
    """``projection_adds_keys``: whether a projected query/scan with a limit must project the keys."""
    return applies("projection_adds_keys", mode) and encrypts


def raw_response_view(response: Any, mode: str) -> Any:
    """``stored_form_in_raw_responses``: a save/update/delete return value, as compared."""
    if applies("stored_form_in_raw_responses", mode) and isinstance(response, dict):
        return sorted(response)
    return response


def serialized_view(serialized: Any, mode: str) -> Any:
    """``stored_form_in_raw_responses``: what serialize()/to_dynamodb_dict()/to_simple_dict() give, as
    compared (in mode B, not at all: its names and values are the stored ones)."""
    return None if applies("stored_form_in_raw_responses", mode) else serialized


def empty_set_allowed(encrypted: bool, codec: str) -> bool:
    """``builtin_empty_set``: whether mode B may draw an empty set for an attribute."""
    return not (applies("builtin_empty_set", "B") and encrypted and codec == "type")


def _by_value(normed: Any) -> Any:
    """A value as ``conformance_runner.norm`` gives it, with every number compared by value."""
    if isinstance(normed, tuple) and len(normed) == 2 and normed[0] in ("int", "float"):
        return "number", str(Decimal(repr(normed[1])).normalize())
    if isinstance(normed, tuple) and len(normed) == 2 and isinstance(normed[1], (list, dict)):
        inner = normed[1]
        if isinstance(inner, dict):
            return normed[0], {k: _by_value(v) for k, v in inner.items()}
        values = [_by_value(v) for v in inner]
        return normed[0], sorted(values, key=repr) if normed[0] == "set" else values
    return normed


def local_round_trip_view(item: Dict[str, Any], wrapped: Sequence[str], mode: str) -> Dict[str, Any]:
    """``local_round_trip_numbers``: the instance read back from a local round trip, as compared.
    ``wrapped``: the attributes encrypted with a PynamoDB attribute as codec."""
    if not applies("local_round_trip_numbers", mode):
        return item
    return {k: _by_value(v) if k in wrapped else v for k, v in item.items()}


def simple_dict_force(encrypts: bool, drawn: bool) -> bool:
    """``simple_dict_of_ciphertexts``: the ``force`` of a drawn simple round trip."""
    return True if encrypts and applies("simple_dict_of_ciphertexts", "B") else drawn


def loose_containers(encrypted: bool, codec: str, mode: str) -> bool:
    """``declared_python_type``: whether an attribute's maps and lists compare as plain dicts and lists."""
    return applies("declared_python_type", mode) and encrypted and codec == "type"
