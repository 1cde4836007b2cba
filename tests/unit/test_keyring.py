"""Keyrings: construction, export/import, rotation, and how a model finds its keyring."""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import threading
import weakref
from collections import Counter, OrderedDict
from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pynamodb.attributes import UnicodeAttribute
from stashtest import offline_model, secret_forms

import pynamodb_stash
from pynamodb_stash import (
    ConfigurationError,
    DecryptionError,
    EncryptedAttribute,
    EncryptedModel,
    Key,
    KeyNotFoundError,
    KeyProviderError,
    Keyring,
    TenantKeyrings,
    configure,
    tenant,
)
from pynamodb_stash._crypto import InvalidCiphertext, read_key_id

ENV_VAR = "PYNAMODB_STASH_KEYRING"
PREFIX = "stash-keyring:v1:"
K1 = bytes(range(32))
K2 = bytes(range(32, 64))
K3 = bytes(range(64, 96))
IDX = bytes(range(200, 232))
ITEM_KEY = b"S\x00\x02u1"


pytestmark = pytest.mark.usefixtures("offline")


def assert_no_secrets(message: str, *secrets: bytes) -> None:
    for form in secret_forms(*secrets):
        assert form not in message


def make_model(keyring: Keyring | None = None, *, table: str = "Users", name: str = "User") -> Any:
    return offline_model(
        name,
        table,
        keyring=keyring,
        email=EncryptedAttribute(str, equality=True),
        name=EncryptedAttribute(str, null=True),
    )


def written_key_id(model: Any, **values: Any) -> str:
    item = model(pk="u1", email="alice@example.com", **values).serialize()
    return read_key_id(item["email__source"]["B"])


def encoded(data: Any) -> str:
    return PREFIX + base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def b64(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).decode().rstrip("=")


# -- Keyring.local ---------------------------------------------------------------------------------------


def test_local_keyring_ids() -> None:
    keyring = Keyring.local(K1, index_key=IDX, decrypt_only={"k0": K2, "old": K3})
    assert keyring.primary_key_id == "k1"
    assert keyring.key_ids[0] == "k1"
    assert set(keyring.key_ids) == {"k1", "k0", "old"}
    assert keyring.index_key_id == "idx1"
    custom = Keyring.local(K1, index_key=IDX, key_id="enc-2024", index_key_id="hmac-2024")
    assert custom.primary_key_id == "enc-2024"
    assert custom.index_key_id == "hmac-2024"


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_local_rejects_wrong_key_lengths(length: int) -> None:
    bad = bytes(range(100, 100 + length))
    with pytest.raises(ConfigurationError) as excinfo:
        Keyring.local(bad, index_key=IDX)
    assert_no_secrets(str(excinfo.value), IDX, *( [bad] if bad else []))
    with pytest.raises(ConfigurationError) as excinfo:
        Keyring.local(K1, index_key=bad)
    assert_no_secrets(str(excinfo.value), K1, *( [bad] if bad else []))
    with pytest.raises(ConfigurationError) as excinfo:
        Keyring.local(K1, index_key=IDX, decrypt_only={"k0": bad})
    assert_no_secrets(str(excinfo.value), K1, IDX, *( [bad] if bad else []))


@pytest.mark.parametrize("key", [K1.hex(), bytearray(K1), None, list(K1)])
def test_local_rejects_non_bytes_keys(key: Any) -> None:
    with pytest.raises(ConfigurationError):
        Keyring.local(key, index_key=IDX)


def test_local_rejects_index_key_equal_to_encryption_key() -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        Keyring.local(K1, index_key=K1)
    assert_no_secrets(str(excinfo.value), K1)
    with pytest.raises(ConfigurationError):
        Keyring.local(K1, index_key=K2, decrypt_only={"k0": K2})


def test_local_rejects_clashing_ids() -> None:
    with pytest.raises(ConfigurationError):
        Keyring.local(K1, index_key=IDX, decrypt_only={"k1": K2})
    with pytest.raises(ConfigurationError):
        Keyring.local(K1, index_key=IDX, key_id="same", index_key_id="same")
    with pytest.raises(ConfigurationError):
        Keyring.local(K1, index_key=IDX, index_key_id="k0", decrypt_only={"k0": K2})


