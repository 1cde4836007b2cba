"""What the ``assert_never_stored`` fixture gives: :class:`NeverStored`, which records the DynamoDB requests
a test sends (as :class:`WireRequest`), scans a table, and looks for plaintext markers in both."""

from __future__ import annotations

import base64
import binascii
import json
import threading
from typing import Any, Dict, FrozenSet, Iterator, List, NamedTuple, Optional, Tuple, Type, Union

import pytest
from pynamodb.models import Model

from ._local_dynamodb import REGION, _client, _close

_MIN_MARKER_BYTES = 4
_MAX_REPORTED = 20


class WireRequest(NamedTuple):
    """One DynamoDB API request as it was sent (retries of a request are not repeated)."""

    #: the operation, e.g. ``"PutItem"``
    operation: str
    #: the tables it names (``TableName`` anywhere in it, the keys of ``RequestItems``)
    tables: FrozenSet[str]
    #: its PartiQL statements, if any
    statements: Tuple[str, ...]
    #: its JSON body, parsed (``None`` if it was not JSON)
    body: Any
    #: its body as sent
    raw: bytes

    def concerns(self, table: str) -> bool:
        """Whether the request names ``table`` (or a PartiQL statement of it mentions it)."""
        return table in self.tables or any(table in statement for statement in self.statements)


WireRequest.__module__ = "pynamodb_stash.testing"


def _table_of(name: str) -> str:
    """A table name from a name or a table ARN."""
    if name.startswith("arn:") and ":table/" in name:
        return name.split(":table/", 1)[1].split("/", 1)[0]
    return name


def _wire_request(operation: str, raw: bytes) -> WireRequest:
    try:
        body: Any = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        body = None
    tables: set[str] = set()
    statements: List[str] = []
    pending: List[Any] = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            for key, nested in value.items():
                if key == "TableName" and isinstance(nested, str):
                    tables.add(_table_of(nested))
                elif key == "RequestItems" and isinstance(nested, dict):
                    tables.update(_table_of(name) for name in nested)
                elif key == "Statement" and isinstance(nested, str):
                    statements.append(nested)
                pending.append(nested)
        elif isinstance(value, list):
            pending.extend(value)
    return WireRequest(operation, frozenset(tables), tuple(statements), body, raw)


def _base64_decoded(text: str) -> Optional[bytes]:
    """``text`` decoded as standard or URL-safe base64 (padding optional), if it is that."""
    if len(text) < 6 or len(text) % 4 == 1:
        return None
    padded = text + "=" * (-len(text) % 4)
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def _text_forms(text: str) -> List[bytes]:
    forms = [text.encode("utf-8", "surrogatepass")]
    decoded = _base64_decoded(text)
    if decoded is not None:
        forms.append(decoded)
    return forms


def _stored_blobs(value: Dict[str, Any], path: str) -> Iterator[Tuple[str, bytes]]:
    """(where, bytes) for everything one attribute value (low-level shape) stores, at any depth."""
    for kind, content in value.items():
        if kind == "S":
            for form in _text_forms(content):
                yield f"{path} (S)", form
        elif kind == "N":
            yield f"{path} (N)", str(content).encode("utf-8")
        elif kind == "B":
            yield f"{path} (B)", bytes(content)
        elif kind in ("SS", "NS"):
            for member in content:
                for form in _text_forms(str(member)):
                    yield f"{path} ({kind} member)", form
        elif kind == "BS":
            for member in content:
                yield f"{path} (BS member)", bytes(member)
        elif kind == "M":
            for name, nested in content.items():
                yield f"{path}.{name} (map key)", name.encode("utf-8", "surrogatepass")
                yield from _stored_blobs(nested, f"{path}.{name}")
        elif kind == "L":
            for index, nested in enumerate(content):
                yield from _stored_blobs(nested, f"{path}[{index}]")


def _item_blobs(item: Dict[str, Any]) -> Iterator[Tuple[str, bytes]]:
    for name, value in item.items():
        yield f"{name} (attribute name)", name.encode("utf-8", "surrogatepass")
        yield from _stored_blobs(value, name)


def _json_blobs(value: Any, path: str) -> Iterator[Tuple[str, bytes]]:
    """(where, bytes) for every name and value of a JSON request body (B values are base64 text there)."""
    if isinstance(value, dict):
        for key, nested in value.items():
            where = f"{path}.{key}" if path else key
            yield f"{where} (name)", key.encode("utf-8", "surrogatepass")
            yield from _json_blobs(nested, where)
    elif isinstance(value, list):
        for index, nested in enumerate(value):
            yield from _json_blobs(nested, f"{path}[{index}]")
    elif isinstance(value, str):
        for form in _text_forms(value):
            yield path, form
    elif value is not None:
        yield path, json.dumps(value).encode("utf-8")


def _needles(markers: Tuple[Union[str, bytes], ...]) -> List[Tuple[Union[str, bytes], bytes]]:
    if not markers:
        raise ValueError("assert_never_stored() needs at least one marker")
    needles = []
    for marker in markers:
        if isinstance(marker, str):
            needle = marker.encode("utf-8", "surrogatepass")
        elif isinstance(marker, (bytes, bytearray, memoryview)):
            needle = bytes(marker)
        else:
            raise TypeError(f"a marker is str or bytes, not {type(marker).__name__} (pass a number as its text)")
        if len(needle) < _MIN_MARKER_BYTES:
            raise ValueError(
                f"marker {marker!r} is shorter than {_MIN_MARKER_BYTES} bytes: it could occur in ciphertext by "
                "chance; use a distinctive value"
            )
        needles.append((marker, needle))
    return needles


