"""The parsers pynamodb-stash exposes to untrusted input, as fuzz targets (shared by the tests and by
``python tests/fuzz/run_fuzz.py``). Each target must raise nothing but a StashError."""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, Dict

from pynamodb.attributes import UnicodeAttribute

from pynamodb_stash import EncryptedAttribute, EncryptedMapAttribute, EncryptedModel, Keyring, decrypt_item


class Address(EncryptedMapAttribute):
    street = EncryptedAttribute(str, equality=True)
    city = UnicodeAttribute(null=True)


class Target(EncryptedModel):
    class Meta:
        table_name = "fuzz"
        keyring = Keyring.generate()

    pk = UnicodeAttribute(hash_key=True)
    email = EncryptedAttribute(str, equality=True, null=True)
    count = EncryptedAttribute(int, null=True)
    address = Address(null=True)


GOOD = Target(pk="p", email="a@example.com", count=3, address=Address(street="s", city="c")).serialize()


def ciphertext(data: bytes) -> None:
    """Arbitrary bytes where a ciphertext belongs."""
    Target.from_raw_data({"pk": {"S": "p"}, "count__source": {"B": data}})


def mutated_ciphertext(data: bytes) -> None:
    """A real ciphertext with ``data`` spliced in at a position chosen by its first byte: it must never
    decrypt unless the splice left it unchanged."""
    real = GOOD["count__source"]["B"]
    cut = data[0] % (len(real) + 1) if data else 0
    mutated = real[:cut] + data[1:] + real[cut + len(data):]
    item = Target.from_raw_data({**GOOD, "count__source": {"B": mutated}})
    if mutated != real or item.count != 3:
        raise AssertionError("a changed ciphertext decrypted")


def keyring_string(data: bytes) -> None:
    """Arbitrary text as a keyring string."""
    Keyring.from_string(data.decode("utf-8", "replace"))


def keyring_payload(document: Any) -> None:
    """An arbitrary JSON document behind the keyring string's prefix."""
    payload = base64.urlsafe_b64encode(json.dumps(document, default=repr).encode()).decode()
    Keyring.from_string("stash-keyring:v1:" + payload)


def dynamodb_json(item: Dict[str, Any]) -> None:
    """An arbitrary item for decrypt_item."""
    decrypt_item(Target, item)


def mixed_item(item: Dict[str, Any]) -> None:
    """A real stored item with arbitrary attributes laid over it."""
    decrypt_item(Target, {**GOOD, **item})


def stream_image(image: Any) -> None:
    Target.from_stream_image(image)


TARGETS: Dict[str, Callable[[Any], None]] = {
    "ciphertext": ciphertext,
    "mutated_ciphertext": mutated_ciphertext,
    "keyring_string": keyring_string,
    "keyring_payload": keyring_payload,
    "dynamodb_json": dynamodb_json,
    "mixed_item": mixed_item,
    "stream_image": stream_image,
}
