"""The wire format around a ciphertext (``pynamodb_stash._wire``): item sizes as DynamoDB counts them, the
encoded item key, the stored-HMAC and list-position tails of associated data, and ciphertexts as text.

Sizes follow DynamoDB's "Item sizes and formats" page: an attribute is its UTF-8 name plus its value;
strings count their UTF-8 bytes, binary values their raw bytes, booleans and nulls 1 byte; numbers
about 1 byte per two significant digits plus 1 (leading and trailing zeroes trimmed); a list or map 3
bytes plus its elements, each element 1 byte more.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pynamodb_stash._codecs import ValueRejected
from pynamodb_stash._wire import ciphertexts_as_text, encode_key_value, item_size, list_positions, with_digest

pytestmark = pytest.mark.usefixtures("offline")

NAMES = st.text(min_size=1, max_size=20)


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


# -- item_size -------------------------------------------------------------------------------------------


@given(NAMES, st.text(max_size=50))
def test_a_string_counts_its_utf8_bytes_and_its_names(name: str, text: str) -> None:
    assert item_size({name: {"S": text}}) == _utf8(name) + _utf8(text)


@pytest.mark.parametrize(("text", "size"), [("", 0), ("a", 1), ("é", 2), ("中", 3), ("😀", 4), ("aé中😀", 10)])
def test_multibyte_characters_count_every_byte(text: str, size: int) -> None:
    assert item_size({"s": {"S": text}}) == 1 + size
    assert item_size({"é": {"S": ""}}) == 2


@given(NAMES, st.binary(max_size=64))
def test_a_binary_value_counts_its_raw_bytes_not_its_base64(name: str, data: bytes) -> None:
    assert item_size({name: {"B": data}}) == _utf8(name) + len(data)


@pytest.mark.parametrize("value", [{"BOOL": True}, {"BOOL": False}, {"NULL": True}])
def test_a_boolean_or_null_is_one_byte(value: dict[str, Any]) -> None:
    assert item_size({"flag": value}) == len("flag") + 1


@pytest.mark.parametrize(
    ("number", "size"),
    [("1", 2), ("12", 2), ("123", 3), ("-123", 3), ("1.5", 2), ("-12.345", 4), ("9" * 38, 20), ("3.14159", 4)],
)
def test_a_number_is_one_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert item_size({"n": {"N": number}}) == 1 + size


@pytest.mark.parametrize(("number", "size"), [("1000000", 2), ("0.0001", 2), ("100.500", 3)])
def test_leading_and_trailing_zeroes_of_a_number_are_not_counted(number: str, size: int) -> None:
    assert item_size({"n": {"N": number}}) == 1 + size


@given(NAMES, st.lists(st.text(max_size=10), max_size=6))
def test_a_list_is_three_bytes_plus_one_byte_and_the_size_of_each_element(name: str, texts: list[str]) -> None:
    value = {"L": [{"S": text} for text in texts]}
    assert item_size({name: value}) == _utf8(name) + 3 + sum(1 + _utf8(text) for text in texts)


def test_an_empty_list_or_map_is_three_bytes() -> None:
    assert item_size({"l": {"L": []}}) == 1 + 3
    assert item_size({"m": {"M": {}}}) == 1 + 3


@given(NAMES, st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=10), min_size=1, max_size=6))
def test_a_map_is_three_bytes_plus_one_byte_and_the_name_and_value_of_each_element(
    name: str, members: dict[str, str]
) -> None:
    value = {"M": {key: {"S": text} for key, text in members.items()}}
    expected = _utf8(name) + 3 + sum(1 + _utf8(key) + _utf8(text) for key, text in members.items())
    assert item_size({name: value}) == expected


def test_nested_maps_count_the_names_of_their_members() -> None:
    """Whatever the element overhead, a nested member's name counts, as the attribute names do."""
    short = item_size({"m": {"M": {"a": {"S": "x"}}}})
    long = item_size({"m": {"M": {"a" * 11: {"S": "x"}}}})
    assert long - short == 10


@pytest.mark.parametrize(
    ("value", "size"),
    [({"SS": ["ab", "é"]}, 2 + 2), ({"BS": [b"\x00\x01\x02", b""]}, 3), ({"SS": []}, 0)],
)
def test_a_string_or_binary_set_counts_its_members(value: dict[str, Any], size: int) -> None:
    assert item_size({"set": value}) == 3 + size


@given(st.dictionaries(NAMES, st.text(max_size=10), max_size=6), st.dictionaries(NAMES, st.binary(max_size=10)))
def test_an_items_size_is_the_sum_of_its_attributes(texts: dict[str, str], blobs: dict[str, bytes]) -> None:
    item = {name: {"S": text} for name, text in texts.items()}
    item.update({name: {"B": data} for name, data in blobs.items()})
    assert item_size(item) == sum(item_size({name: value}) for name, value in item.items())


# -- encode_key_value: the encoded item key ---------------------------------------------------------------


@given(st.text(max_size=40))
def test_a_string_key_is_its_type_letter_its_length_and_its_utf8_bytes(text: str) -> None:
    data = text.encode("utf-8")
    assert encode_key_value("S", text) == b"S" + len(data).to_bytes(2, "big") + data


@given(st.binary(max_size=40))
def test_a_binary_key_is_its_type_letter_its_length_and_its_bytes(data: bytes) -> None:
    assert encode_key_value("B", data) == b"B" + len(data).to_bytes(2, "big") + data


