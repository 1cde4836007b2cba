"""KMS calls for 10,000 item writes through a KMS key store: ``python bench/bench_kms.py``.

Runs moto's KMS and DynamoDB in-process (the `[local]` and `[kms]` extras), creates a keyset and
encrypts the reference items (bench_item.py) through ``KeyStore.keyring``, counting the KMS calls that
boto3 makes. Target: at most 2, where per-item designs make one per item. Then it rotates the keyset
twice and counts the calls of the first use after a refresh: one, whatever the number of keys (the
keyset is authenticated and unsealed as one record).
"""

from __future__ import annotations

import argparse
import os
from typing import Any, List

import boto3
from bench_item import models, reference_item

from pynamodb_stash._demo import embedded_dynamodb
from pynamodb_stash.kms import KeyStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(variable, "bench")

    with embedded_dynamodb() as endpoint:
        kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        kms_key = kms.create_key()["KeyMetadata"]["KeyId"]
        store = KeyStore("bench-keys", kms_key_ids=[kms_key], kms_client=kms, dynamodb_client=dynamodb)
        store.create_table()
        store.create_keyset("bench", kms_key)

        calls: List[str] = []

        def count(model: Any, **kwargs: Any) -> None:
            calls.append(model.name)

        kms.meta.events.register("before-call.kms.*", count)
        _, stash = models(None, "kms")
        stash.Meta.keyring = store.keyring("bench")  # type: ignore[attr-defined]
        for i in range(args.items):
            stash(**reference_item(i)).serialize()
        print(f"{args.items} items encrypted through a KMS keyset: {len(calls)} KMS calls ({', '.join(calls)})")

        store.rotate("bench")
        store.rotate("bench")
        source = store.keyring("bench", ttl_seconds=1e-9)  # every use is past the TTL: a refresh
        source.current()
        calls.clear()
        keys = len(source.current().key_ids) + 1
        print(f"first use after a refresh, keyset of {keys} keys: {len(calls)} KMS calls ({', '.join(calls)})")


if __name__ == "__main__":
    main()
