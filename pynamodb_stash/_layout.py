"""The schema of an encrypted model, computed once per class: the companion HMAC attributes declared at
class creation, the checks on declarations, each model's own copy of indexes keyed on HMACs, and the
frozen :class:`Layout` every other layer reads (plain attributes, encrypted fields, nested maps, keys).

Nothing here holds a key: binding fields to a keyring and table is ``_fields``'s.
"""

from __future__ import annotations

import copy
import inspect
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Tuple,
)

from pynamodb.attributes import (
    Attribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    TTLAttribute,
    VersionAttribute,
)
from pynamodb.constants import ALL
from pynamodb.indexes import IncludeProjection, Index, LocalSecondaryIndex
from pynamodb.models import Model

from . import _pynamodb
from ._attributes import (
    HMAC_SUFFIX,
    CompoundHmacAttribute,
    EncryptedAttribute,
    EncryptedMapAttribute,
    HmacAttribute,
    check_encrypted_name,
    check_path_name,
    check_plain_attribute,
)
from ._codecs import safe_reason
from ._keyring import TenantKeyrings
from ._wire import encode_key_value
from .exceptions import ConfigurationError, EncryptionError, StashError

if TYPE_CHECKING:
    from ._model import EncryptedModel

_PLAIN_ONLY = (VersionAttribute, TTLAttribute, DiscriminatorAttribute)


def declare_companions(model_name: str, bases: Any, namespace: Dict[str, Any]) -> None:
    # A field inherited from a base model is copied, so that each model class owns fields bound to it
    # (and to its table): class attributes are shared objects in PynamoDB.
    for base in bases:
        for name, attribute in getattr(base, "_attributes", {}).items():
            if name in namespace:
                continue
            if isinstance(attribute, EncryptedAttribute):
                namespace[name] = _fresh_copy(attribute)
            elif isinstance(attribute, CompoundHmacAttribute):
                namespace[name] = attribute.copy_for_model()
            elif isinstance(attribute, EncryptedMapAttribute):  # re-rooted to this model by __set_name__
                namespace[name] = type(attribute)(
                    null=attribute.null, default=attribute.default, attr_name=attribute.attr_name
                )

    for name, value in list(namespace.items()):
        if not isinstance(value, EncryptedAttribute):
            continue
        where = f"{model_name}.{name}"
        field = value
        if isinstance(field.type_, _PLAIN_ONLY):
            raise ConfigurationError(
                f"{where}: a {type(field.type_).__name__} must stay in plaintext; DynamoDB or PynamoDB reads it"
            )
        if (field.is_hash_key or field.is_range_key) and not field.equality:
            raise ConfigurationError(f"{where}: a key attribute needs equality=True (the key is its HMAC)")
        if (field.is_hash_key or field.is_range_key) and field.truncated:
            raise ConfigurationError(f"{where}: a truncated HMAC cannot be a table key (colliding items overwrite)")
        logical = field.declared_name or name
        check_encrypted_name(where, logical)
        companion_name = name + HMAC_SUFFIX
        if field.equality:
            existing = namespace.get(companion_name)
            if existing is not None and not (isinstance(existing, HmacAttribute) and existing.is_companion):
                raise ConfigurationError(f"{model_name}.{companion_name} clashes with the HMAC of {where}")
            companion = HmacAttribute(
                of=name,
                hash_key=field.is_hash_key,
                range_key=field.is_range_key,
                attr_name=logical + HMAC_SUFFIX,
            )
            companion.is_companion = True
            field.is_hash_key = field.is_range_key = False
            namespace[companion_name] = companion


class ModelState:
    """What pynamodb-stash keeps on one model class (its ``_stash`` attribute, set at class creation): the
    encrypted fields and compound HMACs declared, and what is computed from them on first use."""

    __slots__ = ("fields", "compounds", "layout", "runtime", "runtimes", "item_schema")

    def __init__(
        self, fields: Dict[str, EncryptedAttribute[Any]], compounds: Dict[str, CompoundHmacAttribute]
    ) -> None:
        self.fields = fields
        """The model's encrypted attributes by Python name."""
        self.compounds = compounds
        """The model's compound HMAC attributes by Python name."""
        self.layout: Optional[Layout] = None
        self.runtime: Any = None
        """The bound fields last used (``_fields.Runtime``), for the common case of one keyring."""
        self.runtimes: Dict[int, Any] = {}
        """Bound fields by keyring (several with tenants' keyrings)."""
        self.item_schema: Any = None
        """The raw-item API's view of the schema (``_items``)."""