@pytest.mark.parametrize("key_id", ["", "has space", "a" * 65, "ключ"])
def test_local_rejects_bad_key_ids(key_id: str) -> None:
    with pytest.raises(ConfigurationError):
        Keyring.local(K1, index_key=IDX, key_id=key_id)
    with pytest.raises(ConfigurationError):
        Keyring.local(K1, index_key=IDX, index_key_id=key_id)
    with pytest.raises(ConfigurationError):
        Keyring.local(K1, index_key=IDX, decrypt_only={key_id: K2})


def test_constructor_rejects_clashing_ids() -> None:
    with pytest.raises(ConfigurationError):
        Keyring(Key("k1", K1), index_key=Key("idx", IDX), decrypt_only=(Key("k1", K2),))
    with pytest.raises(ConfigurationError):
        Keyring(Key("k1", K1), index_key=Key("k1", IDX))


# -- generate / export / from_string ---------------------------------------------------------------------


def test_generate_gives_fresh_keys() -> None:
    a, b = Keyring.generate(), Keyring.generate()
    assert a.primary_key_id == "k1"
    assert a.index_key_id == "idx1"
    assert a.export_secret_string() != b.export_secret_string()
    custom = Keyring.generate(key_id="k7", index_key_id="i7")
    assert (custom.primary_key_id, custom.index_key_id, custom.key_ids) == ("k7", "i7", ("k7",))


def test_generate_does_not_reuse_the_encryption_key_as_index_key() -> None:
    data = json.loads(base64.urlsafe_b64decode(Keyring.generate().export_secret_string()[len(PREFIX):] + "=="))
    assert data["index"]["key"] != data["keys"]["k1"]


def test_export_from_string_round_trip_keeps_ids() -> None:
    original = Keyring.local(K1, index_key=IDX, key_id="k2", decrypt_only={"k1": K2, "k0": K3})
    text = original.export_secret_string()
    assert text.startswith(PREFIX)
    restored = Keyring.from_string(text)
    assert restored.primary_key_id == "k2"
    assert set(restored.key_ids) == {"k2", "k1", "k0"}
    assert restored.key_ids[0] == "k2"
    assert restored.index_key_id == "idx1"
    assert restored.export_secret_string() == text


def test_restored_keyring_decrypts_what_the_original_wrote() -> None:
    original = Keyring.generate()
    restored = Keyring.from_string(original.export_secret_string())
    blob = original.encrypting_cipher("Users", "email").seal(b"alice", ITEM_KEY)
    assert restored.decrypting_cipher("k1", "Users", "email").open(blob, ITEM_KEY) == b"alice"
    assert original.hasher("table", "Users", "email").digest(b"alice") == restored.hasher(
        "table", "Users", "email"
    ).digest(b"alice")

    writer, reader = make_model(original, name="Writer"), make_model(restored, name="Reader")
    raw = writer(pk="u1", email="alice@example.com", name="Alice").serialize()
    user = reader.from_raw_data(raw)
    assert (user.email, user.name) == ("alice@example.com", "Alice")
    assert writer.email.hmac("alice@example.com") == reader.email.hmac("alice@example.com")


def test_from_string_accepts_surrounding_newline() -> None:
    text = Keyring.generate().export_secret_string()
    assert Keyring.from_string(text + "\n").primary_key_id == "k1"


def test_from_string_rejects_index_key_equal_to_an_encryption_key() -> None:
    """``Keyring.local`` refuses this; the string form (what production deploys use) must too."""
    text = encoded({"primary": "k1", "keys": {"k1": b64(K1)}, "index": {"id": "idx1", "key": b64(K1)}})
    with pytest.raises(ConfigurationError) as excinfo:
        Keyring.from_string(text)
    assert_no_secrets(str(excinfo.value), K1)


# -- from_env --------------------------------------------------------------------------------------------


