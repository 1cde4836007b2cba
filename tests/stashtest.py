"""Helpers shared by the test modules: ``import stashtest`` or ``from stashtest import ...``.

``tests/`` is on ``sys.path`` because pytest inserts the directory of the rootdir ``conftest.py`` there
(the tests have no ``__init__.py`` files). Fixtures shared by several modules live in ``conftest.py``.
"""

from __future__ import annotations

import base64
import traceback
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary
from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex

from pynamodb_stash import EncryptedModel, Keyring

REGION = "us-east-1"
# Nothing listens on port 9 (discard): a model pointed here fails fast if it ever sends a request.
OFFLINE_HOST = "http://127.0.0.1:9"


# -- names ----------------------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    """``prefix`` plus a random suffix: a table name or key no other test (or run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- model declarations -----------------------------------------------------------------------------------


def table_meta(
    host: str, table: str, keyring: Keyring | None, *, capacity: int | None = None, **extra: Any
) -> type:
    """A model ``Meta`` for a table on DynamoDB Local: on-demand billing, or ``capacity`` read and write
    units when given. ``extra`` adds (or overrides) attributes, e.g. ``logical_table_name``."""
    attributes: dict[str, Any] = {"table_name": table, "host": host, "region": REGION, "keyring": keyring}
    if capacity is None:
        attributes["billing_mode"] = "PAY_PER_REQUEST"
    else:
        attributes.update(read_capacity_units=capacity, write_capacity_units=capacity)
    attributes.update(extra)
    return type("Meta", (), attributes)


def offline_meta(table: str = "Users", *, keyring: Keyring | None, **extra: Any) -> type:
    """A model ``Meta`` for offline tests: its host refuses connections."""
    return type("Meta", (), {"table_name": table, "host": OFFLINE_HOST, "keyring": keyring, **extra})


def offline_model(
    cls_name: str = "M",
    table: str = "Users",
    *,
    keyring: Keyring | None,
    with_pk: bool = True,
    **attributes: Any,
) -> Any:
    """An ``EncryptedModel`` subclass on ``offline_meta``, with a plain ``pk`` hash key unless ``with_pk`` is
    false, and ``attributes`` after it."""
    namespace: dict[str, Any] = {"Meta": offline_meta(table, keyring=keyring)}
    if with_pk:
        namespace["pk"] = UnicodeAttribute(hash_key=True)
    namespace.update(attributes)
    return type(cls_name, (EncryptedModel,), namespace)


def offline_index(name: str, projection: Any, **attributes: Any) -> Any:
    """A ``GlobalSecondaryIndex`` instance named ``name``, with ``projection`` and ``attributes`` (its keys,
    e.g. ``email=HmacAttribute(hash_key=True)``), to declare on an offline model."""
    meta = type("Meta", (), {"index_name": name, "projection": projection})
    return type(name, (GlobalSecondaryIndex,), {"Meta": meta, **attributes})()


def created(*models: Any) -> Iterator[Any]:
    """Create the models' tables, yield (the model, or the tuple of models), then delete the tables.

    Use ``yield from created(model)`` in a fixture, or ``for _ in created(a, b): ...`` in a test."""
    made: list[Any] = []
    try:
        for model in models:
            model.create_table(wait=True)
            made.append(model)
        yield models[0] if len(models) == 1 else models
    finally:
        for model in made:
            model.delete_table()


# -- raw items (read past the library) --------------------------------------------------------------------


