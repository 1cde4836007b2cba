"""Errors raised in realistic misuse never carry a plaintext, ciphertext, HMAC or key byte.

Each test provokes an error the way an application would (a wrong value, a tampered item, a retired
key, a broken environment variable) and checks the message, the args and the whole printed traceback
(which shows chained exceptions) for every form the secret could take.
"""

from __future__ import annotations

import base64
import json
import traceback
from datetime import datetime
from typing import Any, Callable

import pytest
from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from stashtest import offline_model, secret_forms

from pynamodb_stash import (
    ConfigurationError,
    DecryptionError,
    EncryptedAttribute,
    EncryptedModel,
    EncryptionError,
    KeyNotFoundError,
    Keyring,
    StashError,
)

ENV_VAR = "PYNAMODB_STASH_KEYRING"
MARKER = "PLAINTEXT-MARKER-c0ffee-4242"
KEY = bytes(range(7, 39))
OLD_KEY = bytes(range(50, 82))
INDEX_KEY = bytes(range(120, 152))
KEYRING = Keyring.local(KEY, index_key=INDEX_KEY, key_id="k2", decrypt_only={"k1": OLD_KEY})


pytestmark = pytest.mark.usefixtures("offline")


def make_user(keyring: Keyring | None = KEYRING, *, name: str = "User", note: Any = None) -> Any:
    return offline_model(
        name,
        keyring=keyring,
        email=EncryptedAttribute(str, equality=True),
        name=EncryptedAttribute(str, null=True),
        age=EncryptedAttribute(int, null=True),
        born=EncryptedAttribute(datetime, null=True),
        profile=EncryptedAttribute(dict, null=True),
        tags=EncryptedAttribute(set, null=True),
        note=EncryptedAttribute(note if note is not None else UnicodeAttribute(), null=True),
    )


User = make_user()


def forms(data: bytes) -> list[str]:
    """Every textual form bytes might be printed in, 8 characters or longer."""
    return secret_forms(data, min_length=8)


KEY_FORMS = [f for key in (KEY, OLD_KEY, INDEX_KEY) for f in forms(key)]


def assert_clean(error: BaseException, *, texts: tuple[str, ...] = (), blobs: tuple[bytes, ...] = ()) -> None:
    assert isinstance(error, StashError), f"expected a StashError, got {type(error).__name__}: {error}"
    printed = "".join(traceback.format_exception(error))
    places = [str(error), repr(error), printed, *(str(a) for a in error.args)]
    secrets = [MARKER, *texts, *KEY_FORMS, *(f for blob in blobs for f in forms(blob))]
    for place in places:
        for secret in secrets:
            assert secret not in place, f"{secret!r} leaked into {place!r}"


def raised(action: Callable[[], Any]) -> BaseException:
    try:
        action()
    except BaseException as error:  # noqa: BLE001 - the test inspects whatever comes out
        return error
    raise AssertionError("no error was raised")


def base_item(**values: Any) -> dict[str, dict[str, Any]]:
    fields = {"email": f"{MARKER}@example.com", "name": MARKER, "age": 4242}
    fields.update(values)
    return User(pk="u1", **fields).serialize()


# -- wrong values ----------------------------------------------------------------------------------------

WRONG_VALUES = {
    "str-for-int": {"age": MARKER},
    "bool-for-int": {"age": True},
    "bytes-for-str": {"name": MARKER.encode()},
    "int-for-str": {"name": 4242424242},
    "naive-datetime": {"born": datetime(1987, 6, 5, 4, 3, 2)},
    "str-for-datetime": {"born": MARKER},
    "tuple-in-dict": {"profile": {"k": (MARKER,)}},
    "non-str-key": {"profile": {4242: MARKER}},
    "bytes-in-dict": {"profile": {"k": MARKER.encode()}},
    "set-with-int": {"tags": {MARKER, 4242}},
    "list-for-set": {"tags": [MARKER]},
    "str-for-str-set": {"tags": MARKER},
}


@pytest.mark.parametrize("values", WRONG_VALUES.values(), ids=WRONG_VALUES.keys())
def test_wrong_value_on_save(values: dict[str, Any]) -> None:
    user = User(pk="u1", email="a@example.com", **values)
    error = raised(user.serialize)
    assert isinstance(error, EncryptionError)
    (value,) = values.values()
    assert_clean(error, texts=(repr(value), str(value)))
    assert "User" in str(error)
    assert list(values)[0] in str(error)


