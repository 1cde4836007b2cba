"""Shared fixtures: dummy AWS credentials, a DynamoDB Local server, unique table names, a boto3 client, a
keyring and a PynamoDB connection per module, and ``offline`` for unit tests.

Shared helpers that are not fixtures live in ``stashtest.py`` next to this file.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# CI machines are small and shared: a slow example is not a failing one. Tests time nothing.
settings.register_profile("stash", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("stash")

REPO_ROOT = Path(__file__).resolve().parent.parent
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session", autouse=True)
def _dummy_aws_env() -> Iterator[None]:
    """Make sure botocore never picks up real credentials from the environment."""
    added = [key for key in DUMMY_AWS_ENV if key not in os.environ]
    for key in added:
        os.environ[key] = DUMMY_AWS_ENV[key]
    yield
    for key in added:
        os.environ.pop(key, None)


def pytest_configure(config: pytest.Config) -> None:
    # The DynamoDB Local fixtures are pynamodb-stash's pytest plugin (pynamodb_stash/testing.py), which
    # pytest loads through the package's `pytest11` entry point. An install whose metadata predates the
    # entry point, or PYTEST_DISABLE_PLUGIN_AUTOLOAD, would leave it out: register the module then.
    # (tests/unit/test_pytest_plugin_offline.py checks the entry point itself in a fresh pytest process.)
    if not config.pluginmanager.has_plugin("pynamodb_stash"):
        import pynamodb_stash.testing

        config.pluginmanager.register(pynamodb_stash.testing, "pynamodb_stash")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "stash_dynamodb" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ddblocal)


def _ddb_home() -> Path:
    return Path(os.environ.get("PYNAMODB_STASH_DDB_HOME") or REPO_ROOT / ".cache" / "dynamodb-local")


@pytest.fixture(scope="session")
def stash_dynamodb_home() -> Path:
    """The project's DynamoDB Local is where scripts/install-dynamodb-local puts it (overrides the plugin's
    default, ~/.cache/pynamodb-stash/dynamodb-local); the plugin installs it there when it is missing."""
    return _ddb_home()


# For tests that run a DynamoDB Local of their own (tests/integration/test_faults.py): the plugin's parts.


def _find_jar() -> Path:
    from pynamodb_stash.testing import DynamoDBLocalError, install_dynamodb_local

    try:
        return install_dynamodb_local(_ddb_home())
    except DynamoDBLocalError as error:
        message = str(error)
    pytest.fail(message, pytrace=False)


def _free_port() -> int:
    from pynamodb_stash import _local_dynamodb

    return _local_dynamodb._free_port()


def _is_ready(url: str) -> bool:
    from pynamodb_stash import _local_dynamodb

    client = _local_dynamodb._client(
        url, connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1}
    )
    try:
        return _local_dynamodb._is_ready(client)
    finally:
        _local_dynamodb._close(client)


@pytest.fixture(scope="session")
def ddb_url(stash_dynamodb: str) -> str:
    """Endpoint URL of the DynamoDB Local server shared by the whole session: the plugin's
    ``stash_dynamodb`` (``$PYNAMODB_STASH_DDB_URL`` if set, else one started on a free port)."""
    return stash_dynamodb


@pytest.fixture(scope="session")
def kms_url() -> Iterator[str]:
    """moto's KMS, served in-process on a free loopback port: the real boto3 code path, no AWS.

    AWS KMS has no local server; only the KMS client is pointed here, DynamoDB stays DynamoDB Local.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def table_name(request: pytest.FixtureRequest) -> str:
    """A table name unique to this test, valid for DynamoDB ([A-Za-z0-9_.-], 3-255 chars)."""
    test_part = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:180]
    return f"t_{test_part}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def client(ddb_url: str) -> Any:
    """A boto3 DynamoDB client on the DynamoDB Local server, to read and write items past the library."""
    import boto3
    from stashtest import REGION

    return boto3.client("dynamodb", endpoint_url=ddb_url, region_name=REGION)


@pytest.fixture(scope="module")
def connection(ddb_url: str) -> Any:
    """A PynamoDB connection on the DynamoDB Local server (for transactions)."""
    from pynamodb.connection import Connection
    from stashtest import REGION

    return Connection(host=ddb_url, region=REGION)


@pytest.fixture(scope="module")
def keyring() -> Any:
    """A fresh keyring for the module."""
    from pynamodb_stash import Keyring

    return Keyring.generate()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No network, no keyring from the environment (nor a cached one), no global keyring.

    Unit modules opt in with ``pytestmark = pytest.mark.usefixtures("offline")``."""
    from pynamodb_stash import _keyring, configure

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("unit tests must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.delenv("PYNAMODB_STASH_KEYRING", raising=False)
    monkeypatch.setattr(_keyring, "_env_cache", None)
    configure(keyring=None)
    yield
    configure(keyring=None)


@pytest.fixture(scope="module")
def kms(kms_url: str) -> Any:
    """A boto3 KMS client on moto's KMS (the real boto3 code path)."""
    import boto3
    from stashtest import REGION

    return boto3.client("kms", endpoint_url=kms_url, region_name=REGION)


@pytest.fixture(scope="module")
def dynamodb(ddb_url: str) -> Any:
    """A boto3 DynamoDB client on DynamoDB Local, as a key store uses it."""
    import boto3
    from stashtest import REGION

    return boto3.client("dynamodb", endpoint_url=ddb_url, region_name=REGION)


@pytest.fixture
def kms_key(kms: Any) -> str:
    """A fresh KMS key on moto's KMS."""
    key_id: str = kms.create_key(Description="pynamodb-stash key store tests")["KeyMetadata"]["KeyId"]
    return key_id


@pytest.fixture
def table(dynamodb: Any, kms: Any, table_name: str) -> Iterator[str]:
    """A fresh key store table on DynamoDB Local, deleted after the test."""
    from pynamodb_stash.kms import KeyStore

    name = f"{table_name}-keys"
    KeyStore(name, kms_client=kms, dynamodb_client=dynamodb).create_table()
    yield name
    dynamodb.delete_table(TableName=name)
