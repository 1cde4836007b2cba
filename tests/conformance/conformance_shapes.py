"""Model shapes: a plain description of a PynamoDB model, its Hypothesis strategy, and the two model classes
built from one shape (a PynamoDB ``Model`` and an ``EncryptedModel``), each on its own table.

A shape is data (frozen dataclasses), so Hypothesis prints and shrinks it. ``build`` turns it into classes:
the plain side always declares PynamoDB attributes; the stash side declares the same attributes, except
that in mode B the attributes marked ``encrypted`` become ``EncryptedAttribute(<codec>)``.

Values come from small pools, so that conditions often match and keys often collide. Encrypted
attributes draw from *secret* pools that no plain attribute, key or DynamoDB field uses, so that the
recording check can look for them on the wire (``secret_tokens``).
"""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

from hypothesis import strategies as st
from pynamodb.attributes import (
    Attribute,
    BinaryAttribute,
    BinarySetAttribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    IncludeProjection,
    KeysOnlyProjection,
    LocalSecondaryIndex,
)
from pynamodb.models import Model

from pynamodb_stash import EncryptedAttribute, EncryptedModel, HmacAttribute, Keyring

UTC = timezone.utc
REGION = "us-east-1"

# -- kinds of attributes ------------------------------------------------------------------------------

SCALAR_KINDS = ("unicode", "number", "binary")  # what a key (of the table or an index) can be
KINDS = (
    "unicode", "number", "binary", "boolean", "datetime", "unicode_set", "number_set", "binary_set", "map", "list",
)
SET_KINDS = ("unicode_set", "number_set", "binary_set")
_ABBREV = {
    "unicode": "uni", "number": "num", "binary": "bin", "boolean": "bool", "datetime": "dt",
    "unicode_set": "uset", "number_set": "nset", "binary_set": "bset", "map": "map", "list": "list",
}
_PLAIN_CLASS: Dict[str, Callable[..., Attribute[Any]]] = {
    "unicode": UnicodeAttribute, "number": NumberAttribute,
    "binary": functools.partial(BinaryAttribute, legacy_encoding=False),
    "boolean": BooleanAttribute, "datetime": UTCDateTimeAttribute, "unicode_set": UnicodeSetAttribute,
    "number_set": NumberSetAttribute, "binary_set": functools.partial(BinarySetAttribute, legacy_encoding=False),
    "map": MapAttribute, "list": ListAttribute,
}
# The Python type whose built-in codec matches the PynamoDB attribute (EncryptedAttribute(<type>)).
# Numbers: int only, with int values (NumberAttribute returns int or float, which no one type covers).
_TYPE_CODEC: Dict[str, type] = {
    "unicode": str, "number": int, "binary": bytes, "boolean": bool, "datetime": datetime,
    "unicode_set": set, "map": dict, "list": list,
}

# -- value pools ---------------------------------------------------------------------------------------
# Plain values: small, overlapping pools (conditions match, keys collide). Secret values: used only by
# encrypted attributes, each long and distinctive enough to be searched for in a request's JSON.

