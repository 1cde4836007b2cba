"""Recording the requests one side sends, through botocore's event system, and checking them for leaks.

``Recorder.attach(client)`` registers three handlers on a botocore DynamoDB client:

- ``before-parameter-build.dynamodb.*``: the operation name and its API parameters (what PynamoDB asked
  botocore to send), deep-copied: these are compared between the two sides in mode A;
- ``before-call.dynamodb.*``: the serialized request body (the bytes on the wire): these are searched for
  plaintext in mode B;
- ``after-call.dynamodb.BatchGetItem``: when ``throttle`` is set, rewrites DynamoDB's answer as DynamoDB
  does under throttling: one item returned (the one with the least key), the other requested keys left in
  ``UnprocessedKeys``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, List, Tuple

TABLE = "<table>"
_MAX_THROTTLED_ROUNDS = 20  # PynamoDB's batch_get retries for ever: never let a simulation loop


@dataclass
class Request:
    operation: str
    params: Dict[str, Any]
    body: bytes = b""


@dataclass
class Recorder:
    """Every DynamoDB request of one side (its model classes and its transaction connection)."""

    table: str
    requests: List[Request] = field(default_factory=list)
    throttle: bool = False
    _clients: List[Any] = field(default_factory=list)
    _throttled_rounds: int = 0

    def attach(self, client: Any) -> None:
        if any(known is client for known in self._clients):
            return
        self._clients.append(client)
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.*", self._on_params)
        events.register("before-call.dynamodb.*", self._on_call)
        events.register("after-call.dynamodb.BatchGetItem", self._on_batch_get)

    def attach_model(self, model: Any) -> None:
        self.attach(model._get_connection().connection.client)

    def mark(self) -> int:
        return len(self.requests)

    def since(self, mark: int) -> List[Request]:
        return self.requests[mark:]

    # -- handlers ---------------------------------------------------------------------------------------

    def _on_params(self, params: Dict[str, Any], model: Any, context: Dict[str, Any], **_: Any) -> None:
        request = Request(model.name, copy.deepcopy(params))
        self.requests.append(request)
        context["conformance_request"] = request

    def _on_call(self, params: Dict[str, Any], context: Dict[str, Any], **_: Any) -> None:
        request = context.get("conformance_request")
        if request is not None:
            request.body = bytes(params.get("body") or b"")

    def _on_batch_get(self, parsed: Dict[str, Any], context: Dict[str, Any], **_: Any) -> None:
        request = context.get("conformance_request")
        if not self.throttle or request is None or self._throttled_rounds >= _MAX_THROTTLED_ROUNDS:
            return
        requested = request.params["RequestItems"].get(self.table)
        returned = (parsed.get("Responses") or {}).get(self.table) or []
        if requested is None or len(returned) <= 1:
            return  # nothing to hold back: the round completes
        key_names = list(requested["Keys"][0])
        if any(name not in item for item in returned for name in key_names):
            return  # a projection without the keys: which key an item answers is unknown here
        self._throttled_rounds += 1
        # The item with the least key: the same on both sides, whatever order the keys were sent in.
        kept_key, kept = min(
            ((_canonical({name: item[name] for name in key_names}), item) for item in returned), key=lambda p: p[0]
        )
        unprocessed = dict(requested)
        unprocessed["Keys"] = [key for key in requested["Keys"] if _canonical(key) != kept_key]
        parsed["Responses"][self.table] = [kept]
        parsed.setdefault("UnprocessedKeys", {})[self.table] = unprocessed


def _canonical(key: Dict[str, Dict[str, Any]]) -> Tuple[Any, ...]:
    """A key as DynamoDB compares it: numbers by value (``2`` and ``2.0`` are one key)."""
    parts = []
    for name, value in sorted(key.items()):
        ((kind, raw),) = value.items()
        parts.append((name, kind, Decimal(raw).normalize() if kind == "N" else raw))
    return tuple(parts)


# -- normalizing requests ------------------------------------------------------------------------------


def normalized(request: Request, table: str) -> Tuple[str, Any]:
    """The request with the side's table name replaced, and the parts that are random by design
    (idempotency tokens) or in an order PynamoDB does not define (BatchGetItem keys: PynamoDB takes them
    from a ``set``) put in a fixed form. Listed in ``conformance_deviations.REQUEST_NORMALIZATIONS``."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {(TABLE if k == table else k): walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if value == table:
            return TABLE
        return value

    params = walk(request.params)
    if "ClientRequestToken" in params:
        params["ClientRequestToken"] = "<token>"
    if request.operation == "BatchGetItem":
        for entry in params.get("RequestItems", {}).values():
            entry["Keys"] = sorted(entry["Keys"], key=repr)
    return request.operation, params


# -- leaks ---------------------------------------------------------------------------------------------


def _walk_bytes(value: Any) -> List[bytes]:
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value)]
    if isinstance(value, dict):
        return [b for v in value.values() for b in _walk_bytes(v)]
    if isinstance(value, (list, tuple)):
        return [b for v in value for b in _walk_bytes(v)]
    return []


def leaks(requests: List[Request], names: List[str], text: List[str], raw: List[bytes]) -> List[str]:
    """What the requests show of encrypted attributes: a plain ``name`` (other than inside ``name__source``
    or ``name__hmac``), a plaintext ``text`` token in the parameters or the body, or ``raw`` bytes in a
    binary parameter. An empty list when nothing leaks."""
    found = []
    patterns = [(name, re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])")) for name in names]
    for number, request in enumerate(requests):
        rendered = json.dumps(request.params, default=repr, sort_keys=True) + "\n" + request.body.decode(
            "utf-8", "replace"
        )
        where = f"request {number} ({request.operation})"
        found += [f"{where}: the plain name {name!r}" for name, pattern in patterns if pattern.search(rendered)]
        found += [f"{where}: the plaintext {token!r}" for token in text if token in rendered]
        blobs = _walk_bytes(request.params)
        found += [f"{where}: the plaintext bytes {secret!r}" for secret in raw if any(secret in b for b in blobs)]
    return found
