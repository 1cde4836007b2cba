"""Drop-in behaviour that needs no server: what PynamoDB's own test suite does with models it never saves."""

from __future__ import annotations

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute

from pynamodb_stash import EncryptedModel


class NoMeta(EncryptedModel):  # no Meta at all: PynamoDB serializes such a model
    num = NumberAttribute()
    name = UnicodeAttribute(null=True)
    extra = MapAttribute(null=True)  # type: ignore[var-annotated]


def test_a_model_without_meta_serializes_as_pynamodb_does() -> None:
    item = NoMeta(num=1, name="a", extra={"k": "v"})
    assert item.to_simple_dict() == {"num": 1, "name": "a", "extra": {"k": "v"}}
    assert item.to_dynamodb_dict() == {"num": {"N": "1"}, "name": {"S": "a"}, "extra": {"M": {"k": {"S": "v"}}}}
    back = NoMeta()
    back.from_simple_dict({"num": 2, "name": "b"})
    assert (back.num, back.name) == (2, "b")
    again = NoMeta()
    again.from_dynamodb_dict(item.to_dynamodb_dict())
    assert again.extra.as_dict() == {"k": "v"}
