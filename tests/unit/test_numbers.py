"""Canonical numbers (``pynamodb_stash._codecs.canonical_number`` and the Decimal codec's equality form).

Two numbers hash alike exactly when Python calls them equal; a number DynamoDB cannot store is refused,
never rounded into another one; and every number accepted before keeps the text it had, because stored
HMACs, compound HMACs and the item keys bound into ciphertexts were computed from it.
"""

from __future__ import annotations

from decimal import Context, Decimal, localcontext
from typing import Any, Callable

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from pynamodb_stash._codecs import ValueRejected, WrongType, canonical_number, codec_for, safe_reason

DECIMAL = codec_for(Decimal)
MAX = Decimal("9.9999999999999999999999999999999999999E+125")  # 38 nines
MIN = Decimal("1E-130")


# -- oracles: the implementations before this change, and an independent range check ------------------

_OLD_NUMBERS = Context(prec=100)
_OLD_EXACT = Context(prec=1000)


def old_canonical_number(text: str) -> str:
    """``_attributes.canonical_number`` as it was: the texts of key and compound-part numbers."""
    number = Decimal(text)
    return "0" if number.is_zero() else str(number.normalize(_OLD_NUMBERS))


def old_canonical_decimal(value: Decimal) -> bytes:
    """``_codecs._canonical_decimal`` as it was: the Decimal codec's equality HMAC input."""
    if value.is_nan():
        return str(value).encode("ascii")
    if value.is_zero():
        return b"0"
    return str(value.normalize(_OLD_EXACT)).encode("ascii")


def significant_digits(value: Decimal) -> int:
    coefficient = int("".join(map(str, value.as_tuple().digits)))
    while coefficient and coefficient % 10 == 0:
        coefficient //= 10
    return len(str(coefficient))


def storable(value: Decimal) -> bool:
    """DynamoDB's rule, checked with exact comparisons (``copy_abs``, unlike ``abs``, never rounds)."""
    if not value.is_finite():
        return False
    if value.is_zero():
        return True
    return significant_digits(value) <= 38 and MIN <= value.copy_abs() <= MAX


# -- strategies ----------------------------------------------------------------------------------------

signs = st.sampled_from([0, 1])


def _decimal(sign: int, coefficient: int, exponent: int) -> Decimal:
    return Decimal((sign, tuple(int(c) for c in str(coefficient)), exponent))


@st.composite
def storable_decimals(draw: Callable[..., Any]) -> Decimal:
    """Any number DynamoDB stores, written with any number of non-significant trailing zeros."""
    if draw(st.integers(0, 9)) == 0:
        return _decimal(draw(signs), 0, draw(st.integers(-(10**6), 10**6)))
    digits = draw(st.integers(1, 38) | st.just(38))
    coefficient = draw(st.integers(10 ** (digits - 1), 10**digits - 1))
    adjusted = draw(st.integers(-130, 125) | st.sampled_from([-130, -129, 124, 125]))
    padding = draw(st.integers(0, 3) | st.integers(0, 80))
    return _decimal(draw(signs), coefficient * 10**padding, adjusted - (digits - 1) - padding)


any_storable = storable_decimals() | st.decimals(allow_nan=False, allow_infinity=False).filter(storable)


@st.composite
def unstorable_decimals(draw: Callable[..., Any]) -> Decimal:
    """NaN, Infinity, over 38 significant digits, or a nonzero magnitude outside 1E-130 to MAX."""
    kind = draw(st.sampled_from(["special", "digits", "large", "small"]))
    if kind == "special":
        return Decimal(draw(st.sampled_from(["NaN", "-NaN", "sNaN", "-sNaN", "NaN123", "Infinity", "-Infinity"])))
    if kind == "digits":
        digits = draw(st.integers(39, 45) | st.integers(39, 200))
        coefficient = draw(st.integers(10 ** (digits - 1), 10**digits - 1).filter(lambda c: c % 10 != 0))
        adjusted = draw(st.integers(-130, 125))
    else:
        digits = draw(st.integers(1, 38))
        coefficient = draw(st.integers(10 ** (digits - 1), 10**digits - 1))
        if kind == "large":
            adjusted = draw(st.integers(126, 130) | st.integers(126, 10**6) | st.integers(126, 10**17))
        else:
            adjusted = draw(st.integers(-135, -131) | st.integers(-(10**6), -131) | st.integers(-(10**17), -131))
    padding = draw(st.integers(0, 5))
    return _decimal(draw(signs), coefficient * 10**padding, adjusted - (digits - 1) - padding)


any_unstorable = unstorable_decimals() | st.decimals(allow_nan=True, allow_infinity=True).filter(
    lambda d: not storable(d)
)

