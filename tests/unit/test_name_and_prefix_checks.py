"""Names and prefixes refused at declaration: a stored name that would spell another path (a ``.`` or
``[`` in an encrypted attribute's or map's name), and an ``Equality(prefix=...)`` that is not printable
ASCII."""

from __future__ import annotations

import pytest
from pynamodb.attributes import UnicodeAttribute

from pynamodb_stash import (
    ConfigurationError,
    EncryptedAttribute,
    EncryptedMapAttribute,
    EncryptedModel,
    Equality,
)


def test_names_that_would_spell_another_path_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        class Flat(EncryptedModel):
            class Meta:
                table_name = "flat"

            pk = UnicodeAttribute(hash_key=True)
            street = EncryptedAttribute(str, attr_name="address.street")
    with pytest.raises(ConfigurationError):
        class Bracket(EncryptedMapAttribute):
            street = EncryptedAttribute(str, attr_name="street[0]")


def test_a_prefix_is_printable_ascii() -> None:
    with pytest.raises(ConfigurationError):
        Equality(prefix="É#")
    with pytest.raises(ConfigurationError):
        Equality(prefix="A\n")
    assert Equality(prefix="EMAIL#").prefix == "EMAIL#"