def test_from_env_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is read until first use; then an unset variable says what to set."""
    with pytest.raises(ConfigurationError) as excinfo:
        _ = Keyring.from_env().primary_key_id
    assert ENV_VAR in str(excinfo.value) and "pynamodb-stash keygen" in str(excinfo.value)
    monkeypatch.setenv(ENV_VAR, "")
    with pytest.raises(ConfigurationError):
        _ = Keyring.from_env().primary_key_id
    with pytest.raises(ConfigurationError) as excinfo:
        _ = Keyring.from_env("MY_APP_KEYRING_NOT_SET").key_ids
    assert "MY_APP_KEYRING_NOT_SET" in str(excinfo.value)
    assert "not read yet" in repr(Keyring.from_env())


def test_a_model_declared_with_from_env_imports_without_it_and_works_once_it_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    model = offline_model("FromEnv", keyring=Keyring.from_env(), secret=EncryptedAttribute(str))  # no error
    with pytest.raises(ConfigurationError) as excinfo:
        model(pk="p", secret="s").serialize()
    assert ENV_VAR in str(excinfo.value)
    keyring = Keyring.local(K1, index_key=IDX, key_id="env1")
    monkeypatch.setenv(ENV_VAR, keyring.export_secret_string())
    item = model(pk="p", secret="s").serialize()
    assert item["secret__source"]["B"][2:6] == b"env1"
    assert model.from_raw_data(item).secret == "s"
    assert "env1" in repr(model.Meta.keyring)


def test_from_env_reads_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Keyring.local(K1, index_key=IDX, key_id="env1")
    monkeypatch.setenv(ENV_VAR, original.export_secret_string())
    assert Keyring.from_env().primary_key_id == "env1"
    monkeypatch.setenv("OTHER_KEYRING", Keyring.local(K2, index_key=IDX, key_id="other").export_secret_string())
    assert Keyring.from_env("OTHER_KEYRING").primary_key_id == "other"


VALID = {"primary": "k1", "keys": {"k1": b64(K1), "k0": b64(K2)}, "index": {"id": "idx1", "key": b64(IDX)}}
MALFORMED = {
    "no-prefix": b64(K1),
    "other-prefix": "stash-keyring:v2:" + encoded(VALID)[len(PREFIX):],
    "prefix-only": PREFIX,
    "not-base64": PREFIX + "!!!!@@@@",
    "bad-base64-length": PREFIX + "A",
    "not-json": PREFIX + base64.urlsafe_b64encode(b"k1=" + K1).decode(),
    "not-utf8": PREFIX + base64.urlsafe_b64encode(b"\xff\xfe" + K1).decode(),
    "json-list": encoded([VALID]),
    "no-keys": encoded({k: v for k, v in VALID.items() if k != "keys"}),
    "keys-not-object": encoded({**VALID, "keys": [b64(K1)]}),
    "no-primary": encoded({k: v for k, v in VALID.items() if k != "primary"}),
    "primary-not-a-key": encoded({**VALID, "primary": "k9"}),
    "primary-unhashable": encoded({**VALID, "primary": ["k1"]}),
    "short-key": encoded({**VALID, "keys": {"k1": b64(K1[:31]), "k0": b64(K2)}}),
    "long-key": encoded({**VALID, "keys": {"k1": b64(K1 + K2), "k0": b64(K2)}}),
    "key-not-string": encoded({**VALID, "keys": {"k1": list(K1), "k0": b64(K2)}}),
    "bad-key-id": encoded({**VALID, "keys": {"k1": b64(K1), "bad id": b64(K2)}}),
    "no-index": encoded({k: v for k, v in VALID.items() if k != "index"}),
    "index-not-object": encoded({**VALID, "index": b64(IDX)}),
    "index-short": encoded({**VALID, "index": {"id": "idx1", "key": b64(IDX[:20])}}),
    "index-bad-id": encoded({**VALID, "index": {"id": "", "key": b64(IDX)}}),
    "index-id-clash": encoded({**VALID, "index": {"id": "k0", "key": b64(IDX)}}),
    "truncated": encoded(VALID)[:-12],
    # Review issue 12, finding 11: what the lenient parser accepted.
    "junk-in-payload": PREFIX + encoded(VALID)[len(PREFIX):][:30] + "!!!!" + encoded(VALID)[len(PREFIX):][30:],
    "space-in-payload": PREFIX + encoded(VALID)[len(PREFIX):][:30] + "    " + encoded(VALID)[len(PREFIX):][30:],
    "space-after-prefix": PREFIX + " " + encoded(VALID)[len(PREFIX):],
    "junk-in-key": encoded({**VALID, "keys": {"k1": b64(K1)[:20] + "****" + b64(K1)[20:], "k0": b64(K2)}}),
    "newline-in-key": encoded({**VALID, "keys": {"k1": b64(K1) + "  \n ", "k0": b64(K2)}}),
    "standard-alphabet-key": encoded({**VALID, "keys": {"k1": b64(K1), "k0": "+/" + b64(K2)[2:]}}),
    "all-zero-key": encoded({**VALID, "keys": {"k1": b64(K1), "k0": b64(bytes(32))}}),
    "all-zero-index": encoded({**VALID, "index": {"id": "idx1", "key": b64(bytes(32))}}),
    "one-secret-two-ids": encoded({**VALID, "keys": {"k1": b64(K1), "k0": b64(K1)}}),
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_from_env_malformed(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv(ENV_VAR, text)
    with pytest.raises(ConfigurationError) as excinfo:
        _ = Keyring.from_env().primary_key_id
    message = str(excinfo.value)
    assert ENV_VAR in message
    assert_no_secrets(message, K1, K2, IDX, K1[:31], IDX[:20], K1 + K2)
    assert text[len(PREFIX):][:16] not in message or len(text) <= len(PREFIX) + 4
    assert excinfo.value.__cause__ is None


def test_valid_fixture_is_valid() -> None:
    """The malformed cases above are variations of a keyring that does load."""
    keyring = Keyring.from_string(encoded(VALID))
    assert keyring.primary_key_id == "k1"


# -- rotation --------------------------------------------------------------------------------------------


def test_decrypt_only_keys_read_old_values_and_new_values_use_the_primary() -> None:
    old = Keyring.local(K1, index_key=IDX, key_id="k1")
    new = Keyring.local(K2, index_key=IDX, key_id="k2", decrypt_only={"k1": K1})
    blob = old.encrypting_cipher("Users", "email").seal(b"old value", ITEM_KEY)
    assert read_key_id(blob) == "k1"
    assert new.decrypting_cipher("k1", "Users", "email").open(blob, ITEM_KEY) == b"old value"
    fresh = new.encrypting_cipher("Users", "email").seal(b"new value", ITEM_KEY)
    assert read_key_id(fresh) == "k2"
    with pytest.raises(InvalidCiphertext):
        new.decrypting_cipher("k2", "Users", "email").open(blob, ITEM_KEY)


def test_rotation_through_a_model() -> None:
    old = Keyring.local(K1, index_key=IDX, key_id="k1")
    new = Keyring.local(K2, index_key=IDX, key_id="k2", decrypt_only={"k1": K1})
    before, after = make_model(old, name="Before"), make_model(new, name="After")
    raw_old = before(pk="u1", email="alice@example.com", name="Alice").serialize()
    user = after.from_raw_data(raw_old)
    assert (user.email, user.name) == ("alice@example.com", "Alice")
    assert written_key_id(after) == "k2"
    # The index key did not change, so HMACs (and every index) stay valid across rotation.
    assert before.email.hmac("alice@example.com") == after.email.hmac("alice@example.com")
    raw_new = after(pk="u1", email="alice@example.com", name="Alice").serialize()
    with pytest.raises(KeyNotFoundError) as excinfo:
        before.from_raw_data(raw_new)
    assert "k2" in str(excinfo.value)
    assert excinfo.value.code == "key_not_found"


def test_unknown_key_id_names_the_id() -> None:
    keyring = Keyring.local(K1, index_key=IDX)
    with pytest.raises(KeyNotFoundError) as excinfo:
        keyring.decrypting_cipher("retired-2019", "Users", "email")
    assert "retired-2019" in str(excinfo.value)
    assert_no_secrets(str(excinfo.value), K1, IDX)
    with pytest.raises(KeyNotFoundError):
        keyring.decrypting_cipher("idx1", "Users", "email")  # the index key never decrypts


def test_unknown_key_id_through_a_model_names_the_id_and_model() -> None:
    writer = make_model(Keyring.local(K1, index_key=IDX, key_id="legacy-7"), name="Writer")
    reader = make_model(Keyring.local(K2, index_key=IDX, key_id="k2"), name="Reader")
    raw = writer(pk="u1", email="alice@example.com").serialize()
    with pytest.raises(KeyNotFoundError) as excinfo:
        reader.from_raw_data(raw)
    message = str(excinfo.value)
    assert "legacy-7" in message
    assert "Reader" in message
    assert "alice@example.com" not in message


def test_same_ids_different_secrets_fail_to_decrypt() -> None:
    writer = make_model(Keyring.local(K1, index_key=IDX), name="Writer")
    reader = make_model(Keyring.local(K2, index_key=IDX), name="Reader")
    raw = writer(pk="u1", email="alice@example.com").serialize()
    with pytest.raises(DecryptionError):
        reader.from_raw_data(raw)


# -- where a model finds its keyring ---------------------------------------------------------------------


def test_resolution_order_meta_then_configure_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    meta = Keyring.local(K1, index_key=IDX, key_id="meta1")
    configured = Keyring.local(K2, index_key=IDX, key_id="conf1")
    env = Keyring.local(K3, index_key=IDX, key_id="env1")
    with_meta, without_meta = make_model(meta, name="WithMeta"), make_model(None, name="WithoutMeta")

    monkeypatch.setenv(ENV_VAR, env.export_secret_string())
    assert written_key_id(without_meta) == "env1"
    assert written_key_id(with_meta) == "meta1"

    configure(keyring=configured)
    assert written_key_id(without_meta) == "conf1"
    assert written_key_id(with_meta) == "meta1"

    configure(keyring=None)
    assert written_key_id(without_meta) == "env1"

    monkeypatch.delenv(ENV_VAR)
    configure(keyring=configured)
    assert written_key_id(without_meta) == "conf1"


def test_env_keyring_follows_changes_of_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    model = make_model(None)
    monkeypatch.setenv(ENV_VAR, Keyring.local(K1, index_key=IDX, key_id="first").export_secret_string())
    assert written_key_id(model) == "first"
    monkeypatch.setenv(ENV_VAR, Keyring.local(K2, index_key=IDX, key_id="second").export_secret_string())
    assert written_key_id(model) == "second"


def test_configured_keyring_reads_and_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(keyring=Keyring.local(K1, index_key=IDX))
    model = make_model(None)
    raw = model(pk="u1", email="alice@example.com", name="Alice").serialize()
    assert model.from_raw_data(raw).name == "Alice"
    assert pynamodb_stash.configure is configure


@pytest.mark.parametrize("bad", ["stash-keyring:v1:...", b"bytes", object(), Key("k1", K1)])
def test_configure_rejects_non_keyrings(bad: Any) -> None:
    with pytest.raises(ConfigurationError):
        configure(keyring=bad)


def test_configure_takes_a_keyword_only() -> None:
    with pytest.raises(TypeError):
        configure(Keyring.generate())  # type: ignore[call-arg]


def test_no_keyring_fails_at_first_use_not_at_class_creation() -> None:
    model = make_model(None, name="Orphan")  # no error here
    assert model.get_attributes()["email"].attr_name == "email__source"
    with pytest.raises(ConfigurationError) as excinfo:
        model(pk="u1", email="alice@example.com").serialize()
    assert "Orphan" in str(excinfo.value)
    assert ENV_VAR in str(excinfo.value)
    raw = make_model(Keyring.generate(), name="Writer")(pk="u1", email="alice@example.com").serialize()
    with pytest.raises(ConfigurationError):
        model.from_raw_data(raw)
    with pytest.raises(ConfigurationError):
        model.email == "alice@example.com"  # noqa: B015
    with pytest.raises(ConfigurationError):
        model.email.hmac("alice@example.com")


def test_malformed_env_keyring_fails_at_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, MALFORMED["short-key"])
    model = make_model(None, name="Misconfigured")  # no error here
    with pytest.raises(ConfigurationError) as excinfo:
        model(pk="u1", email="alice@example.com").serialize()
    assert ENV_VAR in str(excinfo.value)
    assert_no_secrets(str(excinfo.value), K1, K1[:31], K2, IDX)


@pytest.mark.parametrize("bad", ["not a keyring", Key("k1", K1), {"keys": {}}])
def test_meta_keyring_of_the_wrong_type_fails_at_first_use(bad: Any) -> None:
    meta = type("Meta", (), {"table_name": "Users", "keyring": bad})
    model = type(
        "BadMeta",
        (EncryptedModel,),
        {"Meta": meta, "pk": UnicodeAttribute(hash_key=True), "email": EncryptedAttribute(str)},
    )
    with pytest.raises(ConfigurationError) as excinfo:
        model(pk="u1", email="alice@example.com").serialize()
    assert "BadMeta" in str(excinfo.value)


# -- printing --------------------------------------------------------------------------------------------


def test_keyring_repr_has_ids_only() -> None:
    keyring = Keyring.local(K1, index_key=IDX, key_id="k2", index_key_id="hmac1", decrypt_only={"k1": K2})
    text = repr(keyring)
    for key_id in ("k2", "k1", "hmac1"):
        assert key_id in text
    assert_no_secrets(text, K1, K2, IDX)
    assert_no_secrets(str(keyring), K1, K2, IDX)
    assert keyring.export_secret_string()[len(PREFIX):][:20] not in text


def test_generated_keyring_repr_has_no_secrets() -> None:
    keyring = Keyring.generate()
    data = json.loads(base64.urlsafe_b64decode(keyring.export_secret_string()[len(PREFIX):] + "=="))
    for secret in (data["keys"]["k1"], data["index"]["key"]):
        assert secret not in repr(keyring)
        assert base64.urlsafe_b64decode(secret + "=").hex() not in repr(keyring)


def test_with_new_primary_keeps_old_keys_for_reading_and_the_index_key() -> None:
    old = Keyring.generate(key_id="k1")
    new = old.with_new_primary(bytes(range(32)), key_id="k2")
    assert new.primary_key_id == "k2" and new.key_ids == ("k2", "k1") and new.index_key_id == old.index_key_id
    assert new.hasher("t", "a").digest(b"x") == old.hasher("t", "a").digest(b"x")
    with pytest.raises(ConfigurationError):
        old.with_new_primary(bytes(range(32)), key_id="k1")
    with pytest.raises(ConfigurationError):
        old.with_new_primary(b"short", key_id="k3")


# -- TenantKeyrings: a bounded cache (review issue 12, finding 8) -----------------------------------------


class CountingKeyrings:
    """A ``keyring_for`` that builds a fresh keyring object per call from fixed per-tenant keys, and
    counts its calls, so a test sees every time TenantKeyrings had to ask again."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Keyring:
        with self._lock:
            self.calls[name] += 1
        return self.keyring(name)

    @staticmethod
    def keyring(name: str) -> Keyring:
        secret = hashlib.sha256(b"encryption:" + name.encode()).digest()
        index = hashlib.sha256(b"index:" + name.encode()).digest()
        return Keyring.local(secret, index_key=index, key_id=f"key-{name}")


