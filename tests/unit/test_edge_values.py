"""Values at the edges of their types, serialized through a model: text that cannot be encoded is refused
without being quoted, and extreme datetimes and Decimals hash and round-trip while NaN and infinities
(equal to nothing) are refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pynamodb.attributes import UnicodeAttribute

from pynamodb_stash import EncryptedAttribute, EncryptedModel, EncryptionError, Keyring


def test_an_unencodable_value_is_refused_without_quoting_it() -> None:
    class Note(EncryptedModel):
        class Meta:
            table_name = "notes"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        body = EncryptedAttribute(str, equality=True)

    with pytest.raises(EncryptionError) as raised:
        Note(pk="1", body="topsecret\udc80tail").serialize()
    assert "topsecret" not in str(raised.value) and "tail" not in str(raised.value)


def test_odd_values_hash_without_escaping_errors() -> None:
    class Odd(EncryptedModel):
        class Meta:
            table_name = "odd"
            keyring = Keyring.generate()

        pk = UnicodeAttribute(hash_key=True)
        amount = EncryptedAttribute(Decimal, equality=True, null=True)
        when = EncryptedAttribute(datetime, equality=True, null=True)

    late = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    stored = Odd(pk="1", amount=Decimal("1.5"), when=late).serialize()
    back = Odd.from_raw_data(stored)
    assert back.amount == Decimal("1.5") and back.when == late
    assert Odd.when.hmac(late) == stored["when__hmac"]["S"]
    for nan in (Decimal("sNaN"), Decimal("NaN"), Decimal("Infinity")):  # equal to nothing: no HMAC
        with pytest.raises(EncryptionError) as raised:
            Odd(pk="1", amount=nan, when=late).serialize()
        assert "DynamoDB numbers" in str(raised.value)