# One value per reason for refusal: every refusal's message must be one of theirs, whatever the value.
REPRESENTATIVES = [Decimal("NaN"), Decimal("1" * 39), Decimal("1E+126"), Decimal("1E-131")]


def refusal(value: Any) -> str:
    with pytest.raises(ValueRejected) as raised:
        canonical_number(value)
    assert type(raised.value) is ValueRejected
    return str(raised.value)


FIXED_MESSAGES = {refusal(value) for value in REPRESENTATIVES} | {refusal("not a number")}


def test_refusal_messages_are_distinct_and_say_why() -> None:
    assert len(FIXED_MESSAGES) == 4  # not a number; NaN or Infinity; over 38 digits; out of range
    assert refusal(Decimal("Infinity")) == refusal(Decimal("NaN"))
    assert refusal(Decimal("1E+126")) == refusal(Decimal("1E-131"))
    assert "38" in refusal(Decimal("1" * 39))
    assert "1E-130" in refusal(Decimal("1E+126"))


# -- (1) equal iff Python says equal -------------------------------------------------------------------


def _rescaled(value: Decimal, zeros: int) -> Decimal:
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    return Decimal((sign, (*digits, *(0,) * zeros), exponent - zeros))


@st.composite
def number_pairs(draw: Callable[..., Any]) -> tuple[Decimal, Decimal]:
    a = draw(any_storable)
    how = draw(st.sampled_from(["rescaled", "normalized", "negated", "last digit", "independent"]))
    if how == "rescaled":
        b = _rescaled(a, draw(st.integers(0, 100)))
    elif how == "normalized":
        b = a.normalize(Context(prec=200, Emin=-(10**8), Emax=10**8))
    elif how == "negated":
        b = a.copy_negate()
    elif how == "last digit":
        sign, digits, exponent = a.as_tuple()
        assert isinstance(exponent, int)
        coefficient = int("".join(map(str, digits))) + draw(st.sampled_from([-1, 1]))
        b = _decimal(sign, abs(coefficient), exponent)
    else:
        b = draw(any_storable)
    assume(storable(b))
    return (a, b) if draw(st.booleans()) else (b, a)


@settings(max_examples=1000)
@given(pair=number_pairs())
@example(pair=(Decimal("1.0"), Decimal("1")))
@example(pair=(Decimal("-0"), Decimal("0")))
@example(pair=(Decimal("0E+5"), Decimal("-0.000")))
@example(pair=(Decimal("1E+2"), Decimal("100")))
@example(pair=(MIN, MIN.next_plus(Context(prec=38))))
@example(pair=(MAX, MAX.next_minus(Context(prec=38))))
@example(pair=(MIN, -MIN))
def test_two_numbers_share_a_canonical_form_exactly_when_they_are_equal(pair: tuple[Decimal, Decimal]) -> None:
    a, b = pair
    assert storable(a) and storable(b)
    same = a == b
    assert (canonical_number(a) == canonical_number(b)) is same
    assert (canonical_number(str(a)) == canonical_number(str(b))) is same
    assert (DECIMAL.hmac_input(a) == DECIMAL.hmac_input(b)) is same


@settings(max_examples=500)
@given(value=any_storable)
def test_the_canonical_form_is_exact_and_the_same_for_every_spelling(value: Decimal) -> None:
    text = canonical_number(value)
    back = Decimal(text)
    assert back == value  # nothing was rounded: Decimal comparison is exact
    assert significant_digits(back) <= 38
    if not value.is_zero():
        assert back.as_tuple().digits[-1] != 0  # no trailing zeros: one text per value
    for spelling in (str(value), format(value, "f"), format(value, "e"), str(value).lower(), f"  +{value} "):
        if spelling.lstrip().startswith("+-"):
            continue
        assert canonical_number(spelling) == text
    if value == value.to_integral_value() and value.adjusted() < 200:
        assert canonical_number(int(value)) == text
    assert DECIMAL.hmac_input(value) == bytes((DECIMAL.tag,)) + text.encode("ascii")


@settings(max_examples=300)
@given(value=any_storable, prec=st.integers(1, 40), emax=st.integers(1, 200))
def test_the_thread_decimal_context_changes_nothing(value: Decimal, prec: int, emax: int) -> None:
    expected = canonical_number(value)
    with localcontext() as context:
        context.prec, context.Emax, context.Emin = prec, emax, -emax
        context.traps = {signal: False for signal in context.traps}
        assert canonical_number(value) == expected
        assert canonical_number(str(value)) == expected
        assert DECIMAL.hmac_input(value) == bytes((DECIMAL.tag,)) + expected.encode("ascii")


# -- (2) what DynamoDB cannot store is refused, without its digits -------------------------------------


