"""Bulk raw-item encryption against plain PynamoDB serialization, in one run.

    python bench/bench_bulk.py [--items 10000]

Encrypts the reference items (see bench_item.py) with ``bulk_encrypt_items`` and decrypts them with
``bulk_decrypt_items``, both on DynamoDB JSON, and compares the CPU per item with plain PynamoDB's
``serialize()`` + ``from_raw_data()`` of the same items. Target: no worse per item than the single-item
ratio that bench_item.py prints.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, Dict, List

from bench_item import best_cpu, models, reference_item

from pynamodb_stash import bulk_decrypt_items, bulk_encrypt_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    plain, stash = models(None, "bulk")
    values = [reference_item(i) for i in range(args.items)]
    plain_items = [plain(**value) for value in values]
    stash_items = [stash(**value) for value in values]
    documents: List[Dict[str, Any]] = []
    for instance in plain_items:  # the plaintext items, as DynamoDB JSON (what boto3 code holds)
        raw = instance.serialize()
        raw["balance"] = {"N": raw["balance"]["N"]}
        documents.append(raw)

    def best(run: Callable[[], object]) -> float:
        return best_cpu(run, args.items, args.rounds)

    def plain_round_trip() -> None:
        for instance in plain_items:
            plain.from_raw_data(instance.serialize())

    def model_round_trip() -> None:
        for instance in stash_items:
            stash.from_raw_data(instance.serialize())

    def bulk_round_trip() -> None:
        encrypted = [result.unwrap() for result in bulk_encrypt_items(stash, documents)]
        decrypted = bulk_decrypt_items(stash, encrypted)
        assert all(result.ok for result in decrypted)

    bulk_round_trip()  # warm up derived keys
    p, m, b = best(plain_round_trip), best(model_round_trip), best(bulk_round_trip)
    print(f"{args.items} reference items, best of {args.rounds} rounds, CPU per item")
    print(f"  plain PynamoDB serialize + from_raw_data   {p * 1e6:7.1f} us")
    print(f"  EncryptedModel serialize + from_raw_data   {m * 1e6:7.1f} us   {m / p:.2f}x plain")
    print(f"  bulk_encrypt_items + bulk_decrypt_items    {b * 1e6:7.1f} us   {b / p:.2f}x plain")


if __name__ == "__main__":
    main()