class NeverStored:
    """What the ``assert_never_stored`` fixture gives: records every DynamoDB request sent in the process
    from the fixture's setup to the end of the test (through botocore, so PynamoDB's and boto3's alike),
    and checks that plaintext markers never reached DynamoDB.
    """

    __module__ = "pynamodb_stash.testing"

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._requests: List[WireRequest] = []
        self._local = threading.local()

    @property
    def requests(self) -> List[WireRequest]:
        """The DynamoDB requests recorded so far, oldest first (a copy)."""
        return list(self._requests)

    def _record(self, operation: str, body: Any) -> None:
        if getattr(self._local, "paused", False):
            return
        if isinstance(body, str):
            body = body.encode("utf-8")
        raw = bytes(body) if isinstance(body, (bytes, bytearray)) else b""
        self._requests.append(_wire_request(operation, raw))

    def _start(self, patch: pytest.MonkeyPatch) -> None:
        from botocore.endpoint import Endpoint

        original = Endpoint.make_request
        record = self._record

        def make_request(endpoint: Any, operation_model: Any, request_dict: Any) -> Any:
            if operation_model.service_model.service_name == "dynamodb":
                record(operation_model.name, request_dict.get("body"))
            return original(endpoint, operation_model, request_dict)

        patch.setattr(Endpoint, "make_request", make_request)

    def __call__(self, model_or_table: Union[Type[Model], str], *markers: Union[str, bytes]) -> None:
        """Assert that no marker reached DynamoDB for the table of ``model_or_table``.

        Two checks, each over attribute names, map keys and values at any depth (S, N, B, SS, NS, BS, M,
        L), matching a marker's UTF-8 bytes inside text and binary values, and inside text that is base64:

        - stored: a consistent scan of the whole table, read on the model's ``Meta.host`` (a table name
          is read on ``stash_dynamodb``);
        - sent: every recorded request that names the table (its whole body, conditions and keys
          included, so a plaintext in a query or filter counts even if nothing stores it).

        :param model_or_table: a PynamoDB model class, or a table name on ``stash_dynamodb``.
        :param markers: plaintext values (``str``, or ``bytes``), at least 4 bytes each; give a number
            as its text (``"123456789"``).
        :raises AssertionError: listing where each marker was found (item key and attribute path, or
            operation and request path), at most 20 places.
        :raises TypeError: for a model_or_table or marker of the wrong type.
        :raises ValueError: for no markers, a marker under 4 bytes, a model whose ``Meta.host`` is unset
            (it would read AWS: use ``stash_tables`` first), or a table that does not exist.
        """
        needles = _needles(markers)
        if isinstance(model_or_table, str):
            table = model_or_table
            endpoint: str = self._request.getfixturevalue("stash_dynamodb")
            region = REGION
        elif isinstance(model_or_table, type) and issubclass(model_or_table, Model):
            meta = model_or_table.Meta
            table = meta.table_name
            endpoint = getattr(meta, "host", None) or ""
            region = getattr(meta, "region", None) or REGION
            if not endpoint:
                raise ValueError(
                    f"{model_or_table.__name__}.Meta.host is not set, so its table is on AWS: "
                    "call stash_tables(Model) first"
                )
        else:
            raise TypeError(
                f"assert_never_stored() takes a PynamoDB model class or a table name, not {model_or_table!r}"
            )

        found: List[str] = []
        for where, blob in self._stored(endpoint, region, table):
            found.extend(f"{marker!r} stored in {where}" for marker, needle in needles if needle in blob)
        for request in self._requests:
            if not request.concerns(table):
                continue
            blobs = _json_blobs(request.body, "") if request.body is not None else iter([("body", request.raw)])
            for where, blob in blobs:
                found.extend(
                    f"{marker!r} sent in a {request.operation} request, at {where}"
                    for marker, needle in needles
                    if needle in blob
                )
        places = list(dict.fromkeys(found))
        if places:
            shown = "\n  ".join(places[:_MAX_REPORTED])
            more = f"\n  ... and {len(places) - _MAX_REPORTED} more" if len(places) > _MAX_REPORTED else ""
            raise AssertionError(f"plaintext reached DynamoDB (table {table!r}):\n  {shown}{more}")

    def _stored(self, endpoint: str, region: str, table: str) -> Iterator[Tuple[str, bytes]]:
        self._local.paused = True
        client = _client(endpoint, region)
        try:
            try:
                schema = client.describe_table(TableName=table)["Table"]["KeySchema"]
            except client.exceptions.ResourceNotFoundException:
                raise ValueError(f"table {table!r} does not exist on {endpoint}") from None
            key_names = [key["AttributeName"] for key in schema]
            items: List[Dict[str, Any]] = []
            kwargs: Dict[str, Any] = {"TableName": table, "ConsistentRead": True}
            while True:
                page = client.scan(**kwargs)
                items.extend(page.get("Items", []))
                if not page.get("LastEvaluatedKey"):
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        finally:
            _close(client)
            self._local.paused = False
        for item in items:
            key = ", ".join(f"{name}={_shown(item.get(name))}" for name in key_names)
            for where, blob in _item_blobs(item):
                yield f"item {{{key}}}, at {where}", blob


def _shown(value: Optional[Dict[str, Any]]) -> str:
    if not value:
        return "?"
    ((_, content),) = value.items()
    return repr(content)
