"""``EncryptedModel``: a PynamoDB ``Model`` whose encrypted attributes are sealed to their item.

PynamoDB reaches an attribute's ``serialize``/``deserialize`` through three paths: container
(de)serialization of a whole item, attribute-level serialization of keys and condition values, and the
schema. An attribute sees only its value, never the item its ciphertext must be bound to, so the model
takes over the item path (``_item_codec``, installed through ``_pynamodb``), expands update actions
(``_updates``), completes projections and checks exact matches (``_reads``). Its schema is collected at
class creation (``_layout``). Each override below delegates in a few lines and passes keywords to
PynamoDB.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, TypeVar, cast

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import MetaModel, Model
from pynamodb.pagination import ResultIterator

from . import _binding, _fields, _item_codec, _layout, _pynamodb, _reads, _updates
from ._attributes import masked_repr
from ._keyring import Keyring
from ._wire import ciphertexts_as_text
from .exceptions import StashError

_M = TypeVar("_M", bound="EncryptedModel")


class _EncryptedModelMeta(MetaModel):
    """Collects the encryption schema of a model class and declares the HMAC companions."""

    def __new__(mcs, name: str, bases: Any, namespace: Dict[str, Any], discriminator: Any = None) -> Any:
        _layout.declare_companions(name, bases, namespace)
        return super().__new__(mcs, name, bases, namespace, discriminator)  # type: ignore[no-untyped-call]

    def __init__(cls, name: str, bases: Any, namespace: Dict[str, Any], discriminator: Any = None) -> None:
        super().__init__(name, bases, namespace, discriminator)
        _layout.bind_schema(cast("type[EncryptedModel]", cls))


class EncryptedModel(Model, metaclass=_EncryptedModelMeta):
    """A PynamoDB model with client-side encrypted attributes.

    Declare attributes as usual, and sensitive ones as :class:`EncryptedAttribute`. Every PynamoDB
    operation works and takes plaintext: values are encrypted before a request leaves the process and
    decrypted (and verified) after the response arrives.

    ``Meta`` options besides PynamoDB's:

    - ``keyring``: a :class:`Keyring`; else the one given to ``pynamodb_stash.configure`` or found in
      ``$PYNAMODB_STASH_KEYRING`` is used, resolved at first use.
    - ``logical_table_name``: the table name bound into ciphertexts and HMACs (default
      ``Meta.table_name``); set it to the old name when a table is restored or renamed.
    - ``plaintext_policy``: what reading a value still stored in plaintext under the attribute's plain
      name does (a table being migrated): ``"forbid"`` (default) raises ``DecryptionError``,
      ``"read_plaintext"`` returns it. Writes always encrypt.

    :raises DecryptionError: when a stored value does not verify for the item it was read from.
    """

    _stash: ClassVar[_layout.ModelState]
    """The model's encryption schema and what is computed from it (set at class creation)."""

    @classmethod
    def from_stream_image(cls: type[_M], image: Mapping[str, Any]) -> _M:
        """An instance from a DynamoDB Streams ``NewImage``/``OldImage`` (DynamoDB JSON), decrypted.

        :raises DecryptionError: if the image lacks the primary key, is malformed or does not verify.
        """
        return _item_codec.from_stream_image(cls, image)

    def __repr__(self) -> str:
        """PynamoDB's repr with every encrypted value shown as ``<encrypted>`` and HMACs as ``<hmac>``."""
        return masked_repr(self)

    def to_simple_dict(self, *, force: bool = False) -> Dict[str, Any]:
        """PynamoDB's ``to_simple_dict``, of the stored form (as ``to_dynamodb_dict``): encrypted values
        are their ciphertexts in base64 text, and their HMACs; ``from_simple_dict`` reads it back,
        decrypting and verifying as a read does. Ciphertexts need no ``force``: unlike other binary
        values, they are never ambiguous. ``force`` applies to the model's other binary and set values.

        :raises ValueError: (PynamoDB's) for a plain binary or set value without ``force``.
        """
        stored = self.serialize(null_check=False)
        return {name: _pynamodb.simple_value(ciphertexts_as_text(name, av), force) for name, av in stored.items()}

    # -- what attributes ask of their model (``_attributes``) ----------------------------------------

    @classmethod
    def _stash_keyring(cls) -> Keyring:
        return _binding.keyring_of(cls)

    @classmethod
    def _stash_table(cls) -> str:
        return _binding.table_of(cls)

    @classmethod
    def _stash_runtime(cls, keyring: Optional[Keyring] = None) -> _fields.Runtime:
        return _fields.runtime(cls, keyring)

    def _stash_instance_keyring(self, error: type[StashError]) -> Optional[Keyring]:
        return _binding.instance_keyring(self, error)

    # -- writes ------------------------------------------------------------------------------------

    def save(self, condition: Optional[Condition] = None, *, add_version_condition: bool = True) -> Dict[str, Any]:
        with _binding.audit_operation(type(self)):
            return super().save(condition=condition, add_version_condition=add_version_condition)

    def delete(self, condition: Optional[Condition] = None, *, add_version_condition: bool = True) -> Any:
        with _binding.audit_operation(type(self)):
            return super().delete(condition=condition, add_version_condition=add_version_condition)

    def update(
        self, actions: List[Action], condition: Optional[Condition] = None, *, add_version_condition: bool = True
    ) -> Any:
        """PynamoDB's ``update``, with ``x.set(v)``/``x.remove()`` applied to both stored attributes.

        :raises UnsupportedQueryError: for an action on a stored ``__source``/``__hmac`` name, or one
            that belongs to another model.
        :raises EncryptionError: with code ``item_too_large`` when DynamoDB refuses the update because the
            item would pass 400 KB (or its encrypted values alone would, before any request): the
            message gives what encryption adds to the values it sets and the largest of them.
        """

        def send(expanded: List[Action]) -> Any:
            return super(EncryptedModel, self).update(
                expanded, condition=condition, add_version_condition=add_version_condition
            )

        with _binding.audit_operation(type(self)):
            return _updates.update(self, actions, send)

    def get_update_kwargs_from_instance(
        self,
        actions: List[Action],
        condition: Optional[Condition] = None,
        return_values_on_condition_failure: Optional[str] = None,
        *,
        add_version_condition: bool = True,
    ) -> Dict[str, Any]:
        return super().get_update_kwargs_from_instance(
            _updates.expand(self, actions),
            condition=condition,
            return_values_on_condition_failure=return_values_on_condition_failure,
            add_version_condition=add_version_condition,
        )

    @classmethod
    def batch_write(cls: type[_M], auto_commit: bool = True) -> _reads.EncryptedBatchWrite[_M]:
        """PynamoDB's ``batch_write``, with backoff on unprocessed items (see :class:`EncryptedBatchWrite`)."""
        return _reads.EncryptedBatchWrite(cls, auto_commit=auto_commit)

    # -- reads -------------------------------------------------------------------------------------

    def refresh(self, consistent_read: bool = False) -> None:
        with _binding.audit_operation(type(self)):
            super().refresh(consistent_read=consistent_read)

    @classmethod
    def get(
        cls: type[_M],
        hash_key: Any,
        range_key: Optional[Any] = None,
        consistent_read: bool = False,
        attributes_to_get: Optional[Sequence[str]] = None,
    ) -> _M:
        with _binding.audit_operation(cls):
            return super().get(
                hash_key,
                range_key=range_key,
                consistent_read=consistent_read,
                attributes_to_get=_reads.projection(cls, attributes_to_get),
            )

    @classmethod
    def batch_get(
        cls: type[_M],
        items: Iterable[Any],
        consistent_read: Optional[bool] = None,
        attributes_to_get: Optional[Sequence[str]] = None,
    ) -> Iterator[_M]:
        """PynamoDB's ``batch_get``, taking plaintext keys, with backoff on unprocessed keys.

        Keys go in pages of 100 (DynamoDB's limit); equal keys are fetched once. Keys DynamoDB leaves
        unprocessed are requested again after an exponential, jittered delay.

        :raises ValueError: for a key that is not a hash key (or a (hash, range) pair); the message
            does not quote it.
        :raises GetError: when ``Meta.max_retry_attempts`` rounds in a row return none of the keys still
            unprocessed (a round that makes progress resets the count, as PynamoDB keeps going then).
        """
        return _reads.batch_get(cls, items, consistent_read, attributes_to_get)

    @classmethod
    def query(
        cls: type[_M],
        hash_key: Any,
        range_key_condition: Optional[Condition] = None,
        filter_condition: Optional[Condition] = None,
        consistent_read: bool = False,
        index_name: Optional[str] = None,
        scan_index_forward: Optional[bool] = None,
        limit: Optional[int] = None,
        last_evaluated_key: Optional[Dict[str, Dict[str, Any]]] = None,
        attributes_to_get: Optional[Iterable[str]] = None,
        page_size: Optional[int] = None,
        rate_limit: Optional[float] = None,
    ) -> ResultIterator[_M]:
        """PynamoDB's ``query``, taking plaintext for HMAC keys and conditions.

        With a truncated HMAC (``Equality(hmac_bits=...)``) in the key or the conditions, the results are
        checked after decryption and false positives dropped; ``limit`` then counts exact matches.
        """
        exact = _reads.exact_constraints(cls, range_key_condition, filter_condition)
        exact += _reads.exact_index_key(cls, index_name, hash_key)
        reads = _reads.exact_projection(cls, exact, index_name, attributes_to_get)
        with _binding.audit_operation(cls):  # hashing the key and the conditions
            results = super().query(
                hash_key,
                range_key_condition=range_key_condition,
                filter_condition=filter_condition,
                consistent_read=consistent_read,
                index_name=index_name,
                scan_index_forward=scan_index_forward,
                limit=None if exact else limit,
                last_evaluated_key=last_evaluated_key,
                attributes_to_get=_reads.projection(cls, reads, index_name),
                page_size=page_size or (limit if exact else None),
                rate_limit=rate_limit,
            )
        return _reads.results(cls, results, exact, limit)

    @classmethod
    def scan(
        cls: type[_M],
        filter_condition: Optional[Condition] = None,
        segment: Optional[int] = None,
        total_segments: Optional[int] = None,
        limit: Optional[int] = None,
        last_evaluated_key: Optional[Dict[str, Dict[str, Any]]] = None,
        page_size: Optional[int] = None,
        consistent_read: Optional[bool] = None,
        index_name: Optional[str] = None,
        rate_limit: Optional[float] = None,
        attributes_to_get: Optional[Sequence[str]] = None,
    ) -> ResultIterator[_M]:
        """PynamoDB's ``scan``; false positives of truncated HMACs are dropped, as for :meth:`query`."""
        exact = _reads.exact_constraints(cls, filter_condition)
        reads = _reads.exact_projection(cls, exact, index_name, attributes_to_get)
        results = super().scan(
            filter_condition=filter_condition,
            segment=segment,
            total_segments=total_segments,
            limit=None if exact else limit,
            last_evaluated_key=last_evaluated_key,
            page_size=page_size or (limit if exact else None),
            consistent_read=consistent_read,
            index_name=index_name,
            rate_limit=rate_limit,
            attributes_to_get=_reads.projection(cls, reads, index_name),
        )
        return _reads.results(cls, results, exact, limit)

    @classmethod
    def count(
        cls: type[_M],
        hash_key: Optional[Any] = None,
        range_key_condition: Optional[Condition] = None,
        filter_condition: Optional[Condition] = None,
        consistent_read: bool = False,
        index_name: Optional[str] = None,
        limit: Optional[int] = None,
        rate_limit: Optional[float] = None,
    ) -> int:
        """PynamoDB's ``count``; with a truncated HMAC it reads the items to count exact matches only."""
        exact = _reads.exact_constraints(cls, range_key_condition, filter_condition)
        if hash_key is not None:
            exact += _reads.exact_index_key(cls, index_name, hash_key)
        if exact:
            matches = cls.query(
                hash_key, range_key_condition=range_key_condition, filter_condition=filter_condition,
                consistent_read=consistent_read, index_name=index_name, limit=limit, rate_limit=rate_limit,
            )
            return sum(1 for _ in matches)
        with _binding.audit_operation(cls):
            return super().count(
                hash_key,
                range_key_condition=range_key_condition,
                filter_condition=filter_condition,
                consistent_read=consistent_read,
                index_name=index_name,
                limit=limit,
                rate_limit=rate_limit,
            )


_pynamodb.install_item_hooks(
    EncryptedModel,
    serialize=_item_codec.serialize_item,
    deserialize=_item_codec.deserialize_item,
    instantiate=classmethod(_item_codec.instantiate),
)
