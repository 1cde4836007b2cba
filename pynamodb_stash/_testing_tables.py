"""What the ``stash_tables`` fixture gives: :class:`StashTables`, which points PynamoDB models at
DynamoDB Local for a test, creates their tables and puts everything back after it."""

from __future__ import annotations

import contextlib
from typing import Any, Dict, List, Optional, Tuple, Type, Union

import pytest
from pynamodb.models import Model

from . import _pynamodb
from ._keyring import Keyring, KeyringSource
from ._local_dynamodb import DUMMY_CREDENTIALS, REGION, _client, _close


def _is_model_class(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, Model)


def _reset_connections(model: Type[Model]) -> None:
    """Forget the cached connections of ``model`` and its subclasses, so the next request reads ``Meta``."""
    _pynamodb.reset_connection(model)


class StashTables:
    """What the ``stash_tables`` fixture gives: call it with PynamoDB model classes (``EncryptedModel`` or
    plain) to use their tables in the test.

    For each model, until the end of the test: ``Meta.host`` is the ``stash_dynamodb`` endpoint,
    ``Meta.aws_access_key_id``/``aws_secret_access_key`` are dummy values (``aws_session_token`` none),
    an empty ``Meta.region`` becomes ``us-east-1``, and with ``keyring=`` ``Meta.keyring`` is that keyring
    (or keyring source). Its cached connection is dropped, so PynamoDB connects anew. Its table
    (``Meta.table_name``) is created with its indexes, on-demand (``PAY_PER_REQUEST``), and waited for.

    After the test the tables are deleted and every ``Meta`` attribute is restored (a ``Meta`` shared with
    a base class or subclasses is changed for them too, and restored). Calling it again with a model it
    already set up only applies ``keyring=``; models sharing a table create it once.
    """

    __module__ = "pynamodb_stash.testing"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._saved: Dict[Tuple[int, str], Tuple[Any, str, bool, Any]] = {}
        self._models: List[Type[Model]] = []
        self._tables: List[str] = []

    def __call__(self, *models: Type[Model], keyring: Optional[Union[Keyring, KeyringSource]] = None) -> None:
        """Set up ``models`` as described in the class docstring.

        :raises TypeError: if an argument is not a PynamoDB ``Model`` subclass, or none is given.
        :raises ValueError: if a model's ``Meta`` has no ``table_name``.
        :raises pytest.fail.Exception: (fails the test) if a table already exists on the endpoint: these
            tables are the test's own, made fresh and dropped after it.
        """
        if not models:
            raise TypeError("stash_tables() takes one or more PynamoDB model classes")
        for model in models:
            if not _is_model_class(model):
                raise TypeError(f"stash_tables() takes PynamoDB model classes, not {model!r}")
            if not getattr(getattr(model, "Meta", None), "table_name", None):
                raise ValueError(f"{model.__name__}.Meta has no table_name")
        for model in models:
            if keyring is not None:
                self._set(model, "keyring", keyring)
            if model not in self._models:
                self._models.append(model)
                self._set(model, "host", self.endpoint)
                if not getattr(model.Meta, "region", None):
                    self._set(model, "region", REGION)
                self._set(model, "aws_access_key_id", DUMMY_CREDENTIALS["aws_access_key_id"])
                self._set(model, "aws_secret_access_key", DUMMY_CREDENTIALS["aws_secret_access_key"])
                self._set(model, "aws_session_token", None)
            _reset_connections(model)
        for model in models:
            table = model.Meta.table_name
            if table in self._tables:
                continue
            if model.exists():
                pytest.fail(
                    f"stash_tables({model.__name__}): table {table!r} already exists on {self.endpoint}; "
                    "stash_tables creates each table for the test and drops it after: is another test or "
                    "fixture making it too?",
                    pytrace=False,
                )
            self._tables.append(table)
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")

    def _set(self, model: Type[Model], name: str, value: Any) -> None:
        meta = model.Meta
        key = (id(meta), name)
        if key not in self._saved:
            own = vars(meta)
            self._saved[key] = (meta, name, name in own, own.get(name))
        setattr(meta, name, value)

    def _finish(self) -> None:
        """Delete the tables, restore the ``Meta`` attributes and drop the cached connections."""
        try:
            if self._tables:
                client = _client(self.endpoint)
                try:
                    for table in self._tables:
                        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                            client.delete_table(TableName=table)  # unless the test deleted it
                finally:
                    _close(client)
        finally:
            for meta, name, had_own, value in reversed(list(self._saved.values())):
                if had_own:
                    setattr(meta, name, value)
                elif name in vars(meta):
                    delattr(meta, name)
            for model in self._models:
                _reset_connections(model)