_D1 = datetime(2020, 1, 1, tzinfo=UTC)
_D2 = datetime(2021, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)
_D3 = datetime(2022, 2, 2, tzinfo=UTC)
PLAIN: Dict[str, List[Any]] = {
    "unicode": ["a", "ab", "b", "ba", ""],
    "number": [0, 1, 2, -1, 2.5, 1.0],
    "int": [0, 1, 2, -1],
    "binary": [b"\x00", b"ab", b"b"],
    "boolean": [True, False],
    "datetime": [_D1, _D2, _D3],
    "unicode_member": ["a", "b", "c"],
    "number_member": [1, 2, 3.5],
    "binary_member": [b"a", b"b"],
    "json_scalar": ["a", 1, 2.5, True, None],
    "map_key": ["k1", "k2"],
    "ttl": [datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)],
}
SECRET: Dict[str, List[Any]] = {
    "unicode": ["zq-sec-alpha", "zq-sec-beta", "zq-sec-gamma"],
    "number": [7131000001, 7131000002, 7131000002.0, 7131000003.5],
    "int": [7131000001, 7131000002, 7131000004],
    "binary": [b"zq-bin-one", b"zq-bin-two"],
    "boolean": [True, False],
    "datetime": [datetime(2093, 4, 5, 6, 7, 8, tzinfo=UTC), datetime(2093, 4, 6, 1, 2, 3, 456, tzinfo=UTC)],
    "unicode_member": ["zq-mem-one", "zq-mem-two", "zq-mem-three"],
    "number_member": [7131000011, 7131000012, 7131000013.5],
    "binary_member": [b"zq-bmem-one", b"zq-bmem-two"],
    "json_scalar": ["zq-json-one", 7131000021, 7131000022.5, True, None],
    "map_key": ["zqk-one", "zqk-two"],
}
HASH_KEYS = {"unicode": ["h1", "h2", "h3"], "number": [1, 2, 3, 2.0]}
RANGE_KEYS = {"unicode": ["r1", "r2", "r3"], "number": [1, 2, 3]}


# -- shapes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttrSpec:
    """One non-key attribute. ``codec`` is how the stash side wraps it when encrypted: ``"attribute"``
    (``EncryptedAttribute(NumberSetAttribute())``) or ``"type"`` (``EncryptedAttribute(set)``)."""

    name: str
    kind: str
    null: bool = True
    encrypted: bool = False
    equality: bool = False
    codec: str = "attribute"

    def pool(self, key: str) -> List[Any]:
        return (SECRET if self.encrypted else PLAIN)[key]


@dataclass(frozen=True)
class IndexSpec:
    kind: str  # "gsi" or "lsi"
    name: str
    hash_key: str
    range_key: Optional[str]
    projection: str  # "all", "keys" or "include"
    include: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Shape:
    hash_kind: str
    range_kind: Optional[str]
    attributes: Tuple[AttrSpec, ...]
    indexes: Tuple[IndexSpec, ...] = ()
    ttl: bool = False
    version: bool = False
    discriminator: bool = False
    sub_attributes: Tuple[AttrSpec, ...] = ()
    """Attributes of the discriminator subclass (``discriminator`` only)."""
    include_by_stored_name: bool = False
    """Stash side: name encrypted attributes of INCLUDE projections by their stored names."""

    def attrs(self, cls: str = "base") -> Tuple[AttrSpec, ...]:
        return self.attributes + (self.sub_attributes if cls == "sub" else ())

    def all_attrs(self) -> Tuple[AttrSpec, ...]:
        return self.attributes + self.sub_attributes

    def spec(self, name: str) -> AttrSpec:
        return next(a for a in self.all_attrs() if a.name == name)

    def classes(self) -> Tuple[str, ...]:
        return ("base", "sub") if self.discriminator else ("base",)

    def key_names(self) -> Tuple[str, ...]:
        return ("pk", "sk") if self.range_kind else ("pk",)

    def value_names(self, cls: str = "base") -> Tuple[str, ...]:
        """Every attribute a result of class ``cls`` is compared on (keys, TTL and version included)."""
        names = list(self.key_names()) + [a.name for a in self.attrs(cls)]
        names += ["expires"] * self.ttl + ["version"] * self.version
        return tuple(names)

    def encrypted(self) -> Tuple[AttrSpec, ...]:
        return tuple(a for a in self.all_attrs() if a.encrypted)

    def index_keys(self) -> FrozenSet[str]:
        return frozenset(n for i in self.indexes for n in (i.hash_key, i.range_key) if n)

    def index(self, name: str) -> IndexSpec:
        return next(i for i in self.indexes if i.name == name)

    def hmac_key(self, index: Optional[str]) -> Optional[str]:
        """The encrypted attribute whose HMAC keys ``index`` on the stash side, if any."""
        if index is None:
            return None
        hash_key = self.index(index).hash_key
        return hash_key if hash_key != "pk" and self.spec(hash_key).encrypted else None