@pytest.mark.parametrize("values", WRONG_VALUES.values(), ids=WRONG_VALUES.keys())
def test_wrong_value_in_an_update(values: dict[str, Any]) -> None:
    ((name, value),) = values.items()
    user = User(pk="u1", email="a@example.com")
    action = getattr(User, name).set(value)
    error = raised(lambda: user.get_update_kwargs_from_instance([action]))
    assert isinstance(error, EncryptionError)
    assert_clean(error, texts=(repr(value), str(value)))


@pytest.mark.parametrize("value", [MARKER.encode(), 4242424242, [MARKER]], ids=["bytes", "int", "list"])
def test_wrong_value_in_a_condition(value: Any) -> None:
    error = raised(lambda: User.email == value)
    assert isinstance(error, EncryptionError)
    assert_clean(error, texts=(repr(value), str(value)))


@pytest.mark.parametrize("value", [MARKER, 4242424242], ids=["str", "int"])
def test_wrong_value_for_an_attribute_codec(value: Any) -> None:
    """EncryptedAttribute(UTCDateTimeAttribute()) given a non-datetime: EncryptionError, like builtin types."""
    model = make_user(name="WithDates", note=UTCDateTimeAttribute())
    user = model(pk="u1", email="a@example.com", note=value)
    error = raised(user.serialize)
    assert isinstance(error, EncryptionError)
    assert_clean(error, texts=(str(value),))


# -- tampered items --------------------------------------------------------------------------------------


def _flip(blob: bytes, position: int) -> bytes:
    tampered = bytearray(blob)
    tampered[position] ^= 0x5A
    return bytes(tampered)


def test_tampered_ciphertext_via_from_raw_data() -> None:
    item = base_item()
    original = item["name__source"]["B"]
    for position in range(len(original)):
        tampered_blob = _flip(original, position)
        tampered = dict(item, name__source={"B": tampered_blob})
        error = raised(lambda tampered=tampered: User.from_raw_data(tampered))
        assert isinstance(error, (DecryptionError, KeyNotFoundError)), position
        assert_clean(error, blobs=(original, tampered_blob, item["email__source"]["B"]),
                     texts=(item["email__hmac"]["S"],))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda item, other: dict(item, name__source=other["name__source"]),
        lambda item, other: dict(item, email__source=other["email__source"]),
        lambda item, other: dict(item, email__hmac=other["email__hmac"]),
        lambda item, other: dict(item, email__source=item["name__source"]),
        lambda item, other: dict(item, name__source={"B": item["name__source"]["B"][:-1]}),
        lambda item, other: dict(item, name__source={"B": item["name__source"]["B"] + b"\x00"}),
        lambda item, other: dict(item, name__source={"S": MARKER}),
        lambda item, other: dict(item, name__source={"B": MARKER.encode()}),
        lambda item, other: dict(item, name__source={"B": b"\x01\x02k1" + MARKER.encode()}),
        lambda item, other: dict(item, pk={"S": "u2"}),
        lambda item, other: {k: v for k, v in item.items() if k != "pk"},
    ],
    ids=["swap-name", "swap-email", "swap-hmac", "cross-attribute", "truncated", "extended", "string",
         "not-a-ciphertext", "fake-header", "moved-item", "no-key"],
)
def test_tampered_item_errors_are_clean(tamper: Callable[[Any, Any], Any]) -> None:
    item = base_item()
    other = User(pk="u2", email=f"other-{MARKER}@example.com", name=f"other-{MARKER}", age=1).serialize()
    tampered = tamper(item, other)
    error = raised(lambda: User.from_raw_data(tampered))
    assert isinstance(error, DecryptionError)
    blobs = tuple(v["B"] for d in (item, other) for v in d.values() if "B" in v)
    hmacs = tuple(v["S"] for d in (item, other) for k, v in d.items() if k.endswith("__hmac"))
    assert_clean(error, blobs=blobs, texts=hmacs)
    assert "User" in str(error)


# -- keys ------------------------------------------------------------------------------------------------


def test_unknown_key_id() -> None:
    writer = make_user(Keyring.local(OLD_KEY, index_key=INDEX_KEY, key_id="retired-2019"), name="Writer")
    item = writer(pk="u1", email=f"{MARKER}@example.com", name=MARKER).serialize()
    error = raised(lambda: User.from_raw_data(item))
    assert isinstance(error, KeyNotFoundError)
    assert "retired-2019" in str(error)
    assert_clean(error, blobs=(item["email__source"]["B"], item["name__source"]["B"]),
                 texts=(item["email__hmac"]["S"],))


