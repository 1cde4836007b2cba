"""PynamoDB's private names, all in one place: every one pynamodb-stash touches goes through here.

PynamoDB (6.1) offers no public hook for what field-level encryption needs: the item path (an attribute
never sees its item), the key schema of a model or index, the discriminator, the connection. This module
names each private member the library uses, with the contract it relies on; no other module touches a
private PynamoDB name (``tests/unit/test_pynamodb_hooks.py`` enforces it, checks that each name exists
with the parameters passed here, and fingerprints the PynamoDB code the library copies or bypasses, so
that a PynamoDB release that changes it fails a test naming the function here to review).

The overrides, installed on ``EncryptedModel`` by :func:`install_item_hooks`:

=========================================  =======================================================
PynamoDB member                            why it is taken over
=========================================  =======================================================
``AttributeContainer._container_serialize``  serialize() and every write: seal each value to its item
``AttributeContainer._container_deserialize``  a refresh and a model built from an item
``Model._instantiate``                     from_raw_data (get, query, scan, batch_get, TransactGet)
                                           calls the base class's deserializer past an override
``_Size.__init__``                         ``size()`` is the one expression function that bypasses the
                                           attribute: refused on encrypted attributes when built
=========================================  =======================================================
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from pynamodb._util import attr_value_to_simple_dict
from pynamodb.attributes import Attribute, MapAttribute
from pynamodb.connection import Connection, TableConnection
from pynamodb.expressions.operand import _Size
from pynamodb.indexes import Index
from pynamodb.models import Model

# -- the item path ----------------------------------------------------------------------------------


def install_item_hooks(
    model_class: type[Any],
    *,
    serialize: Callable[..., Dict[str, Dict[str, Any]]],
    deserialize: Callable[..., None],
    instantiate: Any,
) -> None:
    """Make ``model_class`` serialize, deserialize and build instances from items with these functions
    (``instantiate`` a classmethod object)."""
    model_class._container_serialize = serialize
    model_class._container_deserialize = deserialize
    model_class._instantiate = instantiate


def wrap_size_operand(check: Callable[[Any], None]) -> None:
    """Call ``check(path)`` whenever ``size(path)`` is built, before PynamoDB's own constructor."""
    build = _Size.__init__

    def __init__(self: _Size, path: Any) -> None:
        check(path)
        build(self, path)

    _Size.__init__ = __init__  # type: ignore[method-assign]


def set_discriminator_and_defaults(instance: Model, *, defaults: bool) -> None:
    """What PynamoDB's deserializer does first: the class's discriminator value, then (``defaults``) the
    attributes' defaults as for an instance read from the table."""
    instance._set_discriminator()
    if defaults:
        instance._set_defaults(_user_instantiated=False)


def new_map_instance(map_class: type[MapAttribute[Any, Any]]) -> MapAttribute[Any, Any]:
    """An empty instance of a map class, as PynamoDB builds one when it reads a map."""
    return map_class._instantiate({})


def is_map_class_object(attribute: Attribute[Any], instance: Any) -> bool:
    """Whether ``instance`` is the map attribute's class-level object (a descriptor read on the class)."""
    return bool(attribute._is_map_attribute_class_object(instance))


def is_map_value(value: Any) -> bool:
    """Whether ``value`` is a map instance holding values, not a map attribute declared on a class."""
    return isinstance(value, MapAttribute) and bool(value._is_attribute_container())  # type: ignore[no-untyped-call]


def python_name(instance: Model, stored_name: str) -> str:
    """The Python name of the attribute stored under ``stored_name``."""
    return str(instance._dynamo_to_python_attr(stored_name))


# -- keys, indexes and the discriminator ----------------------------------------------------------------


def indexes(model: type[Model]) -> Dict[str, Index[Any]]:
    """The model's indexes by index name; the dict PynamoDB itself consults (it may be assigned to)."""
    found: Dict[str, Index[Any]] = model._indexes
    return found


def key_attributes(model: type[Model]) -> Tuple[Any, Any]:
    """The hash and range key attributes of a model class (the range key None without one; the hash key
    None only on a base model that declares none)."""
    return model._hash_key_attribute(), model._range_key_attribute()  # type: ignore[no-untyped-call]


def index_hash_key_attribute(index: Index[Any]) -> Any:
    """The hash key attribute of an index."""
    return index._hash_key_attribute()  # type: ignore[no-untyped-call]


def bind_index(index: Index[Any], model: type[Model]) -> None:
    """Tell an index instance which model it queries (PynamoDB sets it when the model class is built)."""
    index._model = model


def discriminator_attribute(model: type[Model]) -> Any:
    return model._get_discriminator_attribute()


def discriminator_class(model: type[Model], item: Dict[str, Any]) -> Optional[type[Any]]:
    """The class a stored item's discriminator names, or None without one.

    :raises ValueError: (PynamoDB's) for an unknown discriminator value.
    """
    found: Optional[type[Any]] = model._get_discriminator_class(item)
    return found


def serialized_keys(instance: Model) -> Tuple[Any, Any]:
    """The instance's hash and range key values, serialized (the range key None without one)."""
    hash_key, range_key = instance._get_hash_range_key_serialized_values()
    return hash_key, range_key


def key_item(instance: Model) -> Dict[str, Any]:
    """The instance's primary key as DynamoDB JSON, for a delete request."""
    keys: Dict[str, Any] = instance._get_keys()  # type: ignore[no-untyped-call]
    return keys


def save_arguments(instance: Model, **kwargs: Any) -> Tuple[Any, Dict[str, Any]]:
    """The positional and keyword arguments of ``Connection.put_item`` for saving ``instance``."""
    args, save = instance._get_save_args(**kwargs)
    return args, save


# -- the connection -------------------------------------------------------------------------------------


def connection(model: type[Model]) -> TableConnection:
    """The model's table connection (created on first use)."""
    return model._get_connection()


def reset_connection(model: type[Model]) -> None:
    """Drop the cached connections of ``model`` and its subclasses, after ``Meta.host`` or
    ``Meta.region`` changed, so that the next request reads ``Meta`` again."""
    pending: List[type[Any]] = [model]
    while pending:
        cls = pending.pop()
        if "_connection" in vars(cls) or cls is model:
            cls._connection = None
        pending.extend(cls.__subclasses__())


def base_connection(model: type[Model]) -> Connection:
    """The connection under the model's table connection (for transactions across tables)."""
    return model._get_connection().connection


def batch_get_page(
    model: type[Model], keys: List[Any], consistent_read: Optional[bool], attributes_to_get: Any
) -> Tuple[List[Dict[str, Any]], List[Any]]:
    """One ``BatchGetItem`` round: the items returned, and the keys DynamoDB left unprocessed."""
    page, unprocessed = model._batch_get_page(keys, consistent_read, attributes_to_get)  # type: ignore[no-untyped-call]
    return page, unprocessed


# -- the simple dict --------------------------------------------------------------------------------


def simple_value(attribute_value: Dict[str, Any], force: bool) -> Any:
    """One attribute value in ``to_simple_dict``'s form, as PynamoDB's own ``to_simple_dict`` writes it
    (``force`` as there: without it, binary and set values raise ``ValueError``)."""
    return attr_value_to_simple_dict(attribute_value, force)