def layout(cls: type[EncryptedModel]) -> Layout:
    """The model's :class:`Layout`, computed on first use."""
    state = cls._stash
    if state.layout is None:
        state.layout = Layout(cls)
    return state.layout


def logical_table(meta: Any) -> Any:
    """The table name bound into ciphertexts and HMACs: ``logical_table_name``, else ``table_name``."""
    return getattr(meta, "logical_table_name", None) or getattr(meta, "table_name", None)


def _fresh_copy(field: EncryptedAttribute[Any]) -> EncryptedAttribute[Any]:
    clone = copy.copy(field)
    clone.attr_path = list(field.attr_path)
    clone.model = None
    clone.hmac_attribute = None
    companion = field.hmac_attribute
    if companion is not None:  # restore the key flags the base's companion took over
        clone.is_hash_key, clone.is_range_key = companion.is_hash_key, companion.is_range_key
    return clone


def bind_schema(cls: type[EncryptedModel]) -> None:
    """Give a new model class its state: its encrypted fields (linked to their HMAC companions) and
    compound HMACs, and its own copies of the indexes keyed on HMACs.

    :raises ConfigurationError: for a declaration the library cannot honour (a plain attribute or map
        name it reserves, a compound part that is not a scalar attribute or has a truncated HMAC, an
        index key on an encrypted attribute not declared as ``HmacAttribute``).
    """
    fields: Dict[str, EncryptedAttribute[Any]] = {}
    for name, attribute in cls.get_attributes().items():
        if isinstance(attribute, EncryptedAttribute):
            attribute.model = cls
            fields[name] = attribute
        elif nested_kind(attribute) is None and not isinstance(attribute, HmacAttribute):
            check_plain_attribute(f"{cls.__name__}.{name}", name, attribute)
        elif nested_kind(attribute) is not None:
            check_path_name(f"{cls.__name__}.{name}", attribute.attr_name)
    for attribute in cls.get_attributes().values():
        if isinstance(attribute, HmacAttribute) and attribute.is_companion:
            field = fields[attribute.of or ""]
            attribute.field = field
            field.hmac_attribute = attribute
    compounds: Dict[str, CompoundHmacAttribute] = {}
    for name, attribute in cls.get_attributes().items():
        if isinstance(attribute, CompoundHmacAttribute):
            for part in attribute.parts:
                target = cls.get_attributes().get(part)
                if target is None or isinstance(target, (HmacAttribute, MapAttribute, ListAttribute)):
                    raise ConfigurationError(
                        f"{cls.__name__}.{name}: part {part!r} is not a top-level scalar attribute of the model"
                    )
                if isinstance(target, EncryptedAttribute) and target.truncated:
                    # The compound hashes the part in full: it would reveal more than the declared bits.
                    raise ConfigurationError(
                        f"{cls.__name__}.{name}: part {part!r} has a truncated HMAC, which a compound would undo"
                    )
            attribute.model = cls
            compounds[name] = attribute
    cls._stash = ModelState(fields, compounds)

    stored_names = {f.attr_name for f in fields.values()}
    stored_names.update(f.hmac_attribute.attr_name for f in fields.values() if f.hmac_attribute is not None)
    for member, index in inspect.getmembers(cls):
        if isinstance(index, Index) and _pynamodb.indexes(cls).get(index.Meta.index_name) is index:
            _own_index(cls, member, index, fields, stored_names)


