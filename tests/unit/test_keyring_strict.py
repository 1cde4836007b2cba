"""Keyring text is parsed strictly, and no keyring holds an all-zero key or one secret under two ids.

Review issue 12, finding 11: ``urlsafe_b64decode`` silently drops characters outside its alphabet, so
a keyring string or key with junk in it still loaded; an all-zero key loaded; so did a keyring with one
secret under two key ids. Every error here names key ids only: never key bytes nor any of the text.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from stashtest import secret_forms

from pynamodb_stash import ConfigurationError, Key, Keyring

PREFIX = "stash-keyring:v1:"
K1 = bytes(range(1, 33))
K2 = bytes(range(33, 65))
IDX = bytes(range(200, 232))
ZERO = bytes(32)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

pytestmark = pytest.mark.usefixtures("offline")


def b64(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).decode().rstrip("=")


def encoded(data: Any, *, raw: bytes | None = None) -> str:
    payload = json.dumps(data).encode() if raw is None else raw
    return PREFIX + base64.urlsafe_b64encode(payload).decode().rstrip("=")


def valid_data(k1: bytes = K1, k0: bytes = K2, index: bytes = IDX) -> dict[str, Any]:
    return {"primary": "k1", "keys": {"k1": b64(k1), "k0": b64(k0)}, "index": {"id": "idx1", "key": b64(index)}}


def assert_clean(message: str, *secrets: bytes, text: str = "") -> None:
    """No form of any secret, and no 12-character run of the refused text, is in the message."""
    for form in secret_forms(*secrets, min_length=8):
        assert form not in message
    for start in range(max(0, len(text) - 11)):
        assert text[start:start + 12] not in message


def refused_text(text: str) -> str:
    with pytest.raises(ConfigurationError) as excinfo:
        Keyring.from_string(text, source="the test keyring")
    message = str(excinfo.value)
    assert message.startswith("the test keyring is not a valid pynamodb-stash keyring")
    assert excinfo.value.__cause__ is None
    return message


def refused_key(key_id: str, text: object) -> str:
    with pytest.raises(ValueError) as excinfo:
        Key.from_base64(key_id, text)
    assert excinfo.value.__cause__ is None
    return str(excinfo.value)


# -- Key.from_base64 -------------------------------------------------------------------------------------


@given(secret=st.binary(min_size=32, max_size=32).filter(any))
def test_key_from_base64_reads_its_export_and_the_padded_form(secret: bytes) -> None:
    key = Key("k1", secret)
    text = key.export_secret_base64()
    assert len(text) == 43 and set(text) <= set(ALPHABET)
    assert Key.from_base64("k1", text) == key
    # The one '=' of standard padding (what base64.urlsafe_b64encode writes) carries nothing: accepted.
    assert Key.from_base64("k1", base64.urlsafe_b64encode(secret).decode()) == key


JUNK = st.text(alphabet=" \t\n\r.!*+/=\x00\x7féß€", min_size=1, max_size=4)


@given(secret=st.binary(min_size=32, max_size=32).filter(any), junk=JUNK, position=st.integers(0, 43))
@example(secret=K1, junk="!!!!", position=20)  # the lenient decoder dropped these and read K1
@example(secret=K1, junk="  \n ", position=43)
def test_key_from_base64_refuses_any_junk_character(secret: bytes, junk: str, position: int) -> None:
    """Characters outside the alphabet, anywhere: refused, where the decoder used to drop them."""
    text = b64(secret)
    bad = text[:position] + junk + text[position:]
    if bad == text + "=":
        return  # the padded form, accepted above
    message = refused_key("k7", bad)
    assert "'k7'" in message
    assert_clean(message, secret, text=bad)


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda t: t + "\n", id="trailing-newline"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: t[:20] + " " + t[20:], id="interior-space"),
        pytest.param(lambda t: t[:20] + "\n" + t[20:], id="interior-newline"),
        pytest.param(lambda t: t.replace("-", "+").replace("_", "/") if set("-_") & set(t) else "+" + t[1:],
                     id="standard-alphabet"),
        pytest.param(lambda t: t + "==", id="two-pad"),
        pytest.param(lambda t: t + "===", id="three-pad"),
        pytest.param(lambda t: t[:42] + "=", id="pad-instead-of-last"),
        pytest.param(lambda t: t[:10] + "=" + t[10:], id="interior-pad"),
        pytest.param(lambda t: t[:42], id="42-chars"),
        pytest.param(lambda t: t + "A", id="44-chars"),
        pytest.param(lambda t: t + "AAAA", id="47-chars"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: t.encode(), id="bytes"),
        pytest.param(lambda t: None, id="none"),
    ],
)
def test_key_from_base64_refuses_malformed_text(make_bad: Callable[[str], Any]) -> None:
    text = b64(K1)
    message = refused_key("k1", make_bad(text))
    assert "'k1'" in message
    assert_clean(message, K1, text=text)


@pytest.mark.parametrize("extra", [1, 2, 3])
def test_key_from_base64_refuses_stray_bits_in_the_last_character(extra: int) -> None:
    """43 characters hold 258 bits; the last 2 must be zero, else two texts would give one key."""
    text = b64(K1)
    last = ALPHABET.index(text[-1])
    assert last % 4 == 0  # the canonical form
    stray = text[:-1] + ALPHABET[last + extra]
    assert base64.urlsafe_b64decode(stray + "=") == K1  # the lenient decoder gives the same key
    message = refused_key("k1", stray)
    assert "'k1'" in message and "stray" in message
    assert_clean(message, K1, text=stray)


def test_key_from_base64_checks_the_key_id_before_quoting_it() -> None:
    secret_looking_id = b64(K1)[:20] + " " + "x" * 5  # not a valid id: it must not be echoed
    for text in (b64(K1), "junk", None):
        with pytest.raises(ValueError) as excinfo:
            Key.from_base64(secret_looking_id, text)
        assert secret_looking_id not in str(excinfo.value)
        assert b64(K1)[:12] not in str(excinfo.value)


# -- all-zero keys ---------------------------------------------------------------------------------------


def zero_key_constructors() -> dict[str, Callable[[], object]]:
    ring = Keyring.local(K1, index_key=IDX)
    return {
        "Key": lambda: Key("k1", ZERO),
        "Key.from_base64": lambda: Key.from_base64("k1", b64(ZERO)),
        "Key.from_base64-padded": lambda: Key.from_base64("k1", b64(ZERO) + "="),
        "local-primary": lambda: Keyring.local(ZERO, index_key=IDX),
        "local-index": lambda: Keyring.local(K1, index_key=ZERO, index_key_id="idx-zero"),
        "local-decrypt-only": lambda: Keyring.local(K1, index_key=IDX, decrypt_only={"k-zero": ZERO}),
        "from_string-key": lambda: Keyring.from_string(encoded(valid_data(k0=ZERO))),
        "from_string-index": lambda: Keyring.from_string(encoded(valid_data(index=ZERO))),
        "with_new_primary": lambda: ring.with_new_primary(ZERO, key_id="k-zero"),
        "with_new_index_key": lambda: ring.with_new_index_key(ZERO, key_id="idx-zero"),
    }


@pytest.mark.parametrize("name", zero_key_constructors())
def test_every_constructor_refuses_an_all_zero_key(name: str) -> None:
    with pytest.raises((ValueError, ConfigurationError)) as excinfo:
        zero_key_constructors()[name]()
    if not name.startswith("Key"):
        assert isinstance(excinfo.value, ConfigurationError)
    message = str(excinfo.value)
    assert "all zero" in message
    assert any(f"'{kid}'" in message for kid in ("k1", "k0", "idx1", "k-zero", "idx-zero"))
    assert_clean(message, ZERO, K1, K2, IDX)
    assert "A" * 16 not in message and "0" * 16 not in message


def test_a_key_with_one_nonzero_byte_is_still_a_key() -> None:
    """The check refuses exactly the all-zero secret, wherever the one nonzero byte is."""
    for position in (0, 15, 31):
        secret = bytearray(32)
        secret[position] = 1
        assert Key("k1", bytes(secret)).id == "k1"


# -- one secret under two ids ----------------------------------------------------------------------------


def shared_secret_builders() -> dict[str, Callable[[], object]]:
    ring = Keyring.local(K1, index_key=IDX, decrypt_only={"k0": K2})
    return {
        "constructor": lambda: Keyring(Key("k1", K1), index_key=Key("idx1", IDX), decrypt_only=(Key("k0", K1),)),
        "constructor-decrypt-only-pair": lambda: Keyring(
            Key("k1", K1), index_key=Key("idx1", IDX), decrypt_only=(Key("k0", K2), Key("k9", K2))
        ),
        "local": lambda: Keyring.local(K1, index_key=IDX, decrypt_only={"k0": K1}),
        "local-decrypt-only-pair": lambda: Keyring.local(K1, index_key=IDX, decrypt_only={"k0": K2, "k9": K2}),
        "from_string": lambda: Keyring.from_string(encoded(valid_data(k0=K1))),
        "with_new_primary-of-old-key": lambda: ring.with_new_primary(K2, key_id="k9"),
        "with_new_primary-of-primary": lambda: ring.with_new_primary(K1, key_id="k9"),
    }


@pytest.mark.parametrize("name", shared_secret_builders())
def test_two_encryption_keys_with_one_secret_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        shared_secret_builders()[name]()
    message = str(excinfo.value)
    assert "same secret" in message
    assert sum(f"'{kid}'" in message for kid in ("k1", "k0", "k9")) == 2  # the two ids, named
    assert_clean(message, K1, K2, IDX)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Keyring.local(K1, index_key=IDX).with_new_primary(IDX, key_id="k2"), id="new-primary"),
        pytest.param(lambda: Keyring.local(K1, index_key=IDX).with_new_index_key(K1, key_id="idx2"), id="new-index"),
        pytest.param(lambda: Keyring.local(K1, index_key=K2, decrypt_only={"k0": K2}), id="local"),
    ],
)
def test_the_index_key_shares_no_secret_with_an_encryption_key(build: Callable[[], object]) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        build()
    message = str(excinfo.value)
    assert "index key" in message and "same secret" in message
    assert_clean(message, K1, K2, IDX)


@given(
    secrets=st.lists(st.binary(min_size=32, max_size=32).filter(any), min_size=1, max_size=5, unique=True),
    data=st.data(),
)
def test_any_keyring_with_a_secret_repeated_under_another_id_is_refused(secrets: list[bytes], data: Any) -> None:
    assume(IDX not in secrets)
    primary, *older = secrets
    decrypt_only = {f"old{i}": secret for i, secret in enumerate(older)}
    ring = Keyring.local(primary, index_key=IDX, decrypt_only=decrypt_only)
    assert len(ring.key_ids) == len(secrets)  # distinct secrets: accepted
    repeated = data.draw(st.sampled_from(secrets))
    with pytest.raises(ConfigurationError) as excinfo:
        Keyring.local(primary, index_key=IDX, decrypt_only={**decrypt_only, "again": repeated})
    assert "'again'" in str(excinfo.value)
    with pytest.raises(ConfigurationError):
        ring.with_new_primary(repeated, key_id="again")
    keys = {"main": b64(primary), **{kid: b64(secret) for kid, secret in decrypt_only.items()}}
    text = encoded({"primary": "main", "keys": {**keys, "again": b64(repeated)}, "index": {"id": "i", "key": b64(IDX)}})
    with pytest.raises(ConfigurationError):
        Keyring.from_string(text)


# -- Keyring.from_string ---------------------------------------------------------------------------------


def test_from_string_accepts_surrounding_whitespace_only() -> None:
    text = Keyring.local(K1, index_key=IDX).export_secret_string()
    for wrapped in (text + "\n", text + "\r\n", "  " + text + "\t\n", "\n" + text):
        assert Keyring.from_string(wrapped).export_secret_string() == text
    message = refused_text(PREFIX + " " + text[len(PREFIX):])  # whitespace inside: after the prefix
    assert_clean(message, K1, IDX, text=text)


def test_from_string_accepts_the_standard_padding_of_the_payload() -> None:
    data = json.dumps(valid_data()).encode()
    paddings = set()
    for spaces in range(3):  # JSON may end in spaces: payloads of three lengths, needing 0, 1 or 2 '='
        padded = base64.urlsafe_b64encode(data + b" " * spaces).decode()
        paddings.add(len(padded) - len(padded.rstrip("=")))
        assert Keyring.from_string(PREFIX + padded).primary_key_id == "k1"
        assert Keyring.from_string(PREFIX + padded.rstrip("=")).primary_key_id == "k1"
    assert paddings == {0, 1, 2}


@given(junk=JUNK, fraction=st.floats(min_value=0.0, max_value=1.0))
@example(junk="!!!!", fraction=0.5)  # the lenient decoder dropped these and read the keyring
@example(junk="\n\n\n\n", fraction=0.25)
def test_from_string_refuses_any_junk_character_in_the_payload(junk: str, fraction: float) -> None:
    """Characters outside base64url, anywhere in the payload: refused, where they used to be dropped."""
    text = encoded(valid_data())
    payload = text[len(PREFIX):]
    position = round(fraction * len(payload))
    bad = PREFIX + payload[:position] + junk + payload[position:]
    if bad.strip(" \t\r\n") == text:
        return  # surrounding whitespace, accepted above
    if position == len(payload) and junk == "=" * (-len(payload) % 4):
        return  # exactly the standard padding, accepted above
    message = refused_text(bad)
    assert_clean(message, K1, K2, IDX, text=bad)


def test_from_string_refuses_stray_bits_in_the_payloads_last_character() -> None:
    text = encoded(valid_data())
    payload = text[len(PREFIX):]
    spare_bits = {2: 4, 3: 2}[len(payload) % 4]  # unused low bits of the last character
    last = ALPHABET.index(payload[-1])
    assert last % (1 << spare_bits) == 0
    stray = PREFIX + payload[:-1] + ALPHABET[last + 1]
    message = refused_text(stray)
    assert_clean(message, K1, K2, IDX, text=stray)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("==", id="two-pad-where-one-belongs"),
        pytest.param("===", id="three-pad"),
    ],
)
def test_from_string_refuses_wrong_padding(bad: str) -> None:
    text = encoded(valid_data())
    message = refused_text(text + bad)
    assert_clean(message, K1, K2, IDX, text=text)


def test_from_string_refuses_a_repeated_json_name() -> None:
    """json keeps the last of two equal names: a key (or the primary) would silently vanish."""
    k1, k0, index = b64(K1), b64(K2), b64(IDX)
    for raw in (
        f'{{"primary":"k1","keys":{{"k1":"{k1}","k1":"{k0}"}},"index":{{"id":"idx1","key":"{index}"}}}}',
        f'{{"primary":"k0","primary":"k1","keys":{{"k1":"{k1}"}},"index":{{"id":"idx1","key":"{index}"}}}}',
        f'{{"primary":"k1","keys":{{"k1":"{k1}"}},"index":{{"id":"idx1","key":"{index}","key":"{k0}"}}}}',
    ):
        json.loads(raw)  # what the lenient parser accepted
        message = refused_text(encoded(None, raw=raw.encode()))
        assert "repeats a name" in message
        assert_clean(message, K1, K2, IDX)


def test_from_string_refuses_json_that_is_not_utf8() -> None:
    raw = json.dumps(valid_data()).encode("utf-16")
    message = refused_text(encoded(None, raw=raw))
    assert_clean(message, K1, K2, IDX)


@pytest.mark.parametrize("where", ["k1", "k0", "index"])
def test_from_string_names_the_key_whose_text_is_junk(where: str) -> None:
    data = valid_data()
    if where == "index":
        data["index"]["key"] = data["index"]["key"][:21] + "    " + data["index"]["key"][21:]
        expected = "'idx1'"
    else:
        data["keys"][where] = data["keys"][where][:21] + "!!!!" + data["keys"][where][21:]
        expected = f"'{where}'"
    message = refused_text(encoded(data))
    assert expected in message
    assert_clean(message, K1, K2, IDX)


def test_export_round_trips_through_the_strict_parser() -> None:
    for _ in range(20):
        ring = Keyring.generate()
        text = ring.export_secret_string()
        assert Keyring.from_string(text).export_secret_string() == text
    ring = Keyring.local(K1, index_key=IDX, key_id="a", decrypt_only={"b": K2})
    assert Keyring.from_string(ring.export_secret_string() + "\n").key_ids == ("a", "b")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=50) | st.sampled_from([b64(K1), b64(K2), b64(IDX)]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@given(
    text=st.one_of(
        st.text(),
        st.text(alphabet=ALPHABET + "=\n !").map(lambda t: PREFIX + t),
        JSON.map(lambda doc: encoded(doc)),
        st.fixed_dictionaries(
            {
                "primary": st.sampled_from(["k1", "k0", "x"]),
                "keys": st.dictionaries(st.sampled_from(["k1", "k0"]), JSON),
                "index": st.fixed_dictionaries({"id": st.sampled_from(["idx1", "k1"]), "key": JSON}),
            }
        ).map(lambda doc: encoded(doc)),
    )
)
def test_from_string_gives_a_keyring_or_a_configuration_error_and_nothing_else(text: str) -> None:
    try:
        keyring = Keyring.from_string(text)
    except ConfigurationError as error:
        assert error.__cause__ is None
        assert_clean(str(error), K1, K2, IDX)
    else:
        assert Keyring.from_string(keyring.export_secret_string()).key_ids == keyring.key_ids