def _assert_refused(value: Any, shown: str) -> None:
    """Refused with one of the fixed messages, which never quote ``shown`` (NaN and Infinity, which
    the message names as a kind of value, excepted)."""
    message = refusal(value)
    assert message in FIXED_MESSAGES  # the same text for every value refused for the same reason
    if "nan" not in shown.lower() and "inf" not in shown.lower():
        assert shown not in message
    with pytest.raises(ValueRejected) as raised:
        canonical_number(value)
    assert safe_reason(raised.value) == message
    assert raised.value.__cause__ is None  # nor a parser's error chained on, which would quote the text
    assert raised.value.__context__ is None or raised.value.__suppress_context__


@settings(max_examples=500)
@given(value=any_unstorable)
@example(value=Decimal("9.99999999999999999999999999999999999999E+125"))  # 39 nines
@example(value=Decimal("1E+126"))
@example(value=Decimal("1E-131"))
@example(value=Decimal("9.9999999999999999999999999999999999999E-131"))
@example(value=Decimal("1.00000000000000000000000000000000000001"))
def test_unstorable_numbers_are_refused_without_their_digits(value: Decimal) -> None:
    assert not storable(value)
    _assert_refused(value, str(value))
    _assert_refused(str(value), str(value))
    if value.is_finite() and value == value.to_integral_value() and value.adjusted() < 4000:
        _assert_refused(int(value), str(int(value)))
    with pytest.raises(ValueRejected) as raised:
        DECIMAL.hmac_input(value)
    assert type(raised.value) is ValueRejected and str(raised.value) in FIXED_MESSAGES
    # Only equality refuses: the Decimal itself is still stored, encrypted, exactly as given.
    assert DECIMAL.decode(DECIMAL.encode(value)).as_tuple() == value.as_tuple()


@settings(max_examples=200)
@given(text=st.text(max_size=30).filter(lambda t: not _parses(t)), secret=st.text(max_size=20))
@example(text="", secret="")
@example(text="1e", secret="")
@example(text="1.2.3", secret="")
@example(text="0x10", secret="")
@example(text="12 34", secret="")
def test_text_that_is_no_number_is_refused_without_quoting_it(text: str, secret: str) -> None:
    message = refusal(text)
    assert message in FIXED_MESSAGES
    marked = "SECRET-" + secret + text
    assume(not _parses(marked))
    _assert_refused(marked, marked)


