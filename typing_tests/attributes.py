"""Checked by mypy in CI (see pyproject.toml): what editors and type checkers see of the public API."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from pynamodb.attributes import UnicodeAttribute
from typing_extensions import assert_type

from pynamodb_stash import EncryptedAttribute, EncryptedModel, HmacAttribute, Keyring


class User(EncryptedModel):
    class Meta:
        table_name = "Users"
        keyring = Keyring.generate()

    pk = UnicodeAttribute(hash_key=True)
    email = EncryptedAttribute(str, equality=True)
    age = EncryptedAttribute(int, null=True)
    seen = EncryptedAttribute(datetime, null=False)
    nickname = EncryptedAttribute(UnicodeAttribute())


assert_type(User.email, EncryptedAttribute[str])
assert_type(User.age, EncryptedAttribute[Optional[int]])
assert_type(User.seen, EncryptedAttribute[datetime])
assert_type(User.nickname, EncryptedAttribute[str])

user = User(pk="u1", email="a@example.com")
assert_type(user.email, str)
assert_type(user.age, Optional[int])
assert_type(user.seen, datetime)
assert_type(User.email.hmac("a@example.com"), str)
assert_type(HmacAttribute(hash_key=True), HmacAttribute)
assert_type(User.get("u1"), User)