class FailingSource:
    """A keyring source whose ``current()`` raises, as a KMS source of a missing keyset does."""

    def __init__(self, name: str) -> None:
        self.name = name

    def current(self) -> Keyring:
        raise KeyProviderError(f"keyset {self.name!r} has no active encryption key")


def kept(keyrings: TenantKeyrings) -> int:
    """How many tenants ``keyrings`` keeps, as its repr says."""
    return int(repr(keyrings).split("kept=")[1].rstrip(")"))


@pytest.mark.parametrize("bad", [0, -1, True, False, 1.0, "8", None])
def test_tenant_keyrings_take_a_positive_int_max_tenants(bad: Any) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        TenantKeyrings(CountingKeyrings(), max_tenants=bad)
    assert "max_tenants" in str(excinfo.value)
    assert TenantKeyrings(CountingKeyrings(), max_tenants=1).max_tenants == 1
    keyrings = TenantKeyrings(CountingKeyrings())
    assert keyrings.max_tenants == 1024
    with pytest.raises(AttributeError):
        keyrings.max_tenants = bad  # type: ignore[misc]


def test_tenant_keyrings_keep_a_tenant_and_give_its_own_keyring() -> None:
    keyring_for = CountingKeyrings()
    keyrings = TenantKeyrings(keyring_for, max_tenants=4)
    first = keyrings.for_tenant("acme")
    assert first.primary_key_id == "key-acme"
    assert all(keyrings.for_tenant("acme") is first for _ in range(100))
    assert keyrings.for_tenant("globex").primary_key_id == "key-globex"
    assert keyring_for.calls == {"acme": 1, "globex": 1}


