"""Running one case (a shape and a sequence of operations) against PynamoDB's ``Model`` and the same shape
as an ``EncryptedModel``, each on its own DynamoDB Local table, and comparing them operation by operation.

For every operation the two sides must return the same result or raise the same error (results as
class-independent attribute dicts, errors as class + ``cause_response_code``). Mode A (nothing encrypted)
also compares every request; mode B checks that no request of the stash side shows a plain name or a
plaintext value of an encrypted attribute. After the sequence, both tables must hold the same items.
The only exceptions are the deliberate deviations of ``conformance_deviations``.
"""

from __future__ import annotations

import contextlib
import copy
import pprint
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Dict, List, Optional, Sequence, Tuple
from unittest import mock

import botocore.session
import conformance_deviations as deviations
import conformance_ops as ops
import pynamodb.connection.base
from conformance_recording import TABLE, Recorder, leaks, normalized
from conformance_shapes import REGION, Shape, Side, build, secret_tokens
from pynamodb.attributes import MapAttribute
from pynamodb.connection import Connection
from pynamodb.transactions import TransactGet, TransactWrite

Outcome = Tuple[str, Any]  # ("ok", result) or ("error", (class name, cause_response_code, reasons))
_ERROR_MODULES = ("pynamodb.exceptions", "pynamodb_stash.exceptions", "builtins")


class Difference(AssertionError):
    """The two sides differ. ``kind``: ``"result"``, ``"requests"``, ``"leak"``, ``"state"`` or ``"create"``."""

    def __init__(self, kind: str, index: int, op: Any, plain: Any, stash: Any) -> None:
        self.kind, self.index, self.op, self.plain, self.stash = kind, index, op, plain, stash
        super().__init__(
            f"{kind} differs at operation {index}: {op!r}\n"
            f"--- PynamoDB Model:\n{pprint.pformat(plain, width=110)}\n"
            f"--- EncryptedModel:\n{pprint.pformat(stash, width=110)}"
        )


# -- normalizing results -------------------------------------------------------------------------------


def error_signature(error: BaseException) -> Tuple[str, Optional[str], Tuple[Optional[str], ...]]:
    """How errors are compared (deviation ``error_messages``): class, response code, cancellation reasons."""
    cls = next(c for c in type(error).__mro__ if c.__module__ in _ERROR_MODULES)
    reasons = getattr(error, "cancellation_reasons", None) or ()
    return cls.__name__, getattr(error, "cause_response_code", None), tuple(r and r.code for r in reasons)