def test_same_key_id_other_secret() -> None:
    other_secret = bytes(range(32))
    writer = make_user(Keyring.local(other_secret, index_key=INDEX_KEY, key_id="k2"), name="Writer")
    item = writer(pk="u1", email=f"{MARKER}@example.com").serialize()
    error = raised(lambda: User.from_raw_data(item))
    assert isinstance(error, DecryptionError)
    assert_clean(error, blobs=(item["email__source"]["B"], other_secret), texts=(item["email__hmac"]["S"],))


def _keyring_text(data: dict[str, Any]) -> str:
    return "stash-keyring:v1:" + base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


GOOD = KEYRING.export_secret_string()
MALFORMED_ENV = {
    "truncated": GOOD[:-7],
    "corrupted": GOOD[:40] + "!" + GOOD[41:],
    "missing-prefix": GOOD[len("stash-keyring:v1:"):],
    "short-key": _keyring_text({"primary": "k2", "keys": {"k2": _b64(KEY[:31])},
                                "index": {"id": "idx1", "key": _b64(INDEX_KEY)}}),
    "long-index-key": _keyring_text({"primary": "k2", "keys": {"k2": _b64(KEY)},
                                     "index": {"id": "idx1", "key": _b64(INDEX_KEY + KEY)}}),
    "primary-missing": _keyring_text({"primary": "k9", "keys": {"k2": _b64(KEY)},
                                      "index": {"id": "idx1", "key": _b64(INDEX_KEY)}}),
    "bad-key-id": _keyring_text({"primary": "k2", "keys": {"k2": _b64(KEY), "bad id": _b64(OLD_KEY)},
                                 "index": {"id": "idx1", "key": _b64(INDEX_KEY)}}),
    "raw-key": _b64(KEY),
    "hex-key": KEY.hex(),
}


@pytest.mark.parametrize("text", MALFORMED_ENV.values(), ids=MALFORMED_ENV.keys())
def test_malformed_keyring_environment_variable(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv(ENV_VAR, text)
    model = make_user(None, name="FromEnv")
    error = raised(lambda: model(pk="u1", email=f"{MARKER}@example.com").serialize())
    assert isinstance(error, ConfigurationError)
    assert ENV_VAR in str(error)
    assert_clean(error, blobs=(KEY[:31], INDEX_KEY + KEY), texts=(text, text[17:57]))
    error = raised(lambda: Keyring.from_env().primary_key_id)
    assert isinstance(error, ConfigurationError)
    assert_clean(error, blobs=(KEY[:31], INDEX_KEY + KEY), texts=(text, text[17:57]))


# -- a changed declaration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "new_codec",
    [UTCDateTimeAttribute(), NumberAttribute()],
    ids=lambda a: type(a).__name__,
)
def test_reading_with_a_changed_attribute_codec(new_codec: Any) -> None:
    """A field's codec changed (UnicodeAttribute -> another Attribute): DecryptionError, no plaintext."""
    item = base_item(note=MARKER)
    changed = make_user(name="User", note=new_codec)
    error = raised(lambda: changed.from_raw_data(item))
    assert isinstance(error, DecryptionError)
    assert_clean(error, blobs=(item["note__source"]["B"],))


@pytest.mark.parametrize("new_type", [int, bytes, datetime, dict, set], ids=lambda t: t.__name__)
def test_reading_with_a_changed_builtin_type(new_type: type) -> None:
    item = base_item()
    meta = type("Meta", (), {"table_name": "Users", "keyring": KEYRING})
    changed = type(
        "User",
        (EncryptedModel,),
        {"Meta": meta, "pk": UnicodeAttribute(hash_key=True), "name": EncryptedAttribute(new_type, null=True)},
    )
    error = raised(lambda: changed.from_raw_data({"pk": item["pk"], "name__source": item["name__source"]}))
    assert isinstance(error, DecryptionError)
    assert_clean(error, blobs=(item["name__source"]["B"],))


# -- foreign exception text ----------------------------------------------------------------------------


def _normalizer_quoting_the_value(text: str) -> str:
    return str(int(text))  # int() says: invalid literal for int() with base 10: '<the value>'