def _own_index(
    cls: type[EncryptedModel],
    member: str,
    index: Index[Any],
    fields: Dict[str, EncryptedAttribute[Any]],
    stored_names: set[str],
) -> None:
    """Give the model its own copy of an index keyed on HMACs, bound to the model's fields.

    An index class's attributes are shared by every model that declares it (a base and its subclasses,
    or models on several tables), while an HMAC depends on the model's table and keyring.
    """
    index_class = type(index)
    table = logical_table(cls.Meta)
    copies: Dict[str, Any] = {}
    projection = stored_projection(index_class.Meta.projection, fields)
    for attr_name, attribute in index_class.Meta.attributes.items():
        where = f"{cls.__name__}: {index_class.__name__}.{attr_name}"
        if isinstance(attribute, EncryptedAttribute) or (
            not isinstance(attribute, HmacAttribute) and attribute.attr_name in stored_names
        ):
            # A plain index attribute on x__hmac would send key values unhashed.
            raise ConfigurationError(f"{where}: declare an index key on an encrypted attribute as HmacAttribute")
        if not isinstance(attribute, HmacAttribute):
            continue
        compound = cls._stash.compounds.get(attribute.of or "")
        if compound is not None:
            own = attribute.copy_for_model()
            own.compound = compound
            own.attr_name = compound.attr_name
            copies[attr_name] = own
            continue
        target = fields.get(attribute.of or "")
        if target is None or target.hmac_attribute is None:
            raise ConfigurationError(
                f"{where} refers to {attribute.of!r}, which is not an EncryptedAttribute with equality=True"
            )
        own = attribute.copy_for_model()
        own.bind(target, where=where)
        copies[attr_name] = own
        if table:  # a base model without a table never binds the declared attribute
            scope = (table, target.logical_name, target.hmac_scope, id(getattr(cls.Meta, "keyring", None)))
            (attribute.declared_by or attribute).bind_shared(target, scope, where=where)
    if not copies and projection is None:
        return
    meta = type("Meta", (index_class.Meta,), {} if projection is None else {"projection": projection})
    namespace = {"Meta": meta, "__module__": index_class.__module__, **copies}
    owned: Index[Any] = type(index_class.__name__, (index_class,), namespace)()
    _pynamodb.bind_index(owned, cls)
    setattr(cls, member, owned)
    _pynamodb.indexes(cls)[owned.Meta.index_name] = owned


def index_projects(model: type[Model], index_name: Optional[str]) -> Callable[[str], bool]:
    """Whether a read of the index (the table for None) can return a stored attribute name. A local
    secondary index returns any attribute (DynamoDB fetches what it does not project from the table);
    a global one only what it projects."""
    index = _pynamodb.indexes(model).get(index_name) if index_name is not None else None
    if index is None or isinstance(index, LocalSecondaryIndex) or index.Meta.projection.projection_type == ALL:
        return lambda name: True
    keys = {a.attr_name for a in _pynamodb.key_attributes(model) if a is not None}
    keys.update(a.attr_name for a in index.Meta.attributes.values() if a.is_hash_key or a.is_range_key)
    keys.update(index.Meta.projection.non_key_attributes or ())
    return keys.__contains__


def stored_projection(projection: Any, fields: Dict[str, EncryptedAttribute[Any]]) -> Optional[IncludeProjection]:
    """An INCLUDE projection naming encrypted attributes (by Python or logical name, as PynamoDB users
    write it), with those names replaced by what is stored: ``x__source``, and ``x__hmac`` with
    equality. None when it names none (or is no INCLUDE projection)."""
    names = getattr(projection, "non_key_attributes", None)
    if not isinstance(projection, IncludeProjection) or not names:
        return None
    by_name = {name: f for f in fields.values() for name in (f.python_name, f.logical_name)}
    if not any(name in by_name for name in names):
        return None
    stored: List[str] = []
    for name in names:
        field = by_name.get(name)
        if field is None:
            stored.append(name)
            continue
        stored.append(field.attr_name)
        if field.hmac_attribute is not None:
            stored.append(field.hmac_attribute.attr_name)
    return IncludeProjection(list(dict.fromkeys(stored)))


class PlainEntry(NamedTuple):
    """An attribute PynamoDB handles itself (not encrypted, no encrypted map)."""

    name: str
    attribute: Attribute[Any]
    stored: str
    """Its stored name."""
    attr_type: str
    direct: bool
    """Whether its descriptor is PynamoDB's plain one, so that its value can be read from and written to
    ``attribute_values`` directly."""
    container: bool
    """A map or list, serialized with ``null_check``."""


class NestedEntry(NamedTuple):
    """An ``EncryptedMapAttribute``, or a ``ListAttribute`` of them."""

    name: str
    attribute: Attribute[Any]
    stored: str
    map_class: type[EncryptedMapAttribute]
    is_list: bool