def norm(value: Any, loose: bool = False) -> Any:
    """A value as compared: its type kept (``1`` and ``1.0`` differ), sets sorted, datetimes in UTC.
    With ``loose`` (deviation ``declared_python_type``), MapAttributes compare as dicts."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return (type(value).__name__, value)
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, (bytes, bytearray)):
        return ("bytes", bytes(value))
    if isinstance(value, datetime):
        return ("datetime", value.astimezone(timezone.utc).isoformat())
    if isinstance(value, (set, frozenset)):
        return ("set", sorted((norm(v) for v in value), key=repr))
    if isinstance(value, MapAttribute):
        inner = {k: norm(v, loose) for k, v in value.as_dict().items()}
        return ("dict", inner) if loose else ("MapAttribute", inner)
    if isinstance(value, dict):
        return ("dict", {k: norm(v, loose) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return ("list", [norm(v, loose) for v in value])
    return (type(value).__name__, repr(value))


# -- one side ------------------------------------------------------------------------------------------


class Executor:
    """Runs operations on one side and returns their outcomes in comparable form."""

    def __init__(self, side: Side, shape: Shape, mode: str, url: str) -> None:
        self.side, self.shape, self.mode = side, shape, mode
        self.recorder = Recorder(side.table)
        for model in side.models.values():
            self.recorder.attach_model(model)
        self.connection = Connection(host=url, region=REGION)
        self.recorder.attach(self.connection.client)
        self.cache: Dict[Tuple[Any, Any], Any] = {}
        self.encrypts = bool(shape.encrypted()) and side.name == "stash"
        self._specs = {a.name: a for a in shape.all_attrs()}

    # -- helpers --------------------------------------------------------------------------------------

    def model(self, cls: str) -> Any:
        return self.side.models[cls]

    def key_args(self, key: ops.Key) -> Tuple[Any, ...]:
        return key if self.shape.range_kind else key[:1]

    def instance(self, cls: str, key: ops.Key, cached: bool) -> Any:
        found = self.cache.get(ops.canonical_key(key)) if cached else None
        if found is not None and type(found) is self.model(cls):
            return found
        return self.model(cls)(*self.key_args(key))

    def remember(self, instance: Any) -> None:
        key = (instance.pk, instance.sk if self.shape.range_kind else None)
        self.cache[ops.canonical_key(key)] = instance

    def without_table(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {(TABLE if k == self.side.table else k): self.without_table(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.without_table(v) for v in value]
        return TABLE if value == self.side.table else value

    def item(self, instance: Any) -> Dict[str, Any]:
        sub = self.side.models.get("sub")
        cls = "sub" if sub is not None and isinstance(instance, sub) else "base"
        result: Dict[str, Any] = {"__class__": cls}
        for name in self.shape.value_names(cls):
            spec = self._specs.get(name)
            loose = spec is not None and deviations.loose_containers(spec.encrypted, spec.codec, self.mode)
            result[name] = norm(getattr(instance, name, None), loose)
        return result

    def projected(self, items: Sequence[Optional[Dict[str, Any]]], attributes: Any) -> List[Any]:
        return deviations.projected_view(items, attributes, self.mode, bool(self.shape.encrypted()))

    def response(self, value: Any) -> Any:
        if isinstance(value, dict):  # request id, date, checksum: new on every call
            value = {k: v for k, v in value.items() if k != "ResponseMetadata"}
        return deviations.raw_response_view(self.without_table(value), self.mode)

    def condition(self, spec: Any, cls: str) -> Any:
        return None if spec is None else spec.build(self.model(cls))

    def results(self, iterator: Any, attributes: Any, index: Optional[str], scan: bool) -> Dict[str, Any]:
        items = [self.item(i) for i in iterator]
        result = {
            "items": self.projected(items, attributes),
            "last_evaluated_key": iterator.last_evaluated_key,
            "total_count": iterator.total_count,
        }
        projection = self.shape.index(index).projection if index else "all"
        return deviations.hmac_index_view(result, self.shape.hmac_key(index), projection, scan, self.mode)

    # -- operations -----------------------------------------------------------------------------------

    def run(self, op: Any) -> Outcome:
        self.recorder.throttle = bool(getattr(op, "throttle", False))
        try:
            outcome: Outcome = ("ok", getattr(self, "_" + type(op).__name__.lower())(op))
        except Exception as error:  # the outcome to compare
            outcome = ("error", error_signature(error))
        finally:
            self.recorder.throttle = False
        if isinstance(op, ops.Get):
            outcome = deviations.projected_get(outcome, op.attributes, self.mode, bool(self.shape.encrypted()))
        return outcome

    def _save(self, op: ops.Save) -> Any:
        instance = self.instance(op.cls, op.key, op.cached)
        for name, value in op.values:
            setattr(instance, name, copy.deepcopy(value))
        response = instance.save(condition=self.condition(op.condition, op.cls))
        self.remember(instance)
        return {"response": self.response(response), "instance": self.item(instance)}

    def _update(self, op: ops.Update) -> Any:
        instance = self.instance(op.cls, op.key, op.cached)
        actions = [action.build(self.model(op.cls)) for action in op.actions]
        response = instance.update(actions=actions, condition=self.condition(op.condition, op.cls))
        self.remember(instance)
        return {"response": self.response(response), "instance": self.item(instance)}

    def _delete(self, op: ops.Delete) -> Any:
        instance = self.instance(op.cls, op.key, op.cached)
        response = instance.delete(condition=self.condition(op.condition, op.cls))
        self.cache.pop(ops.canonical_key(op.key), None)
        return {"response": self.response(response)}

    def _roundtrip(self, op: ops.RoundTrip) -> Any:
        model = self.model(op.cls)
        instance = model(*self.key_args(op.key), **copy.deepcopy(dict(op.values)))
        if op.form == "raw":
            serialized: Any = instance.serialize()
            back = model.from_raw_data(serialized)
        else:
            if op.form == "dynamodb":
                serialized = instance.to_dynamodb_dict()
            else:
                serialized = instance.to_simple_dict(force=op.force)
            back = model()
            if op.form == "dynamodb":
                back.from_dynamodb_dict(copy.deepcopy(serialized))
            else:
                back.from_simple_dict(copy.deepcopy(serialized))
        serialized = deviations.serialized_view(self.without_table(serialized), self.mode)
        wrapped = [name for name, spec in self._specs.items() if spec.encrypted and spec.codec == "attribute"]
        return {"serialized": serialized, "back": deviations.local_round_trip_view(self.item(back), wrapped, self.mode)}

    def _refresh(self, op: ops.Refresh) -> Any:
        instance = self.instance(op.cls, op.key, cached=True)
        instance.refresh(consistent_read=op.consistent)
        self.remember(instance)
        return self.item(instance)

    def _get(self, op: ops.Get) -> Any:
        attributes = list(op.attributes) if op.attributes else None
        hash_value, range_value = op.key
        found = self.model(op.cls).get(
            hash_value, range_value, consistent_read=op.consistent, attributes_to_get=attributes
        )
        if attributes is None:
            self.remember(found)
        return self.projected([self.item(found)], attributes)[0]

    def _batchget(self, op: ops.BatchGet) -> Any:
        attributes = list(op.attributes) if op.attributes else None
        keys = [k if self.shape.range_kind else k[0] for k in op.keys]
        found = self.model(op.cls).batch_get(keys, consistent_read=op.consistent, attributes_to_get=attributes)
        return sorted(self.projected([self.item(i) for i in found], attributes), key=repr)

    def _batchwrite(self, op: ops.BatchWrite) -> Any:
        model = self.model(op.cls)
        with model.batch_write() as batch:
            added = []
            for key, values in op.puts:
                instance = model(*self.key_args(key), **copy.deepcopy(dict(values)))
                batch.save(instance)
                added.append(instance)
            for key in op.deletes:
                batch.delete(model(*self.key_args(key)))
            if op.mutate is not None:
                position, name, value = op.mutate
                setattr(added[position], name, copy.deepcopy(value))
        return None

    def _query(self, op: ops.Query) -> Any:
        model = self.model(op.cls)
        attributes = list(op.attributes) if op.attributes else None
        arguments = dict(
            range_key_condition=self.condition(op.range_condition, op.cls),
            filter_condition=self.condition(op.filter, op.cls),
            consistent_read=op.consistent,
            index_name=op.index,
            scan_index_forward=op.forward,
            limit=op.limit,
            page_size=op.page_size,
            attributes_to_get=attributes,
        )
        first_results = model.query(op.hash, **arguments)
        first = self.results(first_results, attributes, op.index, scan=False)
        resumed = None
        if op.resume and first_results.last_evaluated_key:
            arguments["last_evaluated_key"] = first_results.last_evaluated_key
            resumed = self.results(model.query(op.hash, **arguments), attributes, op.index, scan=False)
        return {"first": first, "resumed": resumed}

    def _scan(self, op: ops.Scan) -> Any:
        model = self.model(op.cls)
        attributes = list(op.attributes) if op.attributes else None
        arguments = dict(
            filter_condition=self.condition(op.filter, op.cls),
            segment=op.segment[0] if op.segment else None,
            total_segments=op.segment[1] if op.segment else None,
            limit=op.limit,
            page_size=op.page_size,
            consistent_read=op.consistent,
            index_name=op.index,
            attributes_to_get=attributes,
        )
        first_results = model.scan(**arguments)
        first = self.results(first_results, attributes, op.index, scan=True)
        resumed = None
        if op.resume and first_results.last_evaluated_key:
            arguments["last_evaluated_key"] = first_results.last_evaluated_key
            resumed = self.results(model.scan(**arguments), attributes, op.index, scan=True)
        return {"first": first, "resumed": resumed}

    def _count(self, op: ops.Count) -> Any:
        return self.model(op.cls).count(
            op.hash,
            range_key_condition=self.condition(op.range_condition, op.cls),
            filter_condition=self.condition(op.filter, op.cls),
            index_name=op.index,
            limit=op.limit,
        )

    def _transactwrite(self, op: ops.TransactWrite) -> Any:
        with TransactWrite(connection=self.connection) as transaction:
            for part in op.parts:
                model = self.model(part.cls)
                condition = self.condition(part.condition, part.cls)
                if isinstance(part, ops.TxSave):
                    instance = model(*self.key_args(part.key), **copy.deepcopy(dict(part.values)))
                    transaction.save(instance, condition=condition)
                elif isinstance(part, ops.TxUpdate):
                    actions = [action.build(model) for action in part.actions]
                    transaction.update(model(*self.key_args(part.key)), actions, condition=condition)
                elif isinstance(part, ops.TxDelete):
                    transaction.delete(model(*self.key_args(part.key)), condition=condition)
                else:
                    transaction.condition_check(model, *self.key_args(part.key), condition=condition)
        return None

    def _transactget(self, op: ops.TransactGet) -> Any:
        with TransactGet(connection=self.connection) as transaction:
            futures = [transaction.get(self.model(cls), *self.key_args(key)) for cls, key in op.parts]
        found: List[Any] = []
        for future in futures:
            try:
                found.append(self.item(future.get()))
            except Exception as error:
                found.append(("error", error_signature(error)))
        return found

    def final_state(self) -> Any:
        return sorted((self.item(i) for i in self.side.base.scan(consistent_read=True)), key=repr)


# -- the comparison -------------------------------------------------------------------------------------


_SESSION: List[Any] = []


def _shared_session() -> Any:
    """One botocore session for every connection of the suite: a new session loads the DynamoDB service
    description again (~0.2 s), for each of the four connections of a case. Behaviour is unchanged."""
    if not _SESSION:
        _SESSION.append(botocore.session.get_session())
    return _SESSION[0]


def one_session() -> Any:
    """A context in which every PynamoDB connection made uses the suite's one botocore session."""
    return mock.patch.object(pynamodb.connection.base, "get_session", _shared_session)