def test_more_tenants_than_max_tenants_stay_at_the_bound() -> None:
    keyring_for = CountingKeyrings()
    keyrings = TenantKeyrings(keyring_for, max_tenants=8)
    held = {}
    for i in range(2000):  # bogus names from tampered items, say, whose keyrings do load
        held[f"t{i}"] = weakref.ref(keyrings.for_tenant(f"t{i}"))
    gc.collect()
    alive = sorted(name for name, ref in held.items() if ref() is not None)
    assert alive == sorted(f"t{i}" for i in range(1992, 2000))  # only the last 8 are held in memory
    assert kept(keyrings) == 8
    for i in range(1992, 2000):
        keyrings.for_tenant(f"t{i}")
    assert sum(keyring_for.calls.values()) == 2000  # the kept ones did not ask again
    keyrings.for_tenant("t0")
    assert keyring_for.calls["t0"] == 2  # dropped, so asked again


def test_the_least_recently_used_tenant_is_dropped_first() -> None:
    keyring_for = CountingKeyrings()
    keyrings = TenantKeyrings(keyring_for, max_tenants=3)
    for name in ("a", "b", "c", "a", "d"):  # b is now the least recently used
        keyrings.for_tenant(name)
    assert keyring_for.calls == {"a": 1, "b": 1, "c": 1, "d": 1}
    keyrings.for_tenant("a")
    keyrings.for_tenant("c")
    assert keyring_for.calls == {"a": 1, "b": 1, "c": 1, "d": 1}  # a, c, d kept
    keyrings.for_tenant("b")  # drops d, the least recently used now
    assert keyring_for.calls["b"] == 2
    keyrings.for_tenant("a")
    keyrings.for_tenant("c")
    keyrings.for_tenant("d")
    assert keyring_for.calls == {"a": 1, "b": 2, "c": 1, "d": 2}


