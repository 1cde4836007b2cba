"""The wire format around a ciphertext: how an item's primary key, a stored HMAC and list positions are
encoded into what each value is bound to, how big an item is as DynamoDB counts it, and the text form
of ciphertexts in a simple dict. No model, no keys: bytes in, bytes out.
"""

from __future__ import annotations

import base64
from typing import Any, Dict, Tuple

from pynamodb.constants import BINARY, LIST, MAP, NUMBER, STRING

from . import _crypto
from ._attributes import SOURCE_SUFFIX
from ._codecs import canonical_number

MAX_ITEM_SIZE = 400 * 1024


def item_size(item: Dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: UTF-8 names plus values (numbers 1 byte per 2 significant
    digits, plus 1; a map or list 3 bytes plus, for each member, 1 byte and its name and value)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Dict[str, Any]) -> int:
    (kind, data), = value.items()
    if kind == STRING:
        return len(data.encode())
    if kind == BINARY:
        return len(data)
    if kind == NUMBER:
        return (_significant_digits(data) + 1) // 2 + 1
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(inner) for name, inner in data.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(inner) for inner in data)
    if kind in ("SS", "BS", "NS"):
        return sum(len(member.encode()) if isinstance(member, str) else len(member) for member in data)
    return 1  # BOOL, NULL


def _significant_digits(number: str) -> int:
    """The digits DynamoDB counts in a number's text: without sign, point, exponent, and leading and
    trailing zeroes."""
    digits = number.lstrip("+-").split("e")[0].split("E")[0].replace(".", "")
    return len(digits.strip("0"))


def list_positions(indices: Tuple[int, ...]) -> bytes:
    # List positions of a value inside ListAttribute(of=EncryptedMapAttribute), bound into its AAD.
    return b"" if not indices else b"I" + b"".join(i.to_bytes(4, "big") for i in indices)


def with_digest(item_key: bytes, digest: str) -> bytes:
    # The stored HMAC is authenticated with the ciphertext: an x__hmac moved to another item would
    # make that item answer queries for another value; it makes the item fail to decrypt instead.
    return item_key + b"H" + _crypto.length_prefixed(digest.encode("ascii"))


def encode_key_value(attr_type: str, value: Any) -> bytes:
    """One serialized key value as ``type letter | u16 length | bytes``.

    Numbers are normalized, because DynamoDB returns ``"1"`` for a stored ``"1.0"`` and ``"0"`` for ``"-0"``.

    :raises ValueRejected: for a number DynamoDB cannot store. :raises UnicodeEncodeError: for a lone
        surrogate in a string.
    """
    if attr_type == STRING:
        data = value.encode("utf-8")
    elif attr_type == NUMBER:
        data = canonical_number(value).encode("ascii")
    else:
        data = bytes(value)
    return attr_type.encode("ascii") + _crypto.length_prefixed(data)


def ciphertexts_as_text(name: str, value: Dict[str, Any]) -> Dict[str, Any]:
    """A stored attribute value with each ciphertext in it (``x__source``, at any depth) as base64 text."""
    if name.endswith(SOURCE_SUFFIX) and BINARY in value:
        return {STRING: base64.b64encode(value[BINARY]).decode("ascii")}
    if MAP in value:
        return {MAP: {k: ciphertexts_as_text(k, v) for k, v in value[MAP].items()}}
    if LIST in value:
        return {LIST: [ciphertexts_as_text("", v) for v in value[LIST]]}
    return value
