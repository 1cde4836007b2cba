"""The reference item through pynamodb-stash and its Python peers, in one process: ``python bench/bench_peers.py``.

    pip install 'pynamodb-stash[bench]'      # the peers; each one missing is skipped with a line saying so
    python bench/bench_peers.py [--items 1000] [--slow-items 40] [--rounds 7]

The reference item of bench_item.py (10 attributes; email, ssn, name, address and bio encrypted, email and
ssn with equality in pynamodb-stash) makes a round trip through each candidate: what a save() spends
before the request and a get() after the response, without the network.

- plain PynamoDB: ``serialize()`` + ``from_raw_data()`` (the baseline, 1.00x);
- pynamodb-stash, local keyring: the same calls on its ``EncryptedModel``;
- AWS ``dynamodb-encryption-sdk`` (the legacy DynamoDB Encryption Client), static materials (a static
  AES-256 key and an HMAC-SHA256 signing key): plain ``serialize()``, ``encrypt_dynamodb_item`` (the five
  attributes ENCRYPT_AND_SIGN, the rest SIGN_ONLY), ``decrypt_dynamodb_item``, ``from_raw_data()``;
- AWS Lambda Powertools data masking: its only shipped provider, ``AWSEncryptionSDKProvider``, needs AWS
  KMS, so it runs against moto's KMS, mocked in-process (``mock_aws``: no server, no network, but
  botocore builds and moto answers each KMS request in this process, and that CPU counts). Two ways to
  use it: each sensitive value encrypted on its own into its attribute ("per field"), or the five as one
  JSON blob in one attribute ("one blob"); then plain ``serialize()`` + ``from_raw_data()`` and decrypt.
  Encrypting reuses cached data keys; Powertools' decrypt does not cache, so each decrypt is a KMS call.

Rounds are interleaved (candidate by candidate within each round) so drift on a shared machine hits all
alike; each figure is the best round's process CPU per item. The slow peers run ``--slow-items`` items a
round, the others ``--items``: per-item figures compare. Stored size is DynamoDB's count (names + values).
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from importlib import metadata
from typing import Any, Callable, Dict, List, Optional, Tuple

from bench_item import models, reference_item
from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from pynamodb_stash._wire import item_size  # the size the library's 400 KB check counts

SENSITIVE = ("email", "ssn", "name", "address", "bio")
INSTALL = "pip install 'pynamodb-stash[bench]'"

RoundTrip = Callable[[], None]


class Candidate:
    def __init__(self, label: str, run: RoundTrip, count: int, size: int, close: Optional[Callable[[], None]] = None):
        self.label = label
        self.run = run
        self.count = count
        self.size = size
        self.close = close
        self.best = float("inf")


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


def missing(error: ImportError) -> str:
    return (error.name or str(error)).split(".")[0]


def plain_and_stash(items: List[Dict[str, Any]]) -> Tuple[type, List[Candidate]]:
    plain, stash = models(None, "peers")
    found = []
    for label, model in ((f"plain PynamoDB {version('pynamodb')}", plain),
                         (f"pynamodb-stash {version('pynamodb-stash')}, local keyring", stash)):
        instances = [model(**item) for item in items]

        def run(model: Any = model, instances: List[Any] = instances) -> None:
            for instance in instances:
                model.from_raw_data(instance.serialize())

        found.append(Candidate(label, run, len(instances), item_size(instances[0].serialize())))
    return plain, found


def legacy_client(plain: Any, items: List[Dict[str, Any]]) -> Candidate:
    from dynamodb_encryption_sdk.delegated_keys.jce import JceNameLocalDelegatedKey
    from dynamodb_encryption_sdk.encrypted import CryptoConfig
    from dynamodb_encryption_sdk.encrypted.item import decrypt_dynamodb_item, encrypt_dynamodb_item
    from dynamodb_encryption_sdk.identifiers import CryptoAction
    from dynamodb_encryption_sdk.material_providers.static import StaticCryptographicMaterialsProvider
    from dynamodb_encryption_sdk.materials.raw import RawDecryptionMaterials, RawEncryptionMaterials
    from dynamodb_encryption_sdk.structures import AttributeActions, EncryptionContext

    encryption_key = JceNameLocalDelegatedKey.generate("AES", 256)
    signing_key = JceNameLocalDelegatedKey.generate("HmacSHA256", 256)
    materials = StaticCryptographicMaterialsProvider(
        encryption_materials=RawEncryptionMaterials(signing_key=signing_key, encryption_key=encryption_key),
        decryption_materials=RawDecryptionMaterials(verification_key=signing_key, decryption_key=encryption_key),
    )
    actions = AttributeActions(
        default_action=CryptoAction.SIGN_ONLY,
        attribute_actions={name: CryptoAction.ENCRYPT_AND_SIGN for name in SENSITIVE},
    )
    config = CryptoConfig(
        materials_provider=materials,
        encryption_context=EncryptionContext(table_name=plain.Meta.table_name, partition_key_name="pk"),
        attribute_actions=actions,
    )
    instances = [plain(**item) for item in items]
    stored = encrypt_dynamodb_item(instances[0].serialize(), config)
    size = item_size(stored)
    assert plain.from_raw_data(decrypt_dynamodb_item(stored, config)).email == items[0]["email"]

    def run() -> None:
        for instance in instances:
            # decrypt_dynamodb_item consumes its input's signature attributes: each item is decrypted once.
            plain.from_raw_data(decrypt_dynamodb_item(encrypt_dynamodb_item(instance.serialize(), config), config))

    return Candidate(f"dynamodb-encryption-sdk {version('dynamodb-encryption-sdk')}, static materials", run,
                     len(instances), size)


def powertools(plain: Any, items: List[Dict[str, Any]]) -> List[Candidate]:
    from aws_lambda_powertools.utilities.data_masking import DataMasking
    from aws_lambda_powertools.utilities.data_masking.provider.kms.aws_encryption_sdk import (
        AWSEncryptionSDKProvider,
    )
    from moto import mock_aws

    for variable, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench"),
                            ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(variable, value)
    mock = mock_aws()
    mock.start()
    try:
        return _powertools(plain, items, DataMasking, AWSEncryptionSDKProvider, mock.stop)
    except BaseException:
        mock.stop()
        raise


def _powertools(plain: Any, items: List[Dict[str, Any]], DataMasking: Any, AWSEncryptionSDKProvider: Any,
                stop: Callable[[], None]) -> List[Candidate]:
    import boto3

    arn = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    masking = DataMasking(provider=AWSEncryptionSDKProvider(keys=[arn]))

    class BlobUser(Model):
        class Meta:
            table_name = "bench-powertools-blob"
            region = "us-east-1"

        pk = UnicodeAttribute(hash_key=True)
        secret = UnicodeAttribute()  # the five sensitive values, as one Powertools ciphertext
        role = UnicodeAttribute()
        status = UnicodeAttribute()
        balance = NumberAttribute()
        created_at = UTCDateTimeAttribute()

    per_field = [(plain(**item), item) for item in items]
    public = {name: value for name, value in items[0].items() if name not in SENSITIVE}
    blobs = [(BlobUser(**{name: value for name, value in item.items() if name not in SENSITIVE}, secret=""), item)
             for item in items]

    def run_per_field() -> None:
        for instance, item in per_field:
            for name in SENSITIVE:
                setattr(instance, name, masking.encrypt(item[name]))
            back = plain.from_raw_data(instance.serialize())
            for name in SENSITIVE:
                setattr(back, name, masking.decrypt(getattr(back, name)))

    def run_blob() -> None:
        for instance, item in blobs:
            instance.secret = masking.encrypt({name: item[name] for name in SENSITIVE})
            back = BlobUser.from_raw_data(instance.serialize())
            opened = masking.decrypt(back.secret)
            assert opened["email"] == item["email"]

    run_per_field()
    run_blob()
    assert per_field[0][0].email != items[0]["email"]  # holds a ciphertext after a round
    label = f"Powertools {version('aws-lambda-powertools')} data masking (moto KMS in-process)"
    blob_size = item_size(BlobUser(**public, secret=blobs[0][0].secret).serialize())
    return [
        Candidate(f"{label}, per field", run_per_field, len(per_field), item_size(per_field[0][0].serialize())),
        Candidate(f"{label}, one blob", run_blob, len(blobs), blob_size, close=stop),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000, help="items a round, plain/stash/legacy client")
    parser.add_argument("--slow-items", type=int, default=40, help="items a round, Powertools (KMS per value)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    items = [reference_item(i) for i in range(args.items)]
    slow = items[: args.slow_items]

    plain, candidates = plain_and_stash(items)
    skipped: List[str] = []
    try:
        candidates.append(legacy_client(plain, items))
    except ImportError as exc:
        skipped.append(f"AWS dynamodb-encryption-sdk: {missing(exc)} is not installed; {INSTALL}")
    try:
        candidates += powertools(plain, slow)
    except ImportError as exc:
        skipped.append(f"Powertools data masking: {missing(exc)} is not installed (it needs "
                       f"aws-lambda-powertools[datamasking], and moto for its KMS); {INSTALL}")

    try:
        for candidate in candidates:  # warm-up: caches, imports, data keys
            candidate.run()
        for _ in range(args.rounds):
            for candidate in candidates:
                gc.collect()
                start = time.process_time()
                candidate.run()
                candidate.best = min(candidate.best, (time.process_time() - start) / candidate.count)
    finally:
        for candidate in candidates:
            if candidate.close is not None:
                candidate.close()

    baseline = candidates[0]
    print(f"reference item (bench_item.py): 10 attributes, 5 encrypted; serialize/encrypt + decrypt/deserialize, "
          f"process CPU per item, best of {args.rounds} interleaved rounds")
    width = max(len(c.label) for c in candidates)
    print(f"  {'candidate':{width}}  {'us/item':>9}  {'x plain':>8}  {'stored':>7}  items/round")
    for candidate in candidates:
        print(f"  {candidate.label:{width}}  {candidate.best * 1e6:9.1f}  {candidate.best / baseline.best:7.2f}x  "
              f"{candidate.size:5d} B  {candidate.count}")
    for line in skipped:
        print(f"  skipped: {line}")


if __name__ == "__main__":
    main()