def run_case(case: ops.Case, url: str, keyring: Any) -> bool:
    """Run ``case`` on both sides; raise :class:`Difference` at the first difference. False when DynamoDB
    refused the shape's table on both sides alike (nothing else was compared): ``assume`` it."""
    with one_session():
        return _run_case(case, url, keyring)


def _run_case(case: ops.Case, url: str, keyring: Any) -> bool:
    shape, mode = case.shape, case.mode
    run_id = uuid.uuid4().hex[:12]
    sides = [build(shape, name, url, f"conformance-{run_id}-{name}", keyring) for name in ("plain", "stash")]
    executors = [Executor(side, shape, mode, url) for side in sides]
    names = [a.name for a in shape.encrypted()]
    text, raw = secret_tokens(shape)
    created = []
    try:
        outcomes = []
        for executor in executors:
            try:
                executor.side.base.create_table(wait=True)
                created.append(executor.side.base)
                outcomes.append(("ok", None))
            except Exception as error:
                outcomes.append(("error", error_signature(error)))
        if outcomes[0] != outcomes[1]:
            raise Difference("create", -1, "create_table", outcomes[0], outcomes[1])
        if outcomes[0][0] != "ok":  # a schema DynamoDB refuses on both sides says nothing more
            return False
        for executor in executors:  # the recording works: it saw CreateTable, as sent
            sent = [r for r in executor.recorder.requests if r.operation == "CreateTable"]
            assert sent and sent[0].body, f"the {executor.side.name} side's requests were not recorded"
        _compare_requests(mode, -1, "create_table", executors, [0, 0], names, text, raw)

        for index, op in enumerate(case.ops):
            marks = [e.recorder.mark() for e in executors]
            results = [e.run(op) for e in executors]
            if results[0] != results[1]:
                raise Difference("result", index, op, results[0], results[1])
            _compare_requests(mode, index, op, executors, marks, names, text, raw)

        final = [e.final_state() for e in executors]
        if final[0] != final[1]:
            raise Difference("state", len(case.ops), "the items stored at the end", final[0], final[1])
    finally:
        for model in created:
            with contextlib.suppress(Exception):  # the run's outcome matters more than a table left in memory
                model.delete_table()
    return True


def _compare_requests(
    mode: str, index: int, op: Any, executors: List[Executor], marks: List[int],
    names: List[str], text: List[str], raw: List[bytes],
) -> None:
    plain, stash = executors
    if mode == "A":
        # create_table(wait=True) polls DescribeTable as often as the server takes: not compared there
        polls = ("DescribeTable",) if index < 0 else ()
        sent = [
            [normalized(r, e.side.table) for r in e.recorder.since(m) if r.operation not in polls]
            for e, m in zip(executors, marks)
        ]
        if sent[0] != sent[1]:
            raise Difference("requests", index, op, sent[0], sent[1])
        return
    found = leaks(stash.recorder.since(marks[1]), names, text, raw)
    if found:
        raise Difference("leak", index, op, "(the plain side sends plaintext by design)", found)
