"""The migrations' writes on DynamoDB Local: each rewrite is the request PynamoDB would build for the same
actions and condition, and an item changed after it was read is never overwritten with what was read
(the write is refused, the item read again). ``_operations_rewrite`` writes its ``UpdateItem`` requests
itself; these tests hold it to PynamoDB's serialization and to the conditions that prevent lost updates.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Dict, Iterator, List, Tuple

import boto3
import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action, RemoveAction
from pynamodb.models import Model

from pynamodb_stash import EncryptedAttribute, EncryptedModel, Keyring, _pynamodb
from pynamodb_stash import _operations_rewrite as rewrites
from pynamodb_stash._operations_scan import Report


def _models(url: str, table: str) -> Tuple[Any, Any]:
    """The same table (hash and range key) as a legacy plaintext model writes it and as the encrypted model
    reads it during the migration."""
    where = {"table_name": table, "host": url, "region": "us-east-1"}

    class Legacy(Model):
        Meta = type("Meta", (), where)
        pk, sk = UnicodeAttribute(hash_key=True), UnicodeAttribute(range_key=True)
        email, note = UnicodeAttribute(), UnicodeAttribute()

    class Member(EncryptedModel):
        Meta = type("Meta", (), {**where, "plaintext_policy": "read_plaintext",
                                 "keyring": Keyring.generate(key_id="k1")})
        pk, sk = UnicodeAttribute(hash_key=True), UnicodeAttribute(range_key=True)
        email, note = EncryptedAttribute(str, equality=True), EncryptedAttribute(str)

    return Legacy, Member


@pytest.fixture
def tables(ddb_url: str, table_name: str) -> Iterator[Tuple[Any, Any]]:
    Legacy, Member = _models(ddb_url, table_name)
    Legacy.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    for n in range(3):
        Legacy(pk=f"p{n}", sk="s", email=f"person{n}@example.com", note=f"note {n}").save()
    yield Legacy, Member
    Legacy.delete_table()


def _raw(model: Any, pk: str) -> Dict[str, Any]:
    client = boto3.client("dynamodb", endpoint_url=model.Meta.host, region_name="us-east-1")
    item: Dict[str, Any] = client.get_item(
        TableName=model.Meta.table_name, Key={"pk": {"S": pk}, "sk": {"S": "s"}}, ConsistentRead=True
    )["Item"]
    return item


def _rewrite(model: Any, raw: Dict[str, Any], plan: Any) -> Report:
    part = Report("test")
    rewrites.rewrite(model, raw, part, False, rewrites.RateLimiter(None), plan)
    return part


def _encrypt_plan(model: Any, raw: Dict[str, Any], instance: Any) -> rewrites.Rewrite:
    return rewrites.legacy_actions(model, raw, instance)


def _rotate_plan(model: Any, raw: Dict[str, Any], instance: Any) -> rewrites.Rewrite:
    return rewrites.rotation_actions(model, raw, instance)


def test_a_plaintext_changed_after_the_read_is_not_overwritten(tables: Tuple[Any, Any]) -> None:
    Legacy, Member = tables
    stale = _raw(Member, "p0")
    Legacy(pk="p0", sk="s", email="person0@example.com", note="changed by the application").save()
    part = _rewrite(Member, stale, _encrypt_plan)
    assert (part.retried, part.rewritten, dict(part.failures)) == (1, 1, {})
    assert Member.get("p0", "s").note == "changed by the application"
    stored = _raw(Member, "p0")
    assert "note" not in stored and "email" not in stored and "note__source" in stored


def test_an_item_encrypted_after_the_read_is_left_as_the_application_wrote_it(tables: Tuple[Any, Any]) -> None:
    _, Member = tables
    stale = _raw(Member, "p1")
    Member(pk="p1", sk="s", email="new@example.com", note="written encrypted").save()
    written = _raw(Member, "p1")
    part = _rewrite(Member, stale, _encrypt_plan)
    assert (part.retried, part.rewritten, part.unchanged) == (1, 0, 1)
    assert _raw(Member, "p1") == written


def test_a_rotation_read_before_a_write_does_not_undo_it(tables: Tuple[Any, Any]) -> None:
    _, Member = tables
    old = Member.Meta.keyring
    Member(pk="p2", sk="s", email="a@example.com", note="first").save()
    stale = _raw(Member, "p2")
    Member.get("p2", "s").update(actions=[Member.note.set("second")])  # still under the old key
    Member.Meta.keyring = old.with_new_primary(secrets.token_bytes(32), key_id="k2")
    part = _rewrite(Member, stale, _rotate_plan)
    assert (part.retried, part.rewritten, dict(part.failures)) == (1, 1, {})
    item = Member.get("p2", "s")
    assert item.note == "second" and item.email == "a@example.com"
    assert _raw(Member, "p2")["note__source"]["B"][2:4] == b"k2"


@pytest.mark.parametrize("plan", [_encrypt_plan, _rotate_plan], ids=["encrypt-existing", "rotate"])
def test_each_request_is_what_pynamodb_would_send(tables: Tuple[Any, Any], plan: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _, Member = tables
    if plan is _rotate_plan:
        Member(pk="p0", sk="s", email="a@example.com", note="n").save()
        Member.Meta.keyring = Member.Meta.keyring.with_new_primary(secrets.token_bytes(32), key_id="k9")
    raw = _raw(Member, "p0")
    expanded: List[List[Action]] = []
    sent: List[Dict[str, Any]] = []
    real_expand = rewrites.expand
    monkeypatch.setattr(rewrites, "expand", lambda *args: expanded.append(real_expand(*args)) or expanded[-1])
    connection = _pynamodb.base_connection(Member)
    real_dispatch = connection.dispatch
    monkeypatch.setattr(
        connection, "dispatch", lambda name, request: sent.append(request) or real_dispatch(name, request)
    )
    planned: List[rewrites.Rewrite] = []
    assert _rewrite(Member, raw, lambda *args: planned.append(plan(*args)) or planned[-1]).rewritten == 1
    [request], [actions], [rewrite] = sent, expanded, planned

    removes = {tuple(a.values[0].path) for a in actions if isinstance(a, RemoveAction)}
    actions = actions + [RemoveAction(Path([name])) for name in rewrite.removed if (name,) not in removes]
    actions += [Path([name]).set(Value(value)) for name, value in rewrite.sealed.items()]
    condition: Condition = None  # type: ignore[assignment]
    for name, value in rewrite.guards:
        guard = Path([name]).does_not_exist() if value is None else Path([name]) == Value(value)
        condition = guard if condition is None else condition & guard
    expected = connection.get_operation_kwargs(
        Member.Meta.table_name, "p0", range_key="s", actions=actions, condition=condition
    )
    assert request["Key"] == expected["Key"] == {"pk": {"S": "p0"}, "sk": {"S": "s"}}
    assert request["TableName"] == expected["TableName"]
    assert _resolved(request, "UpdateExpression") == _resolved(expected, "UpdateExpression")
    assert _resolved(request, "ConditionExpression") == _resolved(expected, "ConditionExpression")
    assert Member.get("p0", "s").note == ("note 0" if plan is _encrypt_plan else "n")


def _resolved(request: Dict[str, Any], key: str) -> Any:
    """An expression as the set of its clauses (SET and REMOVE ones by section, condition ones ANDed),
    each with its placeholders replaced by the names and values they stand for: placeholder numbering and
    PynamoDB's nesting of ANDs do not count."""
    text = request[key]
    if key == "ConditionExpression":
        clauses = [("AND", re.sub(r"\s+\(", "(", clause.strip("() "))) for clause in text.split(" AND ")]
    else:
        sections = re.split(r"\b(SET|REMOVE)\b", text)
        clauses = [(section, clause.strip()) for section, body in zip(sections[1::2], sections[2::2])
                   for clause in body.split(", ")]
    names = request.get("ExpressionAttributeNames", {})
    values = request.get("ExpressionAttributeValues", {})
    return frozenset(
        (section, re.sub(r":\w+", lambda m: repr(sorted(values[m.group(0)].items())),
                         re.sub(r"#\w+", lambda m: names[m.group(0)], clause)))
        for section, clause in clauses
    )
