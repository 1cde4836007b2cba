"""tests/test_patients.py in your project: pynamodb-stash's fixtures need no conftest.py and no import."""

import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from pynamodb_stash import EncryptedAttribute, EncryptedModel, HmacAttribute, Keyring


# In your project these come from your application: `from myapp.models import Patient`.
class EmailIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "EmailIndex"
        projection = AllProjection()

    email = HmacAttribute(hash_key=True)


class Patient(EncryptedModel):
    class Meta:
        table_name = "Patients"
        keyring = Keyring.from_env()  # in production; the tests below swap in stash_keyring

    patient_id = UnicodeAttribute(hash_key=True)
    email = EncryptedAttribute(str, equality=True)
    ssn = EncryptedAttribute(str)
    ward = UnicodeAttribute()
    email_index = EmailIndex()


SSN = "078-05-1120"
EMAIL = "ada@example.com"


@pytest.fixture
def patients(stash_tables, stash_keyring):
    """A fresh Patients table on DynamoDB Local, and a fresh keyring, for one test."""
    stash_tables(Patient, keyring=stash_keyring)


def test_a_patient_round_trips(patients):
    Patient(patient_id="p1", email=EMAIL, ssn=SSN, ward="cardiology").save()

    assert Patient.get("p1").ssn == SSN
    assert [p.patient_id for p in Patient.email_index.query(EMAIL)] == ["p1"]


def test_no_plaintext_reaches_dynamodb(assert_never_stored, patients):
    patient = Patient(patient_id="p1", email=EMAIL, ssn=SSN, ward="cardiology")
    patient.save()
    patient.update(actions=[Patient.ssn.set("219-09-9999")])
    assert [p.patient_id for p in Patient.email_index.query(EMAIL)] == ["p1"]
    assert [p.patient_id for p in Patient.scan(Patient.email == EMAIL)] == ["p1"]

    # Not in the table, and not in any request sent about it: items, keys, queries, filters.
    assert_never_stored(Patient, SSN, "219-09-9999", EMAIL)


def test_the_check_sees_plain_attributes(assert_never_stored, patients):
    Patient(patient_id="p1", email=EMAIL, ssn=SSN, ward="cardiology").save()

    with pytest.raises(AssertionError, match="cardiology"):
        assert_never_stored(Patient, "cardiology")  # ward is not encrypted


def test_each_test_gets_its_own_table_and_keyring(patients, stash_keyring):
    assert Patient.Meta.keyring is stash_keyring
    assert Patient.count() == 0  # nothing left over from the tests above
