"""The pytest plugin seen from a user's test session: a separate ``pytest`` process, with the plugin loaded
by its entry point, on this session's DynamoDB Local (through ``$PYNAMODB_STASH_DDB_URL``). Checks what
one test cannot see of its own fixtures: what they leave behind, and what they change for the session.
"""

from __future__ import annotations

import uuid

import pytest

pytest_plugins = ["pytester"]

INI = """
[pytest]
filterwarnings =
    error
    ignore:Boto3 will no longer support Python:Warning
"""


def run_user_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ddb_url: str, source: str
) -> pytest.RunResult:
    """Run ``source`` as a user's test module, in its own pytest process, on this session's DynamoDB Local.

    The environment carries real-looking AWS credentials, which the plugin must not let through."""
    monkeypatch.setenv("PYNAMODB_STASH_DDB_URL", ddb_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-looking-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "real-looking-token")
    monkeypatch.delenv("PYNAMODB_STASH_KEYRING", raising=False)
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makeini(INI)
    pytester.makepyfile(source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")


SESSION = '''
import os

import botocore.session
import pytest
from pynamodb.attributes import UnicodeAttribute

from pynamodb_stash import EncryptedAttribute, EncryptedModel, Keyring, _keyring, configure

ORIGINAL = Keyring.generate()
configure(keyring=ORIGINAL)
OWN = Keyring.generate()
TABLES = ("TABLE_PREFIX-own", "TABLE_PREFIX-configured")


class Own(EncryptedModel):
    class Meta:
        table_name = TABLES[0]
        keyring = OWN

    pk = UnicodeAttribute(hash_key=True)
    text = EncryptedAttribute(str)


class Configured(EncryptedModel):
    class Meta:
        table_name = TABLES[1]
        host = "http://127.0.0.1:9"
        region = "eu-west-1"

    pk = UnicodeAttribute(hash_key=True)
    text = EncryptedAttribute(str)


seen = {}


def tables_on_the_server():
    client = botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=os.environ["PYNAMODB_STASH_DDB_URL"], region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
    )
    try:
        return set(client.list_tables()["TableNames"]) & set(TABLES)
    finally:
        client.close()


def test_1_nothing_changes_before_a_fixture_is_used():
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAREALLOOKINGKEY"
    assert os.environ["AWS_SESSION_TOKEN"] == "real-looking-token"
    assert Own.Meta.host is None


def test_2_fixtures_set_up(stash_tables, stash_keyring, stash_dynamodb, assert_never_stored):
    assert stash_dynamodb == os.environ["PYNAMODB_STASH_DDB_URL"]
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert "AWS_SESSION_TOKEN" not in os.environ
    assert _keyring._configured is stash_keyring
    stash_tables(Own, keyring=stash_keyring)
    stash_tables(Configured)
    assert (Own.Meta.host, Configured.Meta.host) == (stash_dynamodb, stash_dynamodb)
    assert Configured.Meta.region == "eu-west-1"  # kept: -sharedDb ignores regions
    assert Own.Meta.keyring is stash_keyring
    Own(pk="a", text="own-secret-text").save()
    Configured(pk="b", text="configured-secret-text").save()
    assert Configured.get("b").text == "configured-secret-text"
    assert tables_on_the_server() == set(TABLES)
    assert_never_stored(Own, "own-secret-text")
    seen["keyring"] = stash_keyring


def test_3_everything_is_restored_after_the_test():
    assert tables_on_the_server() == set()
    assert Own.Meta.host is None and Own.Meta.keyring is OWN
    assert Configured.Meta.host == "http://127.0.0.1:9"
    assert Own.Meta.aws_access_key_id is None and Own.Meta.aws_secret_access_key is None
    assert Own._connection is None and Configured._connection is None
    assert _keyring._configured is ORIGINAL
    import botocore.endpoint
    assert botocore.endpoint.Endpoint.make_request.__module__ == "botocore.endpoint"  # recording stopped
    # The session keeps dummy credentials until it ends.
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"


def test_4_the_next_test_gets_a_fresh_keyring_and_fresh_tables(stash_tables, stash_keyring):
    assert stash_keyring is not seen["keyring"]
    stash_tables(Own, Configured)
    assert Configured.count() == 0
'''


def test_fixtures_restore_everything_after_each_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ddb_url: str
) -> None:
    source = SESSION.replace("TABLE_PREFIX", f"plugin-session-{uuid.uuid4().hex[:10]}")
    result = run_user_suite(pytester, monkeypatch, ddb_url, source)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=4)


LEAK = '''
from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model


class Notes(Model):
    class Meta:
        table_name = "TABLE_NAME"

    pk = UnicodeAttribute(hash_key=True)
    note = UnicodeAttribute()


def test_a_leak_fails_the_users_test(stash_tables, assert_never_stored):
    stash_tables(Notes)
    Notes(pk="n1", note="patient 078-05-1120 called").save()
    assert_never_stored(Notes, "078-05-1120")
'''


def test_a_leak_fails_the_users_test_and_says_where(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ddb_url: str
) -> None:
    source = LEAK.replace("TABLE_NAME", f"plugin-leak-{uuid.uuid4().hex[:10]}")
    result = run_user_suite(pytester, monkeypatch, ddb_url, source)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: plaintext reached DynamoDB (table 'plugin-leak-*'):",
            "*'078-05-1120' stored in item {pk='n1'}, at note (S)",
            "*'078-05-1120' sent in a PutItem request, at Item.note.S",
        ]
    )