def _parses(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


@pytest.mark.parametrize(
    "value", [1.5, True, False, None, b"1", bytearray(b"1"), [1], complex(1, 0)], ids=repr
)
def test_other_types_are_wrong_types(value: Any) -> None:
    with pytest.raises(WrongType) as raised:
        canonical_number(value)
    assert type(raised.value) is WrongType
    assert str(raised.value) == f"expected a Decimal, str or int, got {type(value).__name__}"


# -- the edges of DynamoDB's range ---------------------------------------------------------------------

MANTISSA = "1.2345678901234567890123456789012345678"  # 38 digits

ACCEPTED = [
    ("1E-130", "1E-130"),
    ("-1E-130", "-1E-130"),
    ("0." + "0" * 129 + "1", "1E-130"),
    ("-0." + "0" * 129 + "12345678901234567890123456789012345678", "-" + MANTISSA + "E-130"),
    ("9.9999999999999999999999999999999999999E+125", "9.9999999999999999999999999999999999999E+125"),
    ("-9.9999999999999999999999999999999999999E+125", "-9.9999999999999999999999999999999999999E+125"),
    (MANTISSA + "E-130", MANTISSA + "E-130"),
    (MANTISSA + "E+125", MANTISSA + "E+125"),
    ("-" + MANTISSA + "E-130", "-" + MANTISSA + "E-130"),
    ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
    ("99999999999999999999999999999999999999" + "0" * 88, "9.9999999999999999999999999999999999999E+125"),
    ("1" + "0" * 1500 + "E-1500", "1"),
    ("1." + "0" * 2000, "1"),
    ("1.0", "1"),
    ("12.50", "12.5"),
    ("1E+2", "1E+2"),
    ("100", "1E+2"),
    ("-0", "0"),
    ("0E-999999", "0"),
    ("-0E+999999999999999999", "0"),
    ("0.1", "0.1"),
    ("0.000001", "0.000001"),
    ("0.0000001", "1E-7"),
    (" 7 ", "7"),
    ("1_000", "1E+3"),  # Python's Decimal() reads underscores; the old canonical_number did too
    ("1__0", "1E+1"),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED, ids=[t[:30] for t, _ in ACCEPTED])
def test_numbers_at_and_inside_the_edges_are_exact(text: str, expected: str) -> None:
    assert canonical_number(text) == expected
    assert canonical_number(Decimal(text)) == expected
    assert Decimal(expected) == Decimal(text)
    assert old_canonical_number(text) == expected  # what keys and compounds were written with
    assert DECIMAL.hmac_input(Decimal(text)) == bytes((DECIMAL.tag,)) + old_canonical_decimal(Decimal(text))


REFUSED = [
    "1E-131",
    "-1E-131",
    "9.9999999999999999999999999999999999999E-131",
    MANTISSA + "E-131",
    "1E+126",
    "-1E+126",
    MANTISSA + "E+126",
    "9.99999999999999999999999999999999999999E+125",  # 39 nines: over 38 digits, and rounds to 1E+126
    "1.00000000000000000000000000000000000001",  # 39 digits
    "123456789012345678901234567890123456789",
    "1" + "0" * 126,
    "1E+999999999999999999",
    "1E-999999999999999999",
    "0.001E-999999999999999999",
    "1E+9999999999999999999999",
    "NaN",
    "-NaN",
    "sNaN",
    "NaN42",
    "Infinity",
    "-inf",
    "SECRET-42",
    "4 2",
]


@pytest.mark.parametrize("text", REFUSED, ids=[t[:30] for t in REFUSED])
def test_numbers_just_outside_the_edges_are_refused(text: str) -> None:
    _assert_refused(text, text.strip("-"))


@pytest.mark.parametrize(
    "value",
    [10**126, -(10**126), 10**38 + 1, 10**126 - 1, 2**419, 2**420, 2**421, -(2**5000), 10**5000],
    ids=lambda v: f"{v.bit_length()} bits",
)
def test_ints_beyond_the_range_are_refused(value: int) -> None:
    message = refusal(value)
    assert message in FIXED_MESSAGES


def test_ints_inside_the_range_are_exact() -> None:
    assert canonical_number(10**38) == "1E+38"
    assert canonical_number(10**38 - 1) == "9" * 38
    assert canonical_number((10**38 - 1) * 10**88) == str(MAX)
    assert canonical_number(-(10**125)) == "-1E+125"
    assert canonical_number(0) == "0"
    assert canonical_number(-7) == "-7"


# -- (3) every number accepted before keeps its text ---------------------------------------------------


@settings(max_examples=1000)
@given(value=any_storable)
def test_in_range_numbers_keep_the_old_key_and_compound_text(value: Decimal) -> None:
    for spelling in (str(value), format(value, "f"), format(value, "e")):
        assert canonical_number(spelling) == old_canonical_number(spelling)


@settings(max_examples=1000)
@given(value=any_storable)
def test_in_range_decimals_keep_the_old_hmac_input(value: Decimal) -> None:
    assert DECIMAL.hmac_input(value) == bytes((DECIMAL.tag,)) + old_canonical_decimal(value)
    assert DECIMAL.hmac_input(value, DECIMAL.encode(value)) == DECIMAL.hmac_input(value)


@settings(max_examples=300)
@given(value=st.integers(-(10**38), 10**38) | st.integers().map(lambda i: i * 10 ** (i % 80)))
def test_in_range_ints_keep_the_old_text(value: int) -> None:
    assume(storable(Decimal(value)))
    assert canonical_number(value) == old_canonical_number(str(value))


# -- through a model: an HMAC table key ---------------------------------------------------------------


def _amount_keyed_model() -> Any:
    from pynamodb_stash import EncryptedAttribute, EncryptedModel, Keyring

    class Ledger(EncryptedModel):
        class Meta:
            table_name = "ledger"
            host = "http://127.0.0.1:9"
            keyring = Keyring.generate()

        amount = EncryptedAttribute(Decimal, equality=True, hash_key=True)

    return Ledger


@settings(max_examples=200)
@given(st.decimals(allow_nan=False, allow_infinity=False), st.decimals(allow_nan=False, allow_infinity=False))
def test_two_amounts_share_a_table_key_exactly_when_python_calls_them_equal(a: Decimal, b: Decimal) -> None:
    """Where an HMAC is the table key, a shared HMAC means the second write overwrites the first item."""
    from pynamodb_stash import EncryptionError

    ledger = _LEDGER
    keys = []
    for amount in (a, b):
        try:
            keys.append(ledger(amount=amount).serialize()["amount__hmac"]["S"])
        except EncryptionError as error:  # DynamoDB could not store it as a number: no HMAC for it either
            assert str(amount) not in str(error)
            return
    assert (keys[0] == keys[1]) == (a == b)


def test_amounts_that_used_to_collide_are_refused() -> None:
    from pynamodb_stash import EncryptionError

    for a, b in [
        (Decimal("1" + "0" * 1200), Decimal("1" + "0" * 1199 + "1")),  # rounded at 1000 digits
        (Decimal("1E-1000050"), Decimal("2E-1000050")),  # underflowed
    ]:
        for amount in (a, b):
            with pytest.raises(EncryptionError):
                _LEDGER(amount=amount).serialize()


_LEDGER = _amount_keyed_model()