@pytest.mark.parametrize("normalizer", [
    _normalizer_quoting_the_value,
    lambda text: str(__import__("ipaddress").ip_address(text)),
    lambda text: datetime.strptime(text, "%Y-%m-%d").date().isoformat(),
], ids=["int", "ipaddress", "strptime"])
def test_a_user_normalizers_error_text_never_reaches_a_message(normalizer: Any) -> None:
    from pynamodb_stash import Equality, configure

    heard: list[BaseException] = []
    configure(error_handler=heard.append)
    try:
        model = offline_model(
            "Normalized", keyring=KEYRING,
            code=EncryptedAttribute(str, equality=Equality(normalize=normalizer)),
        )
        for action in (
            lambda: model.code.hmac(MARKER),
            lambda: model(pk="u1", code=MARKER).serialize(),
            lambda: model.code == MARKER,
        ):
            error = raised(action)
            assert isinstance(error, EncryptionError)
            assert_clean(error)
            assert "Normalized.code" in str(error) and "ValueError" in str(error)
        assert heard, "serialize() ends an operation: the handler hears its error"
        for reported in heard:
            assert_clean(reported)
    finally:
        configure(error_handler=None)


# -- repr -------------------------------------------------------------------------------------------------


def test_repr_and_str_of_a_model_mask_encrypted_values_and_hmacs() -> None:
    from pynamodb.attributes import ListAttribute

    from pynamodb_stash import EncryptedMapAttribute

    class Card(EncryptedMapAttribute):
        number = EncryptedAttribute(str, equality=True)
        brand = UnicodeAttribute()

    class Wallet(EncryptedMapAttribute):
        main = Card()
        spares = ListAttribute(of=Card)

    model = offline_model(
        "Reprs", keyring=KEYRING, email=EncryptedAttribute(str, equality=True), wallet=Wallet(null=True),
        role=UnicodeAttribute(null=True),
    )
    card = Card(number=MARKER + "-1", brand="visa")
    user = model(pk="u1", email=MARKER, role="admin",
                 wallet=Wallet(main=card, spares=[Card(number=MARKER + "-2", brand="amex")]))
    loaded = model.from_raw_data(user.serialize())
    for instance in (user, loaded):
        for text in (repr(instance), str(instance), f"{instance!r}", repr(instance.wallet)):
            assert MARKER not in text
            assert loaded.email__hmac not in text
        assert "role='admin'" in repr(instance) and "email=<encrypted>" in repr(instance)
        assert "brand='visa'" in repr(instance) and "number=<encrypted>" in repr(instance)
    assert "email__hmac=<hmac>" in repr(loaded)


# -- the error handler ------------------------------------------------------------------------------------


def test_the_error_handler_hears_one_failure_once() -> None:
    from pynamodb_stash import configure

    item = make_user(Keyring.local(bytes(range(64, 96)), index_key=INDEX_KEY, key_id="k7"))(
        pk="u1", email="a@example.com"
    ).serialize()
    heard: list[BaseException] = []
    configure(error_handler=heard.append)
    try:
        error = raised(lambda: User.from_raw_data(item))  # k7 is not in User's keyring: re-wrapped once
        assert isinstance(error, KeyNotFoundError)
        assert heard == [error]
        DecryptionError("constructing an error reports nothing")
        assert heard == [error]
    finally:
        configure(error_handler=None)


def test_the_error_handler_hears_a_bad_stream_image_or_a_failed_batch_once() -> None:
    from pynamodb_stash import EncryptionError, configure

    user = make_user(Keyring.generate())
    good = user(pk="u1", email="a@example.com").serialize()
    heard: list[BaseException] = []
    configure(error_handler=heard.append)
    try:
        for image in ({k: v for k, v in good.items() if k != "pk"}, {"pk": "u1"}, ["x"]):
            heard.clear()
            error = raised(lambda: user.from_stream_image(image))  # noqa: B023
            assert isinstance(error, DecryptionError) and heard == [error]
        heard.clear()
        # The 26th save commits the first 25, and encrypting them fails before anything is sent.
        with pytest.raises(EncryptionError) as failed, user.batch_write() as batch:
            batch.save(user(pk="bad", email=123))
            for i in range(25):
                batch.save(user(pk=f"u{i}", email="a@example.com"))
        assert heard == [failed.value] and batch.pending_operations == []
    finally:
        configure(error_handler=None)


def test_a_ciphertext_read_as_a_bytearray_is_audited_like_bytes() -> None:
    from pynamodb_stash import configure

    user = make_user(Keyring.generate())
    item = user(pk="u1", email="a@example.com").serialize()
    item["email__source"] = {"B": bytearray(item["email__source"]["B"])}
    events: list[Any] = []
    configure(audit_sink=events.append)
    try:
        assert user.from_raw_data(item).email == "a@example.com"
        assert [event.operation for event in events] == ["decrypt"] and events[0].key_ids
    finally:
        configure(audit_sink=None)