@st.composite
def shapes(draw: Any, mode: str, avoid: FrozenSet[str] = frozenset()) -> Shape:
    """A model shape. Mode ``"A"`` encrypts nothing; mode ``"B"`` encrypts at least one attribute that is
    not a key (of the table or an index), unless it has none. ``avoid``: open differences not to provoke."""
    hash_kind = draw(st.sampled_from(SCALAR_KINDS[:2]))
    range_kind = draw(st.none() | st.sampled_from(SCALAR_KINDS[:2]))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    attributes = []
    for position, kind in enumerate(kinds):
        null = draw(st.integers(0, 3)) > 0 or kind in SET_KINDS  # a missing non-null value fails a save
        attributes.append(AttrSpec(f"{_ABBREV[kind]}{position}", kind, null=null))
    discriminator = draw(st.booleans())
    sub_attributes = []
    if discriminator:
        for position, kind in enumerate(draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=2))):
            sub_attributes.append(AttrSpec(f"sub{_ABBREV[kind]}{position}", kind, null=True))

    indexes: List[IndexSpec] = []
    scalars = [a.name for a in attributes if a.kind in SCALAR_KINDS]
    others = [a.name for a in attributes]
    for number in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(("gsi", "lsi") if range_kind else ("gsi",)))
        if not scalars:
            break
        projection = draw(st.sampled_from(("all", "keys", "include")))
        include: Tuple[str, ...] = ()
        if projection == "include":
            include = tuple(draw(st.lists(st.sampled_from(others), min_size=1, max_size=2, unique=True)))
        if kind == "lsi":
            indexes.append(IndexSpec("lsi", f"lsi_{number}", "pk", draw(st.sampled_from(scalars)), projection, include))
        else:
            hash_key = draw(st.sampled_from(scalars))
            range_key = draw(st.none() | st.sampled_from([n for n in scalars if n != hash_key] or [None]))
            indexes.append(IndexSpec("gsi", f"gsi_{number}", hash_key, range_key, projection, include))

    shape = Shape(
        hash_kind=hash_kind,
        range_kind=range_kind,
        attributes=tuple(attributes),
        indexes=tuple(indexes),
        ttl=draw(st.booleans()),
        version=draw(st.booleans()),
        discriminator=discriminator,
        sub_attributes=tuple(sub_attributes),
    )
    if mode == "B":
        shape = draw(encrypt_some(shape, avoid))
    return shape


@st.composite
def encrypt_some(draw: Any, shape: Shape, avoid: FrozenSet[str]) -> Shape:
    """Encrypt a non-empty subset of the attributes that may be encrypted: not a key of the table nor of
    an LSI, nor TTL, version or discriminator, which must stay plaintext. The hash key of a GSI (that is
    no other index's key) may be: the stash side then keys that GSI on its HMAC (``HmacAttribute``)."""
    included = {n for i in shape.indexes for n in i.include}
    gsi_hash_keys = [i.hash_key for i in shape.indexes if i.kind == "gsi"]
    other_keys = [i.range_key for i in shape.indexes] + [i.hash_key for i in shape.indexes if i.kind == "lsi"]
    hmac_keyable = {n for n in gsi_hash_keys if n not in other_keys and n not in included}
    index_keys = shape.index_keys() - hmac_keyable
    candidates = [a for a in shape.all_attrs() if a.name not in index_keys]
    if "include_projection_names" in avoid:  # an open difference: see test_conformance.OPEN
        candidates = [a for a in candidates if a.name not in included]
    if not candidates:
        return shape
    names = set(draw(st.lists(st.sampled_from([a.name for a in candidates]), min_size=1, unique=True)))
    names |= {n for n in sorted(hmac_keyable) if draw(st.booleans())}  # HMAC-keyed GSIs, often
    changed = {}
    for a in candidates:
        if a.name not in names:
            continue
        codecs = ["attribute"] + (["type"] if a.kind in _TYPE_CODEC else [])
        if a.kind == "map" and "wrapped_map_type" in avoid:  # an open difference: see test_conformance.OPEN
            codecs = ["type"]
        equality = a.name in hmac_keyable or draw(st.booleans())  # an index key is an HMAC
        changed[a.name] = replace(a, encrypted=True, equality=equality, codec=draw(st.sampled_from(codecs)))
    return replace(
        shape,
        attributes=tuple(changed.get(a.name, a) for a in shape.attributes),
        sub_attributes=tuple(changed.get(a.name, a) for a in shape.sub_attributes),
    )