def raw_item(client: Any, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The item as DynamoDB stores it, read with boto3 (no pynamodb_stash involved)."""
    response = client.get_item(TableName=table, Key=key, ConsistentRead=True)
    item: dict[str, Any] | None = response.get("Item")
    return item


def describe(client: Any, table: str) -> dict[str, Any]:
    """``DescribeTable`` of ``table``, read with boto3."""
    result: dict[str, Any] = client.describe_table(TableName=table)["Table"]
    return result


def stored_blobs(item: dict[str, Any]) -> list[bytes]:
    """Everything a raw item stores, as bytes: attribute names and map keys at any depth, strings, numbers,
    binary values, set members, and the booleans and nulls as text."""
    found: list[bytes] = []

    def walk(av: dict[str, Any]) -> None:
        for kind, value in av.items():
            if kind == "B":
                found.append(bytes(value))
            elif kind in ("S", "N", "BOOL", "NULL"):
                found.append(str(value).encode("utf-8"))
            elif kind in ("SS", "NS"):
                found.extend(str(v).encode("utf-8") for v in value)
            elif kind == "BS":
                found.extend(bytes(v) for v in value)
            elif kind == "M":
                for name, nested in value.items():
                    found.append(name.encode("utf-8"))
                    walk(nested)
            elif kind == "L":
                for nested in value:
                    walk(nested)

    for name, av in item.items():
        found.append(name.encode("utf-8"))
        walk(av)
    return found


def assert_no_plaintext(item: dict[str, Any], *secrets: str | bytes) -> None:
    """No secret occurs anywhere in the stored item: names, strings, numbers or binary values, at any depth."""
    blobs = stored_blobs(item)
    for secret in secrets:
        needle = secret.encode("utf-8") if isinstance(secret, str) else secret
        # A short secret can occur by chance in 12+ random bytes per value: the test would be flaky.
        assert len(needle) >= 4, "use secrets of at least 4 bytes"
        leaks = [blob for blob in blobs if needle in blob]
        assert not leaks, f"plaintext {secret!r} found in the stored item"


def assert_sealed(
    stored_map: dict[str, Any], name: str, *, hmac: str | None = None, equality: bool = False
) -> None:
    """``name`` is stored in this item (or map) as binary ``name__source`` (and a string ``name__hmac`` with
    equality, equal to ``hmac`` when given), never as ``name``."""
    assert name not in stored_map
    source = stored_map[f"{name}__source"]
    assert list(source) == ["B"]
    assert isinstance(source["B"], bytes) and len(source["B"]) > 16
    if equality or hmac is not None:
        assert list(stored_map[f"{name}__hmac"]) == ["S"]
        if hmac is not None:
            assert stored_map[f"{name}__hmac"] == {"S": hmac}
    else:
        assert f"{name}__hmac" not in stored_map


# -- secrets in messages ------------------------------------------------------------------------------------


def secret_forms(*secrets: bytes, min_length: int = 0) -> list[str]:
    """Every textual form the bytes might be printed in (forms shorter than ``min_length`` left out)."""
    forms: list[str] = []
    for secret in secrets:
        forms += [
            repr(secret)[2:-1],
            secret.hex(),
            base64.b64encode(secret).decode(),
            base64.b64encode(secret).decode().rstrip("="),
            base64.urlsafe_b64encode(secret).decode(),
            base64.urlsafe_b64encode(secret).decode().rstrip("="),
            secret.decode("latin-1"),
        ]
    return [form for form in forms if len(form) >= min_length]


# -- raw items: DynamoDB JSON, document values, exports --------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def exported(item: dict[str, Any]) -> dict[str, Any]:
    """An item as JSON text holds it (S3 export, Lambda event): B and BS as base64 text."""

    def convert(av: dict[str, Any]) -> dict[str, Any]:
        ((kind, value),) = av.items()
        if kind == "B":
            return {"B": b64(bytes(value))}
        if kind == "BS":
            return {"BS": [b64(bytes(v)) for v in value]}
        if kind == "M":
            return {"M": {k: convert(v) for k, v in value.items()}}
        if kind == "L":
            return {"L": [convert(v) for v in value]}
        return av

    return {name: convert(av) for name, av in item.items()}


def av_to_doc(av: dict[str, Any]) -> Any:
    """What a boto3 resource Table holds for an attribute value: Decimal, Binary, sets (exact numbers)."""
    ((kind, value),) = av.items()
    if kind == "N":
        return Decimal(value)
    if kind == "B":
        return Binary(value)
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {Decimal(v) for v in value}
    if kind == "BS":
        return {Binary(v) for v in value}
    if kind == "M":
        return {k: av_to_doc(v) for k, v in value.items()}
    if kind == "L":
        return [av_to_doc(v) for v in value]
    if kind == "NULL":
        return None
    return value


def json_to_av(value: Any) -> dict[str, Any]:
    """A JSON value (dict/list field content) as DynamoDB JSON."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [json_to_av(v) for v in value]}
    return {"M": {k: json_to_av(v) for k, v in value.items()}}


def error_text(error: BaseException) -> str:
    return "\n".join([str(error), repr(error), *map(str, error.args), *traceback.format_exception(error)])


def assert_clean(error: BaseException, *secrets: str | bytes) -> None:
    """Neither the message, the args nor the printed traceback holds a secret, in any common encoding."""
    text = error_text(error)
    for secret in secrets:
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        forms = {raw.decode("utf-8", "replace"), raw.hex(), b64(raw), repr(raw)}
        if len(raw) > 12:  # a ciphertext: any distinctive slice of it
            forms |= {raw[-12:].hex(), repr(raw[-12:])[2:-1], b64(raw[-12:])}
        for form in forms:
            assert form not in text, f"{form!r} appears in the error {text!r}"


# -- KMS ----------------------------------------------------------------------------------------------------


class Counter:
    """Counts the KMS API calls a boto3 client makes, by operation."""

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        client.meta.events.register("before-call.kms.*", self._record)

    def _record(self, model: Any, **kwargs: Any) -> None:
        self.calls.append(model.name)


class Clock:
    """A clock a test moves by hand (``clock.now += 301``), for TTLs."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key_store(table: str, kms: Any, dynamodb: Any, *allowed: str) -> Any:
    """A key store as one process sees it: its own memory of versions, the given KMS key allow-list."""
    from pynamodb_stash.kms import KeyStore

    return KeyStore(table, kms_key_ids=list(allowed), kms_client=kms, dynamodb_client=dynamodb)


def secret_model(ddb_url: str, source: Any) -> Any:
    """A model with one encrypted equality field on DynamoDB Local, under ``source`` (a keyring or source)."""
    from pynamodb_stash import EncryptedAttribute

    class Secret(EncryptedModel):
        class Meta:
            table_name = "unused"
            host = ddb_url
            region = REGION
            keyring = source

        pk = UnicodeAttribute(hash_key=True)
        value = EncryptedAttribute(str, equality=True)

    return Secret
