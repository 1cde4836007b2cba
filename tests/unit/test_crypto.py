"""FieldCipher, FieldHasher, Key and the ciphertext wire format (``pynamodb_stash._crypto``)."""

from __future__ import annotations

import base64
import copy
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynamodb_stash import Key, Keyring
from pynamodb_stash._crypto import (
    FORMAT_VERSION,
    HMAC_SIZE,
    KEY_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    FieldCipher,
    FieldHasher,
    InvalidCiphertext,
    fixed_nonces,
    read_key_id,
)

SECRET = bytes(range(KEY_SIZE))
OTHER_SECRET = bytes(range(100, 100 + KEY_SIZE))
ITEM_KEY = b"S\x00\x06user#1"
# The module documents a truncated HMAC-SHA256 (at least 128 bits), written as unpadded base64url.
HMAC_CHARS = -(-HMAC_SIZE * 4 // 3)
HMAC_RE = re.compile(r"[A-Za-z0-9_-]+")

key_ids = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)


def _cipher(key_id: str = "k1", secret: bytes = SECRET, table: str = "Users", path: str = "email") -> FieldCipher:
    return FieldCipher(Key(key_id, secret), table, path)


def _secret_forms(secret: bytes) -> list[str]:
    """Every textual form a key might leak in."""
    return [
        repr(secret)[2:-1],
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    ]


# -- seal / open ---------------------------------------------------------------------------------------


@settings(max_examples=100)
@given(plaintext=st.binary(min_size=1, max_size=512), item_key=st.binary(max_size=64))
def test_seal_open_round_trip(plaintext: bytes, item_key: bytes) -> None:
    cipher = _cipher()
    blob = cipher.seal(plaintext, item_key)
    assert cipher.open(blob, item_key) == plaintext


def test_an_empty_plaintext_is_refused() -> None:
    """Every plaintext starts with its type tag; cryptography before 43 refuses empty data in AES-GCM-SIV,
    so the cipher refuses it itself, the same with every supported version."""
    with pytest.raises(ValueError, match="empty"):
        _cipher().seal(b"", ITEM_KEY)


def test_open_with_an_equal_but_separately_built_cipher() -> None:
    blob = _cipher().seal(b"alice@example.com", ITEM_KEY)
    assert _cipher().open(blob, ITEM_KEY) == b"alice@example.com"


def test_two_seals_of_the_same_value_differ() -> None:
    cipher = _cipher()
    blobs = {cipher.seal(b"same value", ITEM_KEY) for _ in range(20)}
    assert len(blobs) == 20
    header = 2 + len(b"k1")
    nonces = {blob[header : header + NONCE_SIZE] for blob in blobs}
    assert len(nonces) == 20
    for blob in blobs:
        assert cipher.open(blob, ITEM_KEY) == b"same value"


def test_fixed_nonce_hook_is_deterministic_and_checked() -> None:
    cipher = _cipher()
    nonce = bytes(range(NONCE_SIZE))
    with fixed_nonces([nonce, nonce]):
        first = cipher.seal(b"v", ITEM_KEY)
        second = cipher.seal(b"v", ITEM_KEY)
    assert first == second
    assert first[4 : 4 + NONCE_SIZE] == nonce
    # Outside the hook, nonces are random again.
    assert cipher.seal(b"v", ITEM_KEY) != cipher.seal(b"v", ITEM_KEY)
    for bad in (bytes(NONCE_SIZE - 1), bytes(NONCE_SIZE + 1), b""):
        with pytest.raises(ValueError), fixed_nonces([bad]):
            pass


def test_ciphertext_does_not_contain_the_plaintext() -> None:
    plaintext = b"a very recognisable plaintext value"
    blob = _cipher().seal(plaintext, ITEM_KEY)
    assert plaintext not in blob
    assert plaintext[:8] not in blob


@pytest.mark.parametrize(
    "reader",
    [
        pytest.param(lambda: _cipher(table="Users2"), id="other-table"),
        pytest.param(lambda: _cipher(table="users"), id="table-case"),
        pytest.param(lambda: _cipher(path="name"), id="other-path"),
        pytest.param(lambda: _cipher(path="address.street"), id="nested-path"),
        pytest.param(lambda: _cipher(secret=OTHER_SECRET), id="same-id-other-secret"),
        pytest.param(lambda: _cipher(key_id="k2"), id="other-id-same-secret"),
    ],
)
def test_open_with_another_table_path_or_key_fails(reader) -> None:  # type: ignore[no-untyped-def]
    blob = _cipher().seal(b"alice@example.com", ITEM_KEY)
    with pytest.raises(InvalidCiphertext):
        reader().open(blob, ITEM_KEY)


