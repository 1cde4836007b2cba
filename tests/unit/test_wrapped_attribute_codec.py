"""A PynamoDB attribute as codec (``EncryptedAttribute(NumberAttribute())``): values come back and compare as
DynamoDB stores them, whatever the client's spelling or iteration order (issue 14, found by the conformance
suite)."""

from __future__ import annotations

from decimal import Context, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pynamodb.attributes import (
    BinarySetAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)

from pynamodb_stash._codecs import ValueRejected, codec_for, dynamodb_number

NUMBERS = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: d.is_zero() or -130 <= d.adjusted() <= 125
).filter(lambda d: len(d.normalize(Context(prec=60)).as_tuple().digits) <= 38)


@pytest.mark.parametrize(
    ("text", "stored"),
    [("7131000002.0", "7131000002"), ("1e+16", "10000000000000000"), ("7.10", "7.1"), ("-0", "0"),
     ("0.00001", "0.00001"), ("1E-5", "0.00001"), ("-2.50E+2", "-250"), ("12", "12")],
)
def test_a_number_is_spelled_as_dynamodb_gives_it_back(text: str, stored: str) -> None:
    assert dynamodb_number(text) == stored


@given(NUMBERS)
def test_equal_numbers_have_one_spelling_with_the_same_value(number: Decimal) -> None:
    spelled = dynamodb_number(str(number))
    assert Decimal(spelled) == number
    wide = Context(prec=60)
    assert dynamodb_number(str(number.normalize(wide))) == spelled == dynamodb_number(format(number, "f"))
    assert "E" not in spelled and "e" not in spelled


@pytest.mark.parametrize("text", ["NaN", "Infinity", "1E+126", "1E-131", "1" * 39, "abc"])
def test_a_number_dynamodb_cannot_store_is_refused_without_quoting_it(text: str) -> None:
    with pytest.raises(ValueRejected) as raised:
        dynamodb_number(text)
    assert text not in str(raised.value).replace("NaN and Infinity", "")


def test_a_wrapped_number_reads_back_as_dynamodb_stores_it() -> None:
    codec = codec_for(NumberAttribute())
    assert codec.encode(7131000002.0) == codec.encode(7131000002)
    assert type(codec.decode(codec.encode(7131000002.0))) is int
    assert codec.decode(codec.encode(2.5)) == 2.5


@given(st.sets(st.text(max_size=8), min_size=1, max_size=12), st.randoms())
def test_equal_sets_encode_alike_whatever_their_order(members: set[str], random: st.SearchStrategy) -> None:
    codec = codec_for(UnicodeSetAttribute())
    shuffled = list(members)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    rebuilt = set()
    for member in shuffled:
        rebuilt.add(member)
    assert codec.encode(members) == codec.encode(rebuilt)
    assert codec.hmac_input(members) == codec.hmac_input(rebuilt)
    assert codec.decode(codec.encode(members)) == members


def test_number_and_binary_sets_are_canonical_too() -> None:
    numbers = codec_for(NumberSetAttribute())
    assert numbers.encode({1, 2.5, 10}) == numbers.encode({10.0, 2.5, 1.0})
    assert numbers.decode(numbers.encode({10.0, 2.5})) == {10, 2.5}
    blobs = codec_for(BinarySetAttribute(legacy_encoding=False))
    assert blobs.encode({b"b", b"a"}) == blobs.encode({b"a", b"b"})


def test_maps_encode_alike_whatever_their_key_order() -> None:
    codec = codec_for(MapAttribute())
    assert codec.encode({"a": 1, "b": {"x": 2.0, "y": 3}}) == codec.encode({"b": {"y": 3, "x": 2}, "a": 1.0})


def test_a_wrapped_map_comes_back_and_is_assigned_as_a_map_attribute() -> None:
    codec = codec_for(MapAttribute())
    back = codec.decode(codec.encode({"city": "Oslo"}))
    assert isinstance(back, MapAttribute) and back.city == "Oslo" and back.as_dict() == {"city": "Oslo"}
    assert codec.coerce is not None and isinstance(codec.coerce({"a": 1}), MapAttribute)
    assert codec_for(UnicodeAttribute()).coerce is None and codec_for(str).coerce is None


def test_a_scalar_keeps_the_bytes_it_had_before_the_canonical_form() -> None:
    """Values stored (and HMACs computed) before the canonical form still read and match: for a scalar
    other than a number, the canonical JSON is the JSON it always was."""
    assert codec_for(UnicodeAttribute()).encode("alice")[1:] == b'{"S":"alice"}'


def test_comparing_a_wrapped_set_with_an_empty_set_is_refused_when_built() -> None:
    """An empty set is stored as no value: ``== set()`` could match nothing stored (PynamoDB builds a value
    botocore cannot send); the refusal names ``does_not_exist()``."""
    from pynamodb_stash import EncryptedAttribute, EncryptedModel, Keyring, UnsupportedQueryError

    class Tagged(EncryptedModel):
        class Meta:
            table_name = "tagged"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        tags = EncryptedAttribute(UnicodeSetAttribute(), equality=True, null=True)

    for build in (lambda: Tagged.tags == set(), lambda: Tagged.tags != set(), lambda: Tagged.tags.is_in({"a"}, set())):
        with pytest.raises(UnsupportedQueryError, match="does_not_exist"):
            build()
    assert (Tagged.tags == {"a"}) is not None
