"""Operations: conditions, update actions and model operations as data, with their Hypothesis strategies.

Each spec is a frozen dataclass that ``build``s the PynamoDB expression against a model class, so the same
spec becomes ``PlainModel.x == v`` on one side and ``StashModel.x == v`` on the other. ``cases(mode)`` draws
a shape and a short sequence of operations on it.

Mode B respects what the library supports on encrypted attributes: conditions ``==``, ``!=``, ``is_in``
(with ``equality=True``), ``exists``, ``does_not_exist``; update actions ``set`` and ``remove``. The others
are drawn by ``unsupported_on_encrypted`` for the build-time test.

``avoid`` names open differences (``test_conformance.OPEN``) the sequence must not provoke, so that the
main properties stay green while each difference has its own strict-xfail test that forces it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Callable, FrozenSet, List, Optional, Set, Tuple, Union

import conformance_deviations as deviations
from conformance_shapes import (
    HASH_KEYS,
    PLAIN,
    RANGE_KEYS,
    SCALAR_KINDS,
    SET_KINDS,
    AttrSpec,
    IndexSpec,
    Shape,
    key_values,
    set_members,
    shapes,
    values,
)
from hypothesis import assume
from hypothesis import strategies as st
from pynamodb.expressions.condition import size

Key = Tuple[Any, Any]  # (hash, range or None)


def canonical_key(key: Key) -> Tuple[Any, ...]:
    """A key as DynamoDB compares it: numbers by value (``2`` and ``2.0`` are one key)."""
    return tuple(Decimal(str(v)).normalize() if isinstance(v, (int, float)) else v for v in key)


# -- conditions ----------------------------------------------------------------------------------------


def _attr(model: Any, name: str) -> Any:
    return getattr(model, name)


@dataclass(frozen=True)
class Cmp:
    attr: str
    op: str  # == != < <= > >=
    value: Any

    def build(self, model: Any) -> Any:
        a = _attr(model, self.attr)
        return {
            "==": lambda: a == self.value, "!=": lambda: a != self.value, "<": lambda: a < self.value,
            "<=": lambda: a <= self.value, ">": lambda: a > self.value, ">=": lambda: a >= self.value,
        }[self.op]()


@dataclass(frozen=True)
class Between:
    attr: str
    low: Any
    high: Any

    def build(self, model: Any) -> Any:
        return _attr(model, self.attr).between(self.low, self.high)


@dataclass(frozen=True)
class IsIn:
    attr: str
    values: Tuple[Any, ...]

    def build(self, model: Any) -> Any:
        return _attr(model, self.attr).is_in(*self.values)


@dataclass(frozen=True)
class Exists:
    attr: str
    exists: bool = True

    def build(self, model: Any) -> Any:
        a = _attr(model, self.attr)
        return a.exists() if self.exists else a.does_not_exist()


@dataclass(frozen=True)
class BeginsWith:
    attr: str
    prefix: Any

    def build(self, model: Any) -> Any:
        return _attr(model, self.attr).startswith(self.prefix)


@dataclass(frozen=True)
class Contains:
    attr: str
    item: Any

    def build(self, model: Any) -> Any:
        return _attr(model, self.attr).contains(self.item)


@dataclass(frozen=True)
class SizeCmp:
    attr: str
    op: str  # == < >
    n: int

    def build(self, model: Any) -> Any:
        s = size(_attr(model, self.attr))
        return {"==": lambda: s == self.n, "<": lambda: s < self.n, ">": lambda: s > self.n}[self.op]()


@dataclass(frozen=True)
class ElementCmp:
    """``M.m["k1"] == v`` (a map key) or ``M.l[0] == v`` (a list position)."""

    attr: str
    at: Union[str, int]
    value: Any

    def build(self, model: Any) -> Any:
        return _attr(model, self.attr)[self.at] == self.value


@dataclass(frozen=True)
class And:
    left: Any
    right: Any

    def build(self, model: Any) -> Any:
        return self.left.build(model) & self.right.build(model)


@dataclass(frozen=True)
class Or:
    left: Any
    right: Any

    def build(self, model: Any) -> Any:
        return self.left.build(model) | self.right.build(model)


@dataclass(frozen=True)
class Not:
    inner: Any

    def build(self, model: Any) -> Any:
        return ~self.inner.build(model)


# -- update actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetValue:
    attr: str
    value: Any

    def build(self, model: Any) -> Any:
        return _attr(model, self.attr).set(self.value)


@dataclass(frozen=True)
class SetIfNotExists:
    attr: str
    value: Any

    def build(self, model: Any) -> Any:
        a = _attr(model, self.attr)
        return a.set(a | self.value)


@dataclass(frozen=True)
class SetArithmetic:
    attr: str
    op: str  # + -
    n: Any

    def build(self, model: Any) -> Any:
        a = _attr(model, self.attr)
        return a.set(a + self.n if self.op == "+" else a - self.n)


@dataclass(frozen=True)
class Remove:
    attr: str

    def build(self, model: Any) -> Any:
        return _attr(model, self.attr).remove()


@dataclass(frozen=True)
class Add:
    attr: str
    value: Any

    def build(self, model: Any) -> Any:
        return _attr(model, self.attr).add(self.value)


@dataclass(frozen=True)
class DeleteFrom:
    attr: str
    value: Any

    def build(self, model: Any) -> Any:
        return _attr(model, self.attr).delete(self.value)


@dataclass(frozen=True)
class Append:
    attr: str
    value: Any
    prepend: bool = False

    def build(self, model: Any) -> Any:
        a = _attr(model, self.attr)
        return a.set(a.prepend(self.value) if self.prepend else a.append(self.value))


@dataclass(frozen=True)
class SetElement:
    """``M.m["k1"].set(v)`` or ``M.l[0].set(v)``."""

    attr: str
    at: Union[str, int]
    value: Any

    def build(self, model: Any) -> Any:
        return _attr(model, self.attr)[self.at].set(self.value)


@dataclass(frozen=True)
class RemoveElement:
    attr: str
    at: Union[str, int]

    def build(self, model: Any) -> Any:
        return _attr(model, self.attr)[self.at].remove()


# -- operations -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Save:
    cls: str
    key: Key
    values: Tuple[Tuple[str, Any], ...]
    condition: Any = None
    cached: bool = False  # save the instance last read or written for this key, with ``values`` applied


@dataclass(frozen=True)
class Update:
    cls: str
    key: Key
    actions: Tuple[Any, ...]
    condition: Any = None
    cached: bool = False


@dataclass(frozen=True)
class Delete:
    cls: str
    key: Key
    condition: Any = None
    cached: bool = False


@dataclass(frozen=True)
class Refresh:
    cls: str
    key: Key
    consistent: bool = False


@dataclass(frozen=True)
class RoundTrip:
    """No request: an instance through ``serialize``/``from_raw_data``, ``to_dynamodb_dict``/
    ``from_dynamodb_dict`` or ``to_simple_dict``/``from_simple_dict``."""

    cls: str
    key: Key
    values: Tuple[Tuple[str, Any], ...]
    form: str  # "raw", "dynamodb" or "simple"
    force: bool = False  # to_simple_dict(force=...)


@dataclass(frozen=True)
class Get:
    cls: str
    key: Key
    consistent: bool = False
    attributes: Optional[Tuple[str, ...]] = None


@dataclass(frozen=True)
class BatchGet:
    cls: str
    keys: Tuple[Key, ...]
    consistent: Optional[bool] = None
    attributes: Optional[Tuple[str, ...]] = None
    throttle: bool = False  # each BatchGetItem answers one item and leaves the rest unprocessed


@dataclass(frozen=True)
class BatchWrite:
    cls: str
    puts: Tuple[Tuple[Key, Tuple[Tuple[str, Any], ...]], ...]
    deletes: Tuple[Key, ...] = ()
    mutate: Optional[Tuple[int, str, Any]] = None  # after all were added: puts[i].attr = value


@dataclass(frozen=True)
class Query:
    cls: str
    hash: Any
    range_condition: Any = None
    filter: Any = None
    index: Optional[str] = None
    forward: Optional[bool] = None
    limit: Optional[int] = None
    page_size: Optional[int] = None
    attributes: Optional[Tuple[str, ...]] = None
    consistent: bool = False
    resume: bool = False  # then query again from last_evaluated_key


@dataclass(frozen=True)
class Scan:
    cls: str
    filter: Any = None
    index: Optional[str] = None
    limit: Optional[int] = None
    page_size: Optional[int] = None
    attributes: Optional[Tuple[str, ...]] = None
    consistent: Optional[bool] = None
    segment: Optional[Tuple[int, int]] = None
    resume: bool = False


@dataclass(frozen=True)
class Count:
    cls: str
    hash: Any = None
    range_condition: Any = None
    filter: Any = None
    index: Optional[str] = None
    limit: Optional[int] = None


@dataclass(frozen=True)
class TxSave:
    cls: str
    key: Key
    values: Tuple[Tuple[str, Any], ...]
    condition: Any = None


@dataclass(frozen=True)
class TxUpdate:
    cls: str
    key: Key
    actions: Tuple[Any, ...]
    condition: Any = None


@dataclass(frozen=True)
class TxDelete:
    cls: str
    key: Key
    condition: Any = None


@dataclass(frozen=True)
class TxCheck:
    cls: str
    key: Key
    condition: Any


@dataclass(frozen=True)
class TransactWrite:
    parts: Tuple[Any, ...]


@dataclass(frozen=True)
class TransactGet:
    parts: Tuple[Tuple[str, Key], ...]


@dataclass(frozen=True)
class Case:
    mode: str  # "A": nothing encrypted; "B": some attributes encrypted
    shape: Shape
    ops: Tuple[Any, ...]


# -- strategies: values, conditions, actions ------------------------------------------------------------


def _as_int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _special(shape: Shape) -> List[AttrSpec]:
    """TTL and version, as specs (always plain) so that conditions and actions can draw them."""
    found = []
    if shape.ttl:
        found.append(AttrSpec("expires", "ttl"))
    if shape.version:
        found.append(AttrSpec("version", "version"))
    return found


def _value(spec: AttrSpec, avoid: FrozenSet[str]) -> st.SearchStrategy[Any]:
    if spec.kind == "ttl":
        return st.sampled_from(PLAIN["ttl"])
    if spec.kind == "version":
        return st.integers(0, 3)
    allow_empty = deviations.empty_set_allowed(spec.encrypted, spec.codec)
    allow_empty &= not (spec.encrypted and "empty_wrapped_set" in avoid and spec.codec == "attribute")
    found = values(spec, allow_empty_set=allow_empty)
    if spec.encrypted and spec.kind == "number" and "number_canonical_form" in avoid:
        found = found.filter(lambda v: not (isinstance(v, float) and v.is_integer()))  # 7131000002.0
    return found


@st.composite
def item_values(
    draw: Any, shape: Shape, cls: str, avoid: FrozenSet[str], complete: bool = False
) -> Tuple[Tuple[str, Any], ...]:
    """Values for some of the attributes of class ``cls``; a missing non-null attribute makes the save fail
    (AttributeNullError), which both sides must do alike. ``complete``: every non-null attribute has one."""
    found = []
    specs = list(shape.attrs(cls)) + [s for s in _special(shape) if s.kind == "ttl"]
    for spec in specs:
        if (spec.null or not complete) and draw(st.integers(0, 4)) == 0:  # absent
            continue
        found.append((spec.name, draw(_value(spec, avoid))))
    return tuple(found)


@st.composite
def conditions(
    draw: Any, shape: Shape, cls: str, avoid: FrozenSet[str], *, keys: bool = True, depth: int = 0,
    without: Optional[str] = None,
) -> Any:
    """A condition on class ``cls``'s attributes (with ``keys``, its key attributes too; never on
    ``without``)."""
    if depth < 2 and draw(st.integers(0, 4)) == 0:
        left = draw(conditions(shape, cls, avoid, keys=keys, depth=depth + 1, without=without))
        combine = draw(st.sampled_from(("and", "or", "not")))
        if combine == "not":
            return Not(left)
        right = draw(conditions(shape, cls, avoid, keys=keys, depth=depth + 1, without=without))
        return And(left, right) if combine == "and" else Or(left, right)
    specs = [s for s in list(shape.attrs(cls)) + _special(shape) if s.name != without]
    if keys:
        specs.append(AttrSpec("pk", shape.hash_kind))
        if shape.range_kind:
            specs.append(AttrSpec("sk", shape.range_kind))
    assume(specs)  # a filter with nothing to filter on (a model whose one attribute keys the index)
    spec = draw(st.sampled_from(specs))
    return draw(condition_on(spec, avoid))


def _key_pool(spec: AttrSpec) -> st.SearchStrategy[Any]:
    pool = HASH_KEYS if spec.name == "pk" else RANGE_KEYS
    return st.sampled_from(pool[spec.kind])


def condition_on(spec: AttrSpec, avoid: FrozenSet[str]) -> st.SearchStrategy[Any]:
    """A supported condition on one attribute (on an encrypted one: only what the library supports)."""
    name = spec.name
    exists = st.builds(Exists, st.just(name), st.booleans())
    value = _key_pool(spec) if name in ("pk", "sk") else _value(spec, avoid)
    if spec.kind in SET_KINDS:  # == set() makes PynamoDB build a value botocore cannot send: noise
        value = values(spec, allow_empty_set=False)  # (pynamodb-stash refuses it when built, see below)
    if spec.encrypted:
        unordered = spec.kind in SET_KINDS + ("map",) and spec.codec == "attribute"
        if not spec.equality or (unordered and "wrapped_equality_order" in avoid):  # see test_conformance.OPEN
            return exists
        return st.one_of(
            exists,
            st.builds(Cmp, st.just(name), st.sampled_from(("==", "!=")), value),
            st.builds(IsIn, st.just(name), st.lists(value, min_size=1, max_size=3).map(tuple)),
        )
    kind = spec.kind
    if kind in SET_KINDS:  # == set() makes PynamoDB build a value botocore cannot send: noise
        value = values(spec, allow_empty_set=False)
    options = [exists, st.builds(Cmp, st.just(name), st.sampled_from(("==", "!=")), value)]
    if kind in SCALAR_KINDS + ("datetime", "ttl", "version"):
        options += [
            st.builds(Cmp, st.just(name), st.sampled_from(("<", "<=", ">", ">=")), value),
            st.tuples(value, value).map(lambda bounds: Between(name, *sorted(bounds))),
            st.builds(IsIn, st.just(name), st.lists(value, min_size=1, max_size=3).map(tuple)),
        ]
    if kind == "boolean":
        options.append(st.builds(IsIn, st.just(name), st.lists(value, min_size=1, max_size=2).map(tuple)))
    if kind in ("unicode", "binary"):
        options.append(st.builds(SizeCmp, st.just(name), st.sampled_from(("==", "<", ">")), st.integers(0, 3)))
    if kind == "unicode":  # PynamoDB refuses begins_with on binary when building it
        options += [st.builds(BeginsWith, st.just(name), value), st.builds(Contains, st.just(name), value)]
    if kind in SET_KINDS:
        options += [
            st.builds(Contains, st.just(name), set_members(spec)),
            st.builds(SizeCmp, st.just(name), st.sampled_from(("==", "<", ">")), st.integers(0, 3)),
        ]
    if kind == "map":
        options += [
            st.builds(ElementCmp, st.just(name), st.sampled_from(spec.pool("map_key")),
                      st.sampled_from(spec.pool("json_scalar")[:3])),
            st.builds(SizeCmp, st.just(name), st.sampled_from(("==", "<", ">")), st.integers(0, 3)),
        ]
    if kind == "list":
        options += [
            st.builds(ElementCmp, st.just(name), st.integers(0, 2), st.sampled_from(spec.pool("json_scalar")[:3])),
            st.builds(Contains, st.just(name), st.sampled_from(spec.pool("json_scalar")[:3])),
            st.builds(SizeCmp, st.just(name), st.sampled_from(("==", "<", ">")), st.integers(0, 3)),
        ]
    return st.one_of(options)


def action_on(spec: AttrSpec, avoid: FrozenSet[str]) -> st.SearchStrategy[Any]:
    """A supported update action on one attribute (on an encrypted one: set a value, or remove)."""
    name = spec.name
    value = _value(spec, avoid)
    remove = st.builds(Remove, st.just(name))
    if spec.encrypted:
        # set(None) removes on an EncryptedAttribute where PynamoDB stores NULL: a listed deviation.
        return st.one_of(st.builds(SetValue, st.just(name), value), remove)
    kind = spec.kind
    options = [st.builds(SetValue, st.just(name), value), remove]
    if kind != "version":
        options.append(st.builds(SetIfNotExists, st.just(name), value))
    if kind == "number":
        options += [
            st.builds(SetArithmetic, st.just(name), st.sampled_from("+-"), st.sampled_from([1, 2, 0.5])),
            st.builds(Add, st.just(name), st.sampled_from([1, 2, -1])),
        ]
    if kind in SET_KINDS:
        nonempty = values(spec, allow_empty_set=False)
        options += [st.builds(Add, st.just(name), nonempty), st.builds(DeleteFrom, st.just(name), nonempty)]
    if kind == "list":
        options += [
            st.builds(Append, st.just(name), st.lists(st.sampled_from(spec.pool("json_scalar")[:3]),
                                                      min_size=1, max_size=2), st.booleans()),
            st.builds(RemoveElement, st.just(name), st.integers(0, 2)),
            st.builds(SetElement, st.just(name), st.integers(0, 2), st.sampled_from(spec.pool("json_scalar")[:3])),
        ]
    if kind == "map":
        keys = st.sampled_from(spec.pool("map_key"))
        options += [
            st.builds(SetElement, st.just(name), keys, st.sampled_from(spec.pool("json_scalar")[:3])),
            st.builds(RemoveElement, st.just(name), keys),
        ]
    return st.one_of(options)


@st.composite
def actions(draw: Any, shape: Shape, cls: str, avoid: FrozenSet[str]) -> Tuple[Any, ...]:
    specs = list(shape.attrs(cls)) + [s for s in _special(shape) if s.kind == "ttl"]  # PynamoDB sets version
    chosen = draw(st.lists(st.sampled_from(specs), min_size=1, max_size=3, unique_by=lambda s: s.name))
    return tuple(draw(action_on(spec, avoid)) for spec in chosen)


def _projection(
    shape: Shape, cls: str, avoid: FrozenSet[str], by_key: bool = False, index: Optional[str] = None,
    limit: Optional[int] = None,
) -> st.SearchStrategy[Optional[Tuple[str, ...]]]:
    """Maybe a projection; ``by_key``: for get()/batch_get(), which no discriminator filter guards; ``index``
    and ``limit``: of the query or scan it is for."""
    encrypts = bool(shape.encrypted())
    if "plain_projection" in avoid and not encrypts:
        return st.none()
    if by_key and cls == "sub" and deviations.no_projected_get_through_subclass("B", encrypts):
        return st.none()
    partial_index = index is not None and shape.index(index).projection != "all"
    if encrypts and shape.discriminator and partial_index and "projection_discriminator_on_index" in avoid:
        return st.none()  # an open difference: see test_conformance.OPEN
    names = list(shape.value_names(cls))
    drawn = st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True).map(tuple)
    if limit is not None and deviations.keys_in_limited_projection("B", encrypts):
        drawn = drawn.map(lambda found: tuple(dict.fromkeys(found + shape.key_names())))
    return st.none() | drawn


# -- strategies: operations -----------------------------------------------------------------------------


@st.composite
def operation(draw: Any, shape: Shape, avoid: FrozenSet[str]) -> Any:
    cls = draw(st.sampled_from(shape.classes()))
    key = draw(key_values(shape))
    kind = draw(st.sampled_from((
        "save", "save", "update", "update", "delete", "refresh", "get", "batch_get", "batch_write",
        "query", "query", "scan", "count", "transact_write", "transact_get", "round_trip",
    )))
    maybe_condition = st.none() | conditions(shape, cls, avoid)
    if kind == "save":
        return Save(cls, key, draw(item_values(shape, cls, avoid)), draw(maybe_condition), draw(st.booleans()))
    if kind == "update":
        return Update(cls, key, draw(actions(shape, cls, avoid)), draw(maybe_condition), draw(st.booleans()))
    if kind == "delete":
        return Delete(cls, key, draw(maybe_condition), draw(st.booleans()))
    if kind == "round_trip":
        simple = not (shape.encrypted() and "to_simple_dict" in avoid)  # see test_conformance.OPEN
        form = draw(st.sampled_from(("raw", "dynamodb", "simple")[: 3 if simple else 2]))
        force = deviations.simple_dict_force(bool(shape.encrypted()), draw(st.booleans()))
        return RoundTrip(cls, key, draw(item_values(shape, cls, avoid, complete=True)), form, force)
    if kind == "refresh":
        return Refresh(cls, key, draw(st.booleans()))
    if kind == "get":
        return Get(cls, key, draw(st.booleans()), draw(_projection(shape, cls, avoid, by_key=True)))
    if kind == "batch_get":
        keys = tuple(draw(st.lists(key_values(shape), min_size=1, max_size=5)))
        throttle = "batch_get_throttled" not in avoid and draw(st.booleans())
        if "batch_get_number_dedupe" in avoid:  # 2 and 2.0 in one batch_get: see test_conformance.OPEN
            keys = tuple((_as_int(h), _as_int(r)) for h, r in keys)
        projection = draw(_projection(shape, cls, avoid, by_key=True))
        return BatchGet(cls, keys, draw(st.none() | st.booleans()), projection, throttle)
    if kind == "batch_write":  # distinct keys: DynamoDB refuses a batch that names one twice
        keys = draw(st.lists(key_values(shape), min_size=1, max_size=5, unique_by=canonical_key))
        split = draw(st.integers(0, len(keys)))
        on_add = "batch_write_serializes_on_add" in avoid  # see test_conformance.OPEN
        puts = tuple((key, draw(item_values(shape, cls, avoid, complete=on_add))) for key in keys[:split])
        mutate = None
        if puts and not on_add and draw(st.booleans()):
            spec = draw(st.sampled_from(shape.attrs(cls)))
            mutate = (draw(st.integers(0, len(puts) - 1)), spec.name, draw(_value(spec, avoid)))
        return BatchWrite(cls, puts, tuple(keys[split:]), mutate)
    if kind in ("query", "count"):
        return draw(_query(shape, cls, avoid, count=kind == "count"))
    if kind == "scan":
        index = draw(st.none() | st.sampled_from([i.name for i in shape.indexes] or [None]))
        ordered = shape.hmac_key(index) is None  # deviation hmac_index: no order, pages or segments
        limit = draw(st.none() | st.integers(1, 3)) if ordered else None
        return Scan(
            cls,
            draw(st.none() | conditions(shape, cls, avoid)),
            index,
            limit,
            draw(st.none() | st.integers(1, 3)) if ordered else None,
            draw(_projection(shape, cls, avoid, index=index, limit=limit)),
            draw(st.none() | st.booleans()),
            draw(st.none() | st.sampled_from([(0, 2), (1, 2)])) if ordered else None,
            draw(st.booleans()) and ordered,
        )
    if kind == "transact_write":  # distinct keys: DynamoDB refuses a transaction that names one twice
        parts = st.lists(_tx_part(shape, avoid), min_size=1, max_size=3, unique_by=lambda p: canonical_key(p.key))
        return TransactWrite(tuple(draw(parts)))
    parts = st.lists(st.tuples(st.sampled_from(shape.classes()), key_values(shape)), min_size=1, max_size=3,
                     unique_by=lambda p: canonical_key(p[1]))
    return TransactGet(tuple(draw(parts)))


@st.composite
def _tx_part(draw: Any, shape: Shape, avoid: FrozenSet[str]) -> Any:
    cls = draw(st.sampled_from(shape.classes()))
    key = draw(key_values(shape))
    kind = draw(st.sampled_from(("save", "update", "delete", "check")))
    maybe_condition = st.none() | conditions(shape, cls, avoid)
    if kind == "save":
        return TxSave(cls, key, draw(item_values(shape, cls, avoid)), draw(maybe_condition))
    if kind == "update":
        return TxUpdate(cls, key, draw(actions(shape, cls, avoid)), draw(maybe_condition))
    if kind == "delete":
        return TxDelete(cls, key, draw(maybe_condition))
    return TxCheck(cls, key, draw(conditions(shape, cls, avoid)))


def _index_key_spec(shape: Shape, name: str) -> AttrSpec:
    if name == "pk":
        return AttrSpec("pk", shape.hash_kind)
    return shape.spec(name)


@st.composite
def _query(draw: Any, shape: Shape, cls: str, avoid: FrozenSet[str], *, count: bool) -> Any:
    index = draw(st.none() | st.sampled_from([i.name for i in shape.indexes] or [None]))
    if index is None:
        hash_value = draw(st.sampled_from(HASH_KEYS[shape.hash_kind]))
        range_spec = AttrSpec("sk", shape.range_kind) if shape.range_kind else None
    else:
        spec = shape.index(index)
        hash_spec = _index_key_spec(shape, spec.hash_key)
        hash_value = draw(_key_pool(hash_spec) if hash_spec.name == "pk" else values(hash_spec))
        range_spec = _index_key_spec(shape, spec.range_key) if spec.range_key else None
    range_condition = None
    if range_spec is not None and draw(st.booleans()):
        pool = _key_pool(range_spec) if range_spec.name == "sk" else values(range_spec)
        ops = ["==", "<", "<=", ">", ">="]
        range_condition = draw(st.one_of(
            st.builds(Cmp, st.just(range_spec.name), st.sampled_from(ops), pool),
            st.tuples(pool, pool).map(lambda bounds: Between(range_spec.name, *sorted(bounds))),
            *([st.builds(BeginsWith, st.just(range_spec.name), pool)] if range_spec.kind == "unicode" else []),
        ))
    filter_condition = draw(st.none() | conditions(shape, cls, avoid, keys=False, without=shape.hmac_key(index)))
    limit = draw(st.none() | st.integers(1, 3))
    if count:
        if index is None and range_condition is None and draw(st.booleans()):
            hash_value = filter_condition = None  # count() of the whole table (PynamoDB takes no filter)
        return Count(cls, hash_value, range_condition, filter_condition, index, limit)
    return Query(
        cls, hash_value, range_condition, filter_condition, index,
        draw(st.none() | st.booleans()), limit, draw(st.none() | st.integers(1, 3)),
        draw(_projection(shape, cls, avoid, index=index, limit=limit)),
        draw(st.booleans()) if index is None or index.startswith("lsi") else False,
        draw(st.booleans()),
    )


@st.composite
def cases(
    draw: Any,
    mode: str,
    avoid: FrozenSet[str] = frozenset(),
    max_ops: int = 8,
    adjust: Optional[Callable[[Shape], Shape]] = None,
    then: Optional[Callable[[Shape], st.SearchStrategy[Tuple[Any, ...]]]] = None,
) -> Case:
    """A shape and a sequence of operations on it; the sequence starts with a few saves, so that reads
    find something. ``adjust`` changes the drawn shape; ``then`` draws operations to end with."""
    shape = draw(shapes(mode, avoid))
    if adjust is not None:
        shape = adjust(shape)
    seed = []
    for _ in range(draw(st.integers(1, 2))):
        cls = draw(st.sampled_from(shape.classes()))
        seed.append(Save(cls, draw(key_values(shape)), draw(item_values(shape, cls, avoid))))
    ops = draw(st.lists(operation(shape, avoid), min_size=0 if then else 3, max_size=max_ops))
    last = draw(then(shape)) if then is not None else ()
    return Case(mode, shape, tuple(seed + ops) + tuple(last))


# -- what the library refuses at build time ------------------------------------------------------------


UNSUPPORTED_CONDITIONS = ("<", "<=", ">", ">=", "between", "startswith", "contains", "size")
UNSUPPORTED_ACTIONS = ("add", "delete", "append", "prepend", "if_not_exists", "plus", "minus")
EQUALITY_ONLY = ("==", "!=", "is_in")


def unsupported_expression(model: Any, spec: AttrSpec, what: str, value: Any) -> Any:
    """Build the expression ``what`` on ``model``'s attribute: one the library must refuse when ``spec`` is
    encrypted (``==``/``!=``/``is_in`` only without ``equality``), and PynamoDB builds."""
    a = getattr(model, spec.name)
    table = {
        "<": lambda: a < value, "<=": lambda: a <= value, ">": lambda: a > value, ">=": lambda: a >= value,
        "between": lambda: a.between(value, value), "startswith": lambda: a.startswith(value),
        "contains": lambda: a.contains(value), "size": lambda: size(a) == 1,
        "add": lambda: a.add(value), "delete": lambda: a.delete(value), "append": lambda: a.set(a.append([value])),
        "prepend": lambda: a.set(a.prepend([value])), "if_not_exists": lambda: a.set(a | value),
        "plus": lambda: a.set(a + 1), "minus": lambda: a.set(a - 1),
        "==": lambda: a == value, "!=": lambda: a != value, "is_in": lambda: a.is_in(value),
    }
    return table[what]()


@st.composite
def unsupported_on_encrypted(draw: Any) -> Tuple[Shape, AttrSpec, str, Any]:
    """A mode-B shape, one of its encrypted attributes, an expression the library refuses on it, and a
    value of the kind the expression takes (PynamoDB may still refuse some: the test skips those)."""
    shape = draw(shapes("B").filter(lambda s: bool(s.encrypted())))
    spec = draw(st.sampled_from(shape.encrypted()))
    refused = list(UNSUPPORTED_CONDITIONS + UNSUPPORTED_ACTIONS) + ([] if spec.equality else list(EQUALITY_ONLY))
    what = draw(st.sampled_from(refused))
    value = draw(values(spec, allow_empty_set=False))
    if what == "startswith" or (what == "contains" and spec.kind not in SET_KINDS + ("list",)):
        value = "zq-sec"
    elif what == "contains" and spec.kind in SET_KINDS:
        value = draw(set_members(spec))
    elif what in ("append", "prepend") and spec.kind == "list":
        value = draw(st.sampled_from(spec.pool("json_scalar")))
    return shape, spec, what, value


def with_ops(case: Case, *ops: Any, first: bool = False) -> Case:
    return replace(case, ops=tuple(ops) + case.ops if first else case.ops + tuple(ops))


# -- forcing one difference -------------------------------------------------------------------------------
# Each strategy draws ordinary cases, then ends them with the operations that provoke one difference
# (test_conformance.OPEN or FIXED), so that its test meets that difference and no other.


@st.composite
def full_values(draw: Any, shape: Shape, cls: str, avoid: FrozenSet[str]) -> Tuple[Tuple[str, Any], ...]:
    """A value for every attribute of class ``cls`` but the forced ones (named ``z...``): a save that
    nothing but the forced value can fail."""
    return tuple((spec.name, draw(_value(spec, avoid))) for spec in shape.attrs(cls) if spec.name[0] != "z")


def _with_attribute(spec: AttrSpec) -> Callable[[Shape], Shape]:
    def adjust(shape: Shape) -> Shape:  # no version: a save of a fresh instance then always succeeds
        return replace(shape, attributes=shape.attributes + (spec,), version=False)

    return adjust


def _force_empty_wrapped_set(avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    spec = AttrSpec("zset", "number_set", null=True, encrypted=True, codec="attribute")

    @st.composite
    def then(draw: Any, shape: Shape) -> Tuple[Any, ...]:
        key = draw(key_values(shape))
        full = draw(full_values(shape, "base", avoid))
        save = Save("base", key, full + (("zset", set()),))
        update = Update("base", key, (SetValue("zset", set()),))
        return draw(st.sampled_from([(save, Get("base", key, True)), (update, Get("base", key, True))]))

    return cases("B", avoid, adjust=_with_attribute(spec), then=then)


def _force_batch_get_throttled(avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    def adjust(shape: Shape) -> Shape:  # a range key: enough distinct keys for five items
        return replace(shape, range_kind=shape.range_kind or "unicode")

    @st.composite
    def then(draw: Any, shape: Shape) -> Tuple[Any, ...]:
        every = [(h, r) for h in HASH_KEYS[shape.hash_kind][:3] for r in RANGE_KEYS[shape.range_kind or ""]]
        keys = draw(st.permutations(every))[:5]
        puts = tuple((key, draw(full_values(shape, "base", avoid))) for key in keys)
        return BatchWrite("base", puts), BatchGet("base", tuple(keys), True, throttle=True)

    return st.sampled_from("AB").flatmap(lambda mode: cases(mode, avoid, adjust=adjust, then=then))


def _force_plain_projection(avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    @st.composite
    def then(draw: Any, shape: Shape) -> Tuple[Any, ...]:
        projected = (shape.attributes[0].name,)  # not a key: PynamoDB projects only it
        key = draw(key_values(shape))
        return (draw(st.sampled_from([
            Scan("base", attributes=projected),
            Get("base", key, attributes=projected),
            BatchGet("base", (key,), attributes=projected),
            Query("base", key[0], attributes=projected),
        ])),)

    return cases("A", avoid, then=then)


def _force_batch_write_serializes_on_add(avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    required = AttrSpec("required", "unicode", null=False)

    def adjust(shape: Shape) -> Shape:  # distinct keys for two items, and an attribute that can be missing
        return replace(shape, range_kind=shape.range_kind or "unicode", attributes=shape.attributes + (required,))

    @st.composite
    def then(draw: Any, shape: Shape) -> Tuple[Any, ...]:
        first, second = draw(st.lists(key_values(shape), min_size=2, max_size=2, unique_by=canonical_key))
        full = draw(full_values(shape, "base", avoid))
        changed = draw(st.sampled_from(("a", "b")).filter(lambda v: v != dict(full)["required"]))
        return (draw(st.sampled_from([
            # the second item cannot be serialized: PynamoDB writes neither, stash the first
            BatchWrite("base", ((first, full), (second, tuple(v for v in full if v[0] != "required")))),
            # the first item changes after it was added: PynamoDB writes it as it is at commit
            BatchWrite("base", ((first, full), (second, full)), mutate=(0, "required", changed)),
        ])),)

    return st.sampled_from("AB").flatmap(lambda mode: cases(mode, avoid, adjust=adjust, then=then))


def _force_batch_get_number_dedupe(avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    def adjust(shape: Shape) -> Shape:
        return replace(shape, hash_kind="number")

    @st.composite
    def then(draw: Any, shape: Shape) -> Tuple[Any, ...]:
        range_value = draw(key_values(shape))[1]
        return (BatchGet("base", ((2, range_value), (2.0, range_value))),)

    return cases("A", avoid, adjust=adjust, then=then)


def _force_wrapped_map_type(avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    spec = AttrSpec("zmap", "map", null=True, encrypted=True, codec="attribute")

    @st.composite
    def then(draw: Any, shape: Shape) -> Tuple[Any, ...]:
        key = draw(key_values(shape))
        full = draw(full_values(shape, "base", avoid))
        return Save("base", key, full + (("zmap", {"zqk-one": "zq-json-one"}),)), Get("base", key, True)

    return cases("B", avoid, adjust=_with_attribute(spec), then=then)


def _force_number_canonical_form(avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    spec = AttrSpec("znum", "number", null=True, encrypted=True, codec="attribute")

    @st.composite
    def then(draw: Any, shape: Shape) -> Tuple[Any, ...]:
        key = draw(key_values(shape))
        full = draw(full_values(shape, "base", avoid))
        return Save("base", key, full + (("znum", 7131000002.0),)), Get("base", key, True)

    return cases("B", avoid, adjust=_with_attribute(spec), then=then)


def _force_include_projection_names(avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    secret = AttrSpec("zsecret", "unicode", null=True, encrypted=True, codec="type")

    def adjust(shape: Shape) -> Shape:
        index = IndexSpec("gsi", "gsi_include", "pk", None, "include", ("zsecret",))
        return replace(_with_attribute(secret)(shape), indexes=(index,) + shape.indexes[:1])

    @st.composite
    def then(draw: Any, shape: Shape) -> Tuple[Any, ...]:
        key = draw(key_values(shape))
        full = draw(full_values(shape, "base", avoid))
        return Save("base", key, full + (("zsecret", "zq-sec-alpha"),)), Query("base", key[0], index="gsi_include")

    return cases("B", avoid, adjust=adjust, then=then)


def unequally_ordered_sets() -> Tuple[Set[str], Set[str]]:
    """Two equal sets of strings that iterate in different orders, the first also once copied (the
    runner saves a deep copy): two strings that share a slot of a small set in this process (string hashes
    vary per process) make ``{a, b}`` and ``{b, a}`` differ in order."""
    candidates = [f"zq-mem-{n}" for n in range(64)]
    for position, first in enumerate(candidates):
        for second in candidates[position + 1 :]:
            stored = copy.deepcopy({first, second})
            for compared in ({first, second}, {second, first}):
                if list(copy.deepcopy(stored)) != list(compared):
                    return stored, compared
    raise AssertionError("no two of 64 strings share a slot of an 8-slot set")  # pigeonhole says otherwise


def _force_wrapped_equality_order(avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    spec = AttrSpec("ztags", "unicode_set", null=True, encrypted=True, equality=True, codec="attribute")

    @st.composite
    def then(draw: Any, shape: Shape) -> Tuple[Any, ...]:
        key = draw(key_values(shape))
        full = draw(full_values(shape, "base", avoid))
        stored, compared = unequally_ordered_sets()
        return Save("base", key, full + (("ztags", stored),)), Scan("base", Cmp("ztags", "==", compared))

    return cases("B", avoid, adjust=_with_attribute(spec), then=then)


def _force_projection_discriminator_on_index(avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    indexed = AttrSpec("zindexed", "unicode", null=True)
    secret = AttrSpec("zsecret", "unicode", null=True, encrypted=True, codec="type")

    def adjust(shape: Shape) -> Shape:  # a polymorphic model that encrypts, with a KEYS_ONLY index
        index = IndexSpec("gsi", "gsi_keys", "zindexed", None, "keys")
        return replace(
            shape, attributes=shape.attributes + (indexed, secret), indexes=(index,), discriminator=True,
            sub_attributes=shape.sub_attributes or (AttrSpec("subuni0", "unicode"),),
        )

    @st.composite
    def then(draw: Any, shape: Shape) -> Tuple[Any, ...]:
        key = draw(key_values(shape))
        full = draw(full_values(shape, "base", avoid))
        save = Save("base", key, full + (("zindexed", "a"), ("zsecret", "zq-sec-alpha")))
        return save, Scan(draw(st.sampled_from(("base", "sub"))), index="gsi_keys", attributes=shape.key_names())

    return cases("B", avoid, adjust=adjust, then=then)


def _force_to_simple_dict(avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    secret = AttrSpec("zsecret", "unicode", null=True, encrypted=True, codec="type")

    @st.composite
    def then(draw: Any, shape: Shape) -> Tuple[Any, ...]:
        key = draw(key_values(shape))
        full = draw(full_values(shape, "base", avoid))
        # Without force: no value whose simple form PynamoDB refuses (binary, sets), plain or encrypted.
        full = tuple((n, v) for n, v in full if not isinstance(v, (bytes, set, frozenset)))
        return (RoundTrip("base", key, full + (("zsecret", "zq-sec-alpha"),), "simple"),)

    return cases("B", avoid, adjust=_with_attribute(secret), then=then)


FORCING: dict = {
    "to_simple_dict": _force_to_simple_dict,
    "projection_discriminator_on_index": _force_projection_discriminator_on_index,
    "wrapped_equality_order": _force_wrapped_equality_order,
    "number_canonical_form": _force_number_canonical_form,
    "include_projection_names": _force_include_projection_names,
    "batch_write_serializes_on_add": _force_batch_write_serializes_on_add,
    "batch_get_number_dedupe": _force_batch_get_number_dedupe,
    "wrapped_map_type": _force_wrapped_map_type,
    "empty_wrapped_set": _force_empty_wrapped_set,
    "batch_get_throttled": _force_batch_get_throttled,
    "plain_projection": _force_plain_projection,
}


def forced(difference: str, avoid: FrozenSet[str]) -> st.SearchStrategy[Case]:
    """Cases that provoke ``difference`` (and, avoiding the others, nothing else)."""
    return FORCING[difference](avoid - {difference})