# -- building the model classes ----------------------------------------------------------------------


@dataclass
class Side:
    """One side of a comparison: its model classes (by ``"base"``/``"sub"``) on its own table."""

    name: str  # "plain" or "stash"
    table: str
    models: Dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> Any:
        return self.models["base"]


def _plain_attribute(spec: AttrSpec) -> Attribute[Any]:
    return _PLAIN_CLASS[spec.kind](null=spec.null)


def _stash_attribute(spec: AttrSpec) -> Attribute[Any]:
    if not spec.encrypted:
        return _plain_attribute(spec)
    codec: Any = _TYPE_CODEC[spec.kind] if spec.codec == "type" else _PLAIN_CLASS[spec.kind]()
    return EncryptedAttribute(codec, equality=spec.equality, null=spec.null)


def _key_attribute(kind: str, **flags: Any) -> Attribute[Any]:
    return _PLAIN_CLASS[kind](**flags)


def _index(spec: IndexSpec, shape: Shape, stash: bool) -> Any:
    projections = {
        "all": AllProjection,
        "keys": KeysOnlyProjection,
    }
    if spec.projection == "include":
        names = []
        for name in spec.include:
            attr = shape.spec(name)
            if stash and attr.encrypted and shape.include_by_stored_name:
                names += [f"{name}__source"] + [f"{name}__hmac"] * attr.equality
            else:
                names.append(name)
        projection: Any = IncludeProjection(names)
    else:
        projection = projections[spec.projection]()
    kinds = {a.name: a.kind for a in shape.all_attrs()}
    kinds["pk"] = shape.hash_kind
    namespace: Dict[str, Any] = {"Meta": type("Meta", (), {"index_name": spec.name, "projection": projection})}
    if stash and shape.hmac_key(spec.name):
        namespace[spec.hash_key] = HmacAttribute(hash_key=True)  # keyed on the HMAC of the model's attribute
    else:
        namespace[spec.hash_key] = _key_attribute(kinds[spec.hash_key], hash_key=True)
    if spec.range_key:
        namespace[spec.range_key] = _key_attribute(kinds[spec.range_key], range_key=True)
    base = GlobalSecondaryIndex if spec.kind == "gsi" else LocalSecondaryIndex
    return types.new_class(f"Index_{spec.name}", (base,), {}, lambda ns: ns.update(namespace))()