@given(
    max_tenants=st.integers(min_value=1, max_value=6),
    names=st.lists(st.sampled_from("abcdefghij"), max_size=60),
)
def test_tenant_keyrings_ask_again_exactly_when_an_lru_would(max_tenants: int, names: list[str]) -> None:
    keyring_for = CountingKeyrings()
    keyrings = TenantKeyrings(keyring_for, max_tenants=max_tenants)
    model: OrderedDict[str, None] = OrderedDict()
    expected: Counter[str] = Counter()
    for name in names:
        if name in model:
            model.move_to_end(name)
        else:
            expected[name] += 1
            model[name] = None
            if len(model) > max_tenants:
                model.popitem(last=False)
        assert keyrings.for_tenant(name).primary_key_id == f"key-{name}"
        assert keyring_for.calls == expected


def test_a_failing_keyring_for_is_not_kept_and_drops_no_one() -> None:
    calls: Counter[str] = Counter()
    rings = {"acme": Keyring.generate(key_id="acme-1")}

    def keyring_for(name: str) -> Keyring:
        calls[name] += 1
        return rings[name]  # KeyError for a tenant that does not exist

    keyrings = TenantKeyrings(keyring_for, max_tenants=1)
    assert keyrings.for_tenant("acme") is rings["acme"]
    for attempt in (1, 2, 3):
        with pytest.raises(KeyError):
            keyrings.for_tenant("bogus")
        assert calls["bogus"] == attempt  # asked again each time: nothing was kept
    assert keyrings.for_tenant("acme") is rings["acme"]
    assert calls["acme"] == 1  # the failures did not push the kept tenant out
    rings["bogus"] = Keyring.generate(key_id="bogus-1")
    assert keyrings.for_tenant("bogus").primary_key_id == "bogus-1"  # once it exists, it loads


