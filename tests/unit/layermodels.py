"""Offline models shared by the unit tests of the model's layers (``test_layout.py``, ``test_reads.py``,
``test_updates.py`` next to it): ``from layermodels import ...``, as ``rawitemtest`` is imported. Each
test module declares the model it is about beside these; nothing here reaches a server.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from stashtest import offline_meta

from pynamodb_stash import EncryptedAttribute, EncryptedMapAttribute, EncryptedModel, Equality, Keyring

KEYRING = Keyring.generate()


class Address(EncryptedMapAttribute):
    street = EncryptedAttribute(str, equality=True)
    city = UnicodeAttribute(null=True)


class Event(EncryptedModel):
    """A hash and a numeric range key."""

    Meta = offline_meta("Events", keyring=KEYRING)

    group = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    payload = EncryptedAttribute(str, null=True)


class Account(EncryptedModel):
    """Keyed on the HMAC of a normalized value: ``email__hmac`` is the table's hash key."""

    Meta = offline_meta("Accounts", keyring=KEYRING)

    email = EncryptedAttribute(str, equality=Equality(normalize=("trim", "lower")), hash_key=True)
    name = EncryptedAttribute(str, null=True)