def build(shape: Shape, side: str, url: str, table: str, keyring: Keyring) -> Side:
    """The model classes of ``shape`` for ``side`` (``"plain"``: PynamoDB's ``Model``; ``"stash"``:
    ``EncryptedModel``, encrypting what the shape marks), on ``table`` at ``url``."""
    stash = side == "stash"
    meta: Dict[str, Any] = {"table_name": table, "host": url, "region": REGION, "billing_mode": "PAY_PER_REQUEST"}
    if stash:
        meta["keyring"] = keyring
    attribute = _stash_attribute if stash else _plain_attribute
    namespace: Dict[str, Any] = {"Meta": type("Meta", (), meta), "__module__": __name__}
    namespace["pk"] = _key_attribute(shape.hash_kind, hash_key=True)
    if shape.range_kind:
        namespace["sk"] = _key_attribute(shape.range_kind, range_key=True)
    for spec in shape.attributes:
        namespace[spec.name] = attribute(spec)
    if shape.ttl:
        namespace["expires"] = TTLAttribute(null=True)
    if shape.version:
        namespace["version"] = VersionAttribute()
    if shape.discriminator:
        namespace["cls"] = DiscriminatorAttribute()
    for spec in shape.indexes:
        namespace[f"index_{spec.name}"] = _index(spec, shape, stash)
    model_base = EncryptedModel if stash else Model
    kwargs = {"discriminator": "base"} if shape.discriminator else {}
    base = types.new_class("Thing", (model_base,), kwargs, lambda ns: ns.update(namespace))
    built = Side(side, table, {"base": base})
    if shape.discriminator:
        sub_namespace: Dict[str, Any] = {"__module__": __name__}
        for spec in shape.sub_attributes:
            sub_namespace[spec.name] = attribute(spec)
        built.models["sub"] = types.new_class(
            "SubThing", (base,), {"discriminator": "sub"}, lambda ns: ns.update(sub_namespace)
        )
    return built


# -- values ---------------------------------------------------------------------------------------------


def _json_values(spec: AttrSpec) -> st.SearchStrategy[Any]:
    scalar = st.sampled_from(spec.pool("json_scalar"))
    keys = st.sampled_from(spec.pool("map_key"))
    inner = scalar | st.lists(scalar, max_size=2) | st.dictionaries(keys, scalar, max_size=2)
    return inner


def values(spec: AttrSpec, *, allow_empty_set: bool = True) -> st.SearchStrategy[Any]:
    """Values of the attribute (never None: absence is drawn separately)."""
    kind = spec.kind
    if kind == "number" and spec.encrypted and spec.codec == "type":
        return st.sampled_from(spec.pool("int"))
    if kind in ("unicode", "number", "binary", "boolean", "datetime"):
        return st.sampled_from(spec.pool(kind))
    if kind in SET_KINDS:
        member = kind.replace("_set", "_member")
        return st.frozensets(st.sampled_from(spec.pool(member)), min_size=0 if allow_empty_set else 1).map(set)
    keys = st.sampled_from(spec.pool("map_key"))
    if kind == "map":
        return st.dictionaries(keys, _json_values(spec), max_size=2)
    return st.lists(_json_values(spec), max_size=3)


def set_members(spec: AttrSpec) -> st.SearchStrategy[Any]:
    return st.sampled_from(spec.pool(spec.kind.replace("_set", "_member")))


def key_values(shape: Shape) -> st.SearchStrategy[Tuple[Any, Any]]:
    hash_values = st.sampled_from(HASH_KEYS[shape.hash_kind])
    if not shape.range_kind:
        return st.tuples(hash_values, st.none())
    return st.tuples(hash_values, st.sampled_from(RANGE_KEYS[shape.range_kind]))


def secret_tokens(shape: Shape) -> Tuple[List[str], List[bytes]]:
    """What must never appear in a request of the stash side, as text and as bytes: every secret value
    of the kinds the shape encrypts (booleans excepted: ``true`` is everywhere)."""
    text: List[str] = []
    raw: List[bytes] = []
    for spec in shape.encrypted():
        kind = spec.kind
        if kind in ("unicode", "number"):
            pool = SECRET[kind]
        elif kind == "binary":
            pool = SECRET["binary"]
        elif kind == "datetime":
            text += [v.strftime("%Y-%m-%d") for v in SECRET["datetime"]]
            pool = []
        elif kind in SET_KINDS:
            pool = SECRET[kind.replace("_set", "_member")]
        elif kind in ("map", "list"):
            pool = SECRET["json_scalar"] + SECRET["map_key"]
        else:
            pool = []
        for value in pool:
            if isinstance(value, bytes):
                raw.append(value)
            elif isinstance(value, str):
                text.append(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                text.append(str(value))  # 7131000002.0 as "7131000002.0", which holds "7131000002" too
    return sorted(set(text)), sorted(set(raw))