class Layout:
    """How one model class (de)serializes, computed once from its attributes (see :func:`layout`).

    ``plain``: the attributes PynamoDB handles itself; ``nested``: encrypted maps and lists of them;
    ``fields``: the encrypted attributes; ``compound_parts``: the plain entries an encrypted-only read
    needs (compound HMACs and their parts, the tenant); ``hash_key``/``range_key``: stored name and type.
    """

    __slots__ = ("plain", "compound_parts", "nested", "fields", "has_defaults", "hash_key", "range_key")

    def __init__(self, cls: type[EncryptedModel]) -> None:
        plain = []
        nested = []
        for name, attribute in cls.get_attributes().items():
            if isinstance(attribute, (EncryptedAttribute, HmacAttribute)) and (
                not isinstance(attribute, HmacAttribute) or attribute.is_companion
            ):
                continue
            map_class = nested_kind(attribute)
            if map_class is not None:
                nested.append(
                    NestedEntry(name, attribute, attribute.attr_name, map_class, isinstance(attribute, ListAttribute))
                )
                continue
            kind = type(attribute)
            direct = kind.__get__ is Attribute.__get__ and kind.__set__ is Attribute.__set__
            container = isinstance(attribute, (ListAttribute, MapAttribute))
            plain.append(PlainEntry(name, attribute, attribute.attr_name, attribute.attr_type, direct, container))
        self.plain: Tuple[PlainEntry, ...] = tuple(plain)
        parts = {part for compound in cls._stash.compounds.values() for part in compound.parts}
        parts.update(cls._stash.compounds)  # the stored compounds themselves, to be checked
        source = getattr(getattr(cls, "Meta", None), "keyring", None)  # a model that only serializes: no Meta
        if isinstance(source, TenantKeyrings) and source.attribute is not None:
            parts.add(source.attribute)  # a compound is hashed under the item's tenant's keyring
        self.compound_parts = tuple(entry for entry in plain if entry[0] in parts)
        """The compound HMACs and the plain attributes they need (their parts, the tenant): all that an
        encrypted-only read reads besides the encrypted values."""
        self.nested: Tuple[NestedEntry, ...] = tuple(nested)
        self.fields = tuple(cls._stash.fields.values())
        self.has_defaults = any(
            a.default is not None or a.default_for_new is not None for a in cls.get_attributes().values()
        )
        hash_key, range_key = _pynamodb.key_attributes(cls)
        self.hash_key = (hash_key.attr_name, hash_key.attr_type) if hash_key is not None else None
        self.range_key = (range_key.attr_name, range_key.attr_type) if range_key is not None else None

    def item_key(
        self, item: Dict[str, Dict[str, Any]], error: type[StashError] = EncryptionError
    ) -> Optional[bytes]:
        """The encoded primary key of a serialized item, or None if a key attribute is missing.

        :raises StashError: ``error``, for a key value that has no canonical form (a number DynamoDB
            cannot store, text that is not Unicode); the message names the attribute, not the value.
        """
        encoded = b""
        for key in (self.hash_key, self.range_key):
            if key is None:
                continue
            name, attr_type = key
            value = item.get(name)
            if value is None or attr_type not in value:
                return None
            try:
                encoded += encode_key_value(attr_type, value[attr_type])
            except Exception as exc:
                raise error(f"key attribute {name}: {safe_reason(exc)}") from None
        return encoded


def nested_kind(attribute: Attribute[Any]) -> Optional[type[EncryptedMapAttribute]]:
    """The map class of an EncryptedMapAttribute, or of a list of them; None for anything else."""
    if isinstance(attribute, EncryptedMapAttribute):
        return type(attribute)
    return map_list(attribute)


def map_list(attribute: Attribute[Any]) -> Optional[type[EncryptedMapAttribute]]:
    """The element class of a ``ListAttribute(of=EncryptedMapAttribute)``; None for anything else."""
    if isinstance(attribute, ListAttribute):
        element = attribute.element_type
        if isinstance(element, type) and issubclass(element, EncryptedMapAttribute):
            return element
    return None


def nested_fields(
    map_class: type[EncryptedMapAttribute], prefix: str
) -> Iterator[Tuple[str, EncryptedAttribute[Any]]]:
    for attribute in map_class.get_attributes().values():
        if isinstance(attribute, EncryptedAttribute):
            yield f"{prefix}.{attribute.logical_name}", attribute
            continue
        inner = nested_kind(attribute)
        if inner is not None:
            suffix = "[]" if isinstance(attribute, ListAttribute) else ""
            yield from nested_fields(inner, f"{prefix}.{attribute.attr_name}{suffix}")


def index_keyed(cls: type[EncryptedModel]) -> frozenset[str]:
    """Python names of the fields whose HMAC keys one of the model's indexes."""
    names = set()
    for index in _pynamodb.indexes(cls).values():
        for attribute in index.Meta.attributes.values():
            field = getattr(attribute, "field", None)
            if isinstance(attribute, HmacAttribute) and field is not None and (
                attribute.is_hash_key or attribute.is_range_key
            ):
                names.add(field.python_name)
    return frozenset(names)