@pytest.mark.parametrize(
    "item_key",
    [b"", b"S\x00\x06user#2", ITEM_KEY + b"\x00", ITEM_KEY[:-1], b"N\x00\x06user#1"],
)
def test_open_with_another_item_key_fails(item_key: bytes) -> None:
    blob = _cipher().seal(b"alice@example.com", ITEM_KEY)
    with pytest.raises(InvalidCiphertext):
        _cipher().open(blob, item_key)


def test_table_and_path_boundaries_are_unambiguous() -> None:
    """("ab", "c") and ("a", "bc") must not derive the same key or associated data."""
    blob = FieldCipher(Key("k1", SECRET), "ab", "c").seal(b"v", ITEM_KEY)
    with pytest.raises(InvalidCiphertext):
        FieldCipher(Key("k1", SECRET), "a", "bc").open(blob, ITEM_KEY)


# -- tampering -----------------------------------------------------------------------------------------


def test_every_single_byte_flip_fails() -> None:
    cipher = _cipher()
    blob = cipher.seal(b"alice@example.com", ITEM_KEY)
    for position in range(len(blob)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(blob)
            tampered[position] ^= mask
            with pytest.raises(InvalidCiphertext):
                cipher.open(bytes(tampered), ITEM_KEY)


@settings(max_examples=200)
@given(plaintext=st.binary(min_size=1, max_size=64), data=st.data())
def test_any_byte_flip_fails(plaintext: bytes, data: st.DataObject) -> None:
    cipher = _cipher()
    blob = cipher.seal(plaintext, ITEM_KEY)
    position = data.draw(st.integers(0, len(blob) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="mask")
    tampered = bytearray(blob)
    tampered[position] ^= mask
    with pytest.raises(InvalidCiphertext):
        cipher.open(bytes(tampered), ITEM_KEY)


def test_every_truncation_fails() -> None:
    cipher = _cipher()
    blob = cipher.seal(b"alice@example.com", ITEM_KEY)
    for length in range(len(blob)):
        with pytest.raises(InvalidCiphertext):
            cipher.open(blob[:length], ITEM_KEY)


@settings(max_examples=100)
@given(plaintext=st.binary(min_size=1, max_size=64), suffix=st.binary(min_size=1, max_size=64))
def test_any_extension_fails(plaintext: bytes, suffix: bytes) -> None:
    cipher = _cipher()
    blob = cipher.seal(plaintext, ITEM_KEY)
    with pytest.raises(InvalidCiphertext):
        cipher.open(blob + suffix, ITEM_KEY)


@settings(max_examples=100)
@given(plaintext=st.binary(min_size=1, max_size=64), cut=st.integers(1, 40))
def test_dropping_leading_bytes_fails(plaintext: bytes, cut: int) -> None:
    cipher = _cipher()
    blob = cipher.seal(plaintext, ITEM_KEY)
    with pytest.raises(InvalidCiphertext):
        cipher.open(blob[cut:], ITEM_KEY)


def test_ciphertext_of_another_value_with_this_header_fails() -> None:
    """Splicing the body of one ciphertext under the nonce of another fails."""
    cipher = _cipher()
    a = cipher.seal(b"value a", ITEM_KEY)
    b = cipher.seal(b"value b", ITEM_KEY)
    header = 2 + len(b"k1")
    spliced = a[: header + NONCE_SIZE] + b[header + NONCE_SIZE :]
    with pytest.raises(InvalidCiphertext):
        cipher.open(spliced, ITEM_KEY)


# -- read_key_id -----------------------------------------------------------------------------------------


@settings(max_examples=200)
@given(blob=st.binary(max_size=128))
def test_read_key_id_on_garbage_raises_only_invalid_ciphertext(blob: bytes) -> None:
    try:
        key_id = read_key_id(blob)
    except InvalidCiphertext:
        return
    # Whatever it accepts has a well-formed header.
    assert blob[0] == FORMAT_VERSION
    assert key_id == blob[2 : 2 + blob[1]].decode("ascii")
    assert len(blob) >= 2 + blob[1] + NONCE_SIZE + TAG_SIZE


@settings(max_examples=200)
@given(key_id=st.binary(min_size=0, max_size=80), body=st.binary(min_size=0, max_size=40))
def test_read_key_id_on_garbage_headers(key_id: bytes, body: bytes) -> None:
    blob = bytes((FORMAT_VERSION, len(key_id))) + key_id + body
    try:
        found = read_key_id(blob)
    except InvalidCiphertext:
        return
    assert found.encode("ascii") == key_id
    assert Key(found, SECRET).id == found  # only well-formed ids come out


@pytest.mark.parametrize(
    "value",
    [None, "", "k1", 1, 1.5, [], {}, b"", b"\x01", b"\x02\x02k1" + bytes(28), memoryview(b"\x01\x02k1")],
)
def test_read_key_id_on_non_ciphertexts(value: object) -> None:
    with pytest.raises(InvalidCiphertext):
        read_key_id(value)


def test_read_key_id_rejects_header_without_room_for_nonce_and_tag() -> None:
    header = bytes((FORMAT_VERSION, 2)) + b"k1"
    with pytest.raises(InvalidCiphertext):
        read_key_id(header + bytes(NONCE_SIZE + TAG_SIZE - 1))
    assert read_key_id(header + bytes(NONCE_SIZE + TAG_SIZE)) == "k1"


@settings(max_examples=50)
@given(key_id=key_ids, plaintext=st.binary(min_size=1, max_size=32))
def test_read_key_id_of_a_sealed_value(key_id: str, plaintext: bytes) -> None:
    blob = FieldCipher(Key(key_id, SECRET), "T", "p").seal(plaintext, ITEM_KEY)
    assert read_key_id(blob) == key_id
    assert read_key_id(bytearray(blob)) == key_id


# -- wire format -----------------------------------------------------------------------------------------


@settings(max_examples=50)
@given(
    key_id=key_ids,
    plaintext=st.binary(min_size=1, max_size=100),
    nonce=st.binary(min_size=NONCE_SIZE, max_size=NONCE_SIZE),
)
def test_header_layout_matches_the_documented_wire_format(key_id: str, plaintext: bytes, nonce: bytes) -> None:
    with fixed_nonces([nonce]):
        blob = FieldCipher(Key(key_id, SECRET), "Users", "email").seal(plaintext, ITEM_KEY)
    id_bytes = key_id.encode("ascii")
    assert blob[0] == FORMAT_VERSION == 1
    assert blob[1] == len(id_bytes)
    assert blob[2 : 2 + len(id_bytes)] == id_bytes
    start = 2 + len(id_bytes)
    assert blob[start : start + NONCE_SIZE] == nonce
    assert len(blob[start + NONCE_SIZE :]) == len(plaintext) + TAG_SIZE
    assert len(blob) == 2 + len(id_bytes) + 12 + len(plaintext) + 16


def test_random_nonce_sits_after_the_key_id() -> None:
    cipher = _cipher(key_id="key-0001")
    blob = cipher.seal(b"x", ITEM_KEY)
    assert blob[:10] == b"\x01\x08key-0001"
    assert len(blob) == 10 + NONCE_SIZE + 1 + TAG_SIZE


# -- FieldHasher -----------------------------------------------------------------------------------------


@settings(max_examples=100)
@given(data=st.binary(max_size=256))
def test_hasher_is_deterministic_and_base64url(data: bytes) -> None:
    a = FieldHasher(Key("idx1", SECRET), "table", "Users", "email").digest(data)
    b = FieldHasher(Key("idx1", SECRET), "table", "Users", "email").digest(data)
    assert a == b
    assert HMAC_SIZE >= 16  # at least 128 bits
    assert len(a) == HMAC_CHARS
    assert HMAC_RE.fullmatch(a)
    assert "=" not in a
    assert len(base64.urlsafe_b64decode(a + "=" * (-len(a) % 4))) == HMAC_SIZE


def test_hasher_reuse_gives_the_same_digest() -> None:
    hasher = FieldHasher(Key("idx1", SECRET), "table", "Users", "email")
    assert hasher.digest(b"a") == hasher.digest(b"a")
    assert hasher.digest(b"a") != hasher.digest(b"b")
    assert hasher.digest(b"a") == hasher.digest(b"a")


@pytest.mark.parametrize(
    "scope",
    [
        ("table", "Users", "name"),
        ("table", "Users2", "email"),
        ("table", "Usersemail"),
        ("table", "User", "semail"),
        ("shared", "Users", "email"),
        ("shared", "email"),
        (),
    ],
)
def test_hasher_differs_per_scope(scope: tuple[str, ...]) -> None:
    base = FieldHasher(Key("idx1", SECRET), "table", "Users", "email").digest(b"alice@example.com")
    other = FieldHasher(Key("idx1", SECRET), *scope).digest(b"alice@example.com")
    assert other != base


def test_hasher_differs_per_key() -> None:
    scope = ("table", "Users", "email")
    a = FieldHasher(Key("idx1", SECRET), *scope).digest(b"alice@example.com")
    b = FieldHasher(Key("idx1", OTHER_SECRET), *scope).digest(b"alice@example.com")
    assert a != b


def test_hasher_does_not_reveal_the_value() -> None:
    digest = FieldHasher(Key("idx1", SECRET), "table", "Users", "email").digest(b"alice")
    assert "alice" not in digest
    assert base64.urlsafe_b64encode(b"alice").decode().rstrip("=") not in digest


@settings(max_examples=100)
@given(a=st.binary(max_size=32), b=st.binary(max_size=32))
def test_hasher_distinguishes_values(a: bytes, b: bytes) -> None:
    hasher = FieldHasher(Key("idx1", SECRET), "table", "T", "f")
    assert (hasher.digest(a) == hasher.digest(b)) == (a == b)


# -- Key -------------------------------------------------------------------------------------------------


def test_key_repr_hides_the_secret() -> None:
    key = Key("k1", SECRET)
    assert repr(key) == "Key(id='k1', <secret>)"
    assert str(key) == "Key(id='k1', <secret>)"
    assert f"{key}" == "Key(id='k1', <secret>)"
    assert repr([key]) == "[Key(id='k1', <secret>)]"
    for form in _secret_forms(SECRET):
        assert form not in repr(key)
        assert form not in str(key)


def test_generated_key_repr_hides_the_secret() -> None:
    key = Key.generate("gen")
    assert repr(key) == "Key(id='gen', <secret>)"
    for form in _secret_forms(key.export_secret_bytes()):
        assert form not in repr(key)


def test_key_has_no_instance_dict() -> None:
    key = Key("k1", SECRET)
    assert not hasattr(key, "__dict__")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_a_key_raises_type_error(protocol: int) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Key("k1", SECRET), protocol=protocol)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_a_keyring_raises_type_error(protocol: int) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Keyring.generate(), protocol=protocol)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_a_derived_cipher_or_hasher_raises_type_error(protocol: int) -> None:
    """The derived keys inside a keyring's ciphers and hashers refuse pickling as keys do."""
    keyring = Keyring.generate()
    for derived in (keyring.hasher("table", "t", "email"), keyring.encrypting_cipher("t", "email")):
        with pytest.raises(TypeError):
            pickle.dumps(derived, protocol=protocol)