def test_a_source_whose_current_fails_is_not_kept_and_drops_no_one() -> None:
    calls: Counter[str] = Counter()
    acme = Keyring.generate(key_id="acme-1")

    def keyring_for(name: str) -> Any:
        calls[name] += 1
        return acme if name == "acme" else FailingSource(name)

    keyrings = TenantKeyrings(keyring_for, max_tenants=1)
    keyrings.for_tenant("acme")
    for attempt in (1, 2, 3):
        with pytest.raises(KeyProviderError) as excinfo:
            keyrings.for_tenant("missing")
        assert "missing" in str(excinfo.value)
        assert calls["missing"] == attempt
    assert keyrings.for_tenant("acme") is acme and calls["acme"] == 1
    assert kept(keyrings) == 1


@pytest.mark.parametrize("failure", [KeyProviderError, ConfigurationError])
def test_a_kept_source_that_starts_failing_is_dropped(failure: type[Exception]) -> None:
    """A KMS source reloads after its TTL; if that reload fails (a destroyed keyset), it is not kept.

    KeyProviderError: its ``current()`` raises; ConfigurationError: it returns something not a keyring.
    """
    ring = Keyring.generate(key_id="acme-1")
    healthy = [True]
    built: list[Any] = []

    class Source:
        def current(self) -> Any:
            if healthy[0]:
                return ring
            if failure is KeyProviderError:
                raise KeyProviderError("keyset 'acme' has no active encryption key")
            return {"keys": "not a keyring"}

    def keyring_for(name: str) -> Any:
        built.append(Source())
        return built[-1]

    keyrings = TenantKeyrings(keyring_for, max_tenants=4)
    assert keyrings.for_tenant("acme") is ring and keyrings.for_tenant("acme") is ring
    assert len(built) == 1
    healthy[0] = False
    with pytest.raises(failure) as excinfo:
        keyrings.for_tenant("acme")
    assert "acme" in str(excinfo.value)
    assert len(built) == 1 and kept(keyrings) == 0
    with pytest.raises(failure):
        keyrings.for_tenant("acme")
    assert len(built) == 2  # the failed source was dropped: a new one was asked for
    healthy[0] = True
    assert keyrings.for_tenant("acme") is ring and keyrings.for_tenant("acme") is ring
    assert len(built) == 3 and kept(keyrings) == 1