@pytest.mark.parametrize(
    "spellings",
    [("1", "1.0", "1.000", "1E0", "0.1E+1"), ("0", "-0", "0.00", "0E+5"), ("-2.5", "-2.50", "-25E-1"),
     ("100", "1E+2", "100.0")],
)
def test_a_number_key_is_encoded_the_same_however_it_is_spelled(spellings: tuple[str, ...]) -> None:
    """DynamoDB returns ``"1"`` for a stored ``"1.0"``: the reader must bind what the writer bound."""
    encoded = {encode_key_value("N", text) for text in spellings}
    assert len(encoded) == 1
    (only,) = encoded
    assert only[:1] == b"N"


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**20), max_value=10**20, places=6),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**20), max_value=10**20, places=6),
)
def test_two_number_keys_are_encoded_alike_exactly_when_they_are_equal(a: Decimal, b: Decimal) -> None:
    assert (encode_key_value("N", str(a)) == encode_key_value("N", str(b))) == (a == b)


def test_key_types_are_kept_apart() -> None:
    assert encode_key_value("S", "1") != encode_key_value("N", "1")
    assert encode_key_value("S", "a") != encode_key_value("B", b"a")


@given(st.text(max_size=10), st.text(max_size=10), st.text(max_size=10), st.text(max_size=10))
def test_a_hash_and_range_key_pair_reads_one_way(h1: str, r1: str, h2: str, r2: str) -> None:
    """Concatenated, encoded keys stay unambiguous: ("ab", "c") and ("a", "bc") differ."""
    first = encode_key_value("S", h1) + encode_key_value("S", r1)
    second = encode_key_value("S", h2) + encode_key_value("S", r2)
    assert (first == second) == ((h1, r1) == (h2, r2))


@pytest.mark.parametrize("text", ["NaN", "Infinity", "1E+126", "1E-131", "1" * 39, "12abc"])
def test_a_number_dynamodb_cannot_store_is_refused_without_quoting_it(text: str) -> None:
    with pytest.raises(ValueRejected) as raised:
        encode_key_value("N", text)
    assert text not in str(raised.value).replace("NaN and Infinity", "")


def test_a_lone_surrogate_in_a_string_key_is_refused() -> None:
    with pytest.raises(UnicodeEncodeError):
        encode_key_value("S", "a\udc80b")


# -- with_digest and list_positions: the tails of associated data ------------------------------------------


@given(st.binary(max_size=20), st.text(alphabet="abcXYZ019_-", max_size=30))
def test_with_digest_appends_the_digest_length_prefixed(item_key: bytes, digest: str) -> None:
    data = digest.encode("ascii")
    assert with_digest(item_key, digest) == item_key + b"H" + len(data).to_bytes(2, "big") + data


@given(st.binary(max_size=8), st.text(alphabet="abc-_", max_size=8), st.text(alphabet="abc-_", max_size=8))
def test_different_digests_give_different_associated_data(item_key: bytes, d1: str, d2: str) -> None:
    assert (with_digest(item_key, d1) == with_digest(item_key, d2)) == (d1 == d2)


def test_a_digest_is_ascii() -> None:
    with pytest.raises(UnicodeEncodeError):
        with_digest(b"S\x00\x01k", "dïgest")


def test_a_value_outside_any_list_has_no_positions() -> None:
    assert list_positions(()) == b""


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=5))
def test_list_positions_are_four_bytes_each_after_a_marker(indices: list[int]) -> None:
    encoded = list_positions(tuple(indices))
    assert encoded[:1] == b"I" and len(encoded) == 1 + 4 * len(indices)
    assert [int.from_bytes(encoded[i : i + 4], "big") for i in range(1, len(encoded), 4)] == indices


@given(st.lists(st.integers(0, 1000), max_size=4), st.lists(st.integers(0, 1000), max_size=4))
def test_two_positions_give_the_same_bytes_exactly_when_they_are_the_same(a: list[int], b: list[int]) -> None:
    """A value moved to another element, or another depth of lists, is bound to other positions."""
    assert (list_positions(tuple(a)) == list_positions(tuple(b))) == (a == b)


# -- ciphertexts_as_text ------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@given(st.binary(max_size=64))
def test_a_ciphertext_becomes_base64_text(blob: bytes) -> None:
    text = ciphertexts_as_text("email__source", {"B": blob})
    assert text == {"S": _b64(blob)}
    assert base64.b64decode(text["S"]) == blob


@pytest.mark.parametrize(
    ("name", "value"),
    [("photo", {"B": b"\x00\x01"}), ("email__hmac", {"S": "digest"}), ("n", {"N": "1"}),
     ("email__source", {"S": "already text"}), ("tags", {"BS": [b"\x01"]})],
)
def test_other_values_are_left_as_they_are(name: str, value: dict[str, Any]) -> None:
    assert ciphertexts_as_text(name, value) == value


def test_ciphertexts_at_any_depth_become_text_and_nothing_else_does() -> None:
    blob, other, plain = b"\x01\x02ciphertext", b"\x01\x02deeper", b"\x00plain"
    stored = {"M": {
        "street__source": {"B": blob},
        "street__hmac": {"S": "digest"},
        "photo": {"B": plain},
        "history": {"L": [{"M": {"street__source": {"B": other}, "city": {"S": "c"}}}, {"B": plain}]},
    }}
    assert ciphertexts_as_text("profile", stored) == {"M": {
        "street__source": {"S": _b64(blob)},
        "street__hmac": {"S": "digest"},
        "photo": {"B": plain},
        "history": {"L": [{"M": {"street__source": {"S": _b64(other)}, "city": {"S": "c"}}}, {"B": plain}]},
    }}