def test_pickling_a_container_of_keys_raises_type_error() -> None:
    with pytest.raises(TypeError):
        pickle.dumps({"keys": [Key("k1", SECRET)]})


def test_copies_of_keys_and_keyrings_are_the_same_object() -> None:
    key = Key("k1", SECRET)
    keyring = Keyring.generate()
    assert copy.copy(key) is key
    assert copy.deepcopy(key) is key
    assert copy.copy(keyring) is keyring
    assert copy.deepcopy(keyring) is keyring
    nested = copy.deepcopy({"a": [key, keyring]})
    assert nested["a"][0] is key
    assert nested["a"][1] is keyring


@pytest.mark.parametrize("length", [0, 1, 16, 24, 31, 33, 48, 64])
def test_key_rejects_wrong_lengths(length: int) -> None:
    with pytest.raises(ValueError) as excinfo:
        Key("k1", bytes(range(length)))
    message = str(excinfo.value)
    if length:
        for form in _secret_forms(bytes(range(length))):
            assert form not in message


@pytest.mark.parametrize("secret", [SECRET.hex()[:32], bytearray(SECRET), memoryview(SECRET), None, list(SECRET)])
def test_key_rejects_non_bytes_secrets(secret: object) -> None:
    with pytest.raises(ValueError):
        Key("k1", secret)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key_id",
    ["", "a" * 65, "k 1", "k/1", "ké", "k1\n", "\nk1", "k1\x00", "k#1", None, 1, b"k1"],
)
def test_key_rejects_bad_ids(key_id: object) -> None:
    with pytest.raises(ValueError):
        Key(key_id, SECRET)  # type: ignore[arg-type]


@pytest.mark.parametrize("key_id", ["k", "a" * 64, "Key.2024-01:v_1", "0"])
def test_key_accepts_good_ids(key_id: str) -> None:
    assert Key(key_id, SECRET).id == key_id


def test_key_base64_round_trip() -> None:
    key = Key.generate("k1")
    text = key.export_secret_base64()
    assert "=" not in text
    restored = Key.from_base64("k1", text)
    assert restored == key
    assert restored.export_secret_bytes() == key.export_secret_bytes()


def test_key_equality_compares_id_and_secret() -> None:
    assert Key("k1", SECRET) == Key("k1", SECRET)
    assert Key("k1", SECRET) != Key("k1", OTHER_SECRET)
    assert Key("k1", SECRET) != Key("k2", SECRET)
    assert Key("k1", SECRET).same_secret_as(Key("k2", SECRET))


def test_generated_keys_differ() -> None:
    assert not Key.generate("k1").same_secret_as(Key.generate("k1"))