@pytest.mark.parametrize(
    "keyring_for",
    [
        pytest.param(lambda name: "stash-keyring:v1:...", id="keyring_for-gives-a-string"),
        pytest.param(
            lambda name: type("Odd", (), {"current": lambda self: "not a keyring"})(), id="current-gives-a-string"
        ),
    ],
)
def test_something_that_is_not_a_keyring_is_refused_and_not_kept(keyring_for: Callable[[str], Any]) -> None:
    calls: Counter[str] = Counter()

    def counted(name: str) -> Any:
        calls[name] += 1
        return keyring_for(name)

    keyrings = TenantKeyrings(counted)
    for attempt in (1, 2):
        with pytest.raises(ConfigurationError) as excinfo:
            keyrings.for_tenant("acme")
        assert "'acme'" in str(excinfo.value) and "str" in str(excinfo.value)
        assert calls["acme"] == attempt


def test_tenant_keyrings_through_a_model_survive_eviction() -> None:
    keyring_for = CountingKeyrings()
    model = offline_model(
        "Contact",
        keyring=TenantKeyrings(keyring_for, attribute="tenant_id", max_tenants=2),  # type: ignore[arg-type]
        tenant_id=UnicodeAttribute(),
        email=EncryptedAttribute(str, equality=True),
    )
    names = ["acme", "globex", "initech", "umbrella"]
    raw = {name: model(pk=name, tenant_id=name, email=f"pat@{name}.example").serialize() for name in names}
    for _ in range(2):
        for name in names:  # every tenant was dropped and loaded again since it wrote
            assert model.from_raw_data(raw[name]).email == f"pat@{name}.example"
    assert read_key_id(raw["acme"]["email__source"]["B"]) == "key-acme"
    with tenant("globex"):
        assert model.email.hmac("pat@globex.example") == raw["globex"]["email__hmac"]["S"]
    assert all(count >= 2 for count in keyring_for.calls.values())


def test_tenant_keyrings_are_shared_safely_between_threads() -> None:
    keyring_for = CountingKeyrings()
    keyrings = TenantKeyrings(keyring_for, max_tenants=5)
    names = [f"t{i}" for i in range(12)]  # more than are kept: threads drop and reload all the time
    errors: list[BaseException] = []
    wrong: list[tuple[str, str]] = []
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(3000):
                name = names[(i * (worker + 1) + worker) % len(names)]
                got = keyrings.for_tenant(name).primary_key_id
                if got != f"key-{name}":
                    wrong.append((name, got))
                hot = keyrings.for_tenant("t0").primary_key_id  # one tenant every thread keeps using
                if hot != "key-t0":
                    wrong.append(("t0", hot))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and wrong == []
    assert kept(keyrings) <= 5
    gc.collect()
    loaded = [keyrings.for_tenant(name) for name in names[-5:]]
    assert [ring.primary_key_id for ring in loaded] == [f"key-{name}" for name in names[-5:]]
    assert kept(keyrings) == 5


def test_tenant_keyrings_repr_shows_no_secret_and_no_tenant() -> None:
    keyrings = TenantKeyrings(CountingKeyrings(), attribute="tenant_id", max_tenants=16)
    ring = keyrings.for_tenant("acme-secret-customer")
    text = repr(keyrings)
    assert text == "TenantKeyrings(attribute='tenant_id', max_tenants=16, kept=1)"
    data = json.loads(base64.urlsafe_b64decode(ring.export_secret_string()[len(PREFIX):] + "=="))
    assert_no_secrets(text, *(base64.urlsafe_b64decode(k + "=") for k in data["keys"].values()))
    assert "acme-secret-customer" not in text
