"""Bulk raw-item encryption against the model's single-item path and plain PynamoDB, in one run.

    python bench/bench_bulk.py [--items 10000] [--rounds 5]

On the reference items (see bench_item.py), as DynamoDB JSON (what boto3 code holds), per item:

- encrypt: ``bulk_encrypt_items`` against the model's ``serialize()`` (and plain PynamoDB's);
- decrypt: ``bulk_decrypt_items`` of the stored items against the model's ``from_raw_data()`` (and plain
  PynamoDB's);
- both, as a round trip.

Each figure is the best of ``--rounds`` rounds of process CPU time, the measurements interleaved round by
round so that a busy neighbour slows them all alike. Target: bulk no slower per item than the model's
single-item path, in each direction.
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any, Callable, Dict, List

from bench_item import models, reference_item

from pynamodb_stash import bulk_decrypt_items, bulk_encrypt_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
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
    plain_stored = [instance.serialize() for instance in plain_items]
    stash_stored = [instance.serialize() for instance in stash_items]
    bulk_stored = [result.unwrap() for result in bulk_encrypt_items(stash, documents)]  # also warms the caches
    assert all(result.ok for result in bulk_decrypt_items(stash, bulk_stored))

    runs: Dict[str, Callable[[], object]] = {
        "plain serialize": lambda: [instance.serialize() for instance in plain_items],
        "plain from_raw_data": lambda: [plain.from_raw_data(raw) for raw in plain_stored],
        "model serialize": lambda: [instance.serialize() for instance in stash_items],
        "model from_raw_data": lambda: [stash.from_raw_data(raw) for raw in stash_stored],
        "bulk_encrypt_items": lambda: bulk_encrypt_items(stash, documents),
        "bulk_decrypt_items": lambda: bulk_decrypt_items(stash, bulk_stored),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.rounds):
        for name, run in runs.items():
            gc.collect()
            start = time.process_time()
            run()
            best[name] = min(best[name], (time.process_time() - start) / args.items)

    def row(label: str, seconds: float, *against: str) -> None:
        ratios = "   ".join(f"{seconds / best[other]:.2f}x {other}" for other in against)
        print(f"  {label:<44} {seconds * 1e6:7.1f} us   {ratios}")

    print(f"{args.items} reference items, DynamoDB JSON, best of {args.rounds} interleaved rounds, CPU per item")
    for name in ("plain serialize", "plain from_raw_data"):
        row(name, best[name])
    row("model serialize", best["model serialize"], "plain serialize")
    row("model from_raw_data", best["model from_raw_data"], "plain from_raw_data")
    row("bulk_encrypt_items", best["bulk_encrypt_items"], "model serialize", "plain serialize")
    row("bulk_decrypt_items", best["bulk_decrypt_items"], "model from_raw_data", "plain from_raw_data")
    plain_trip = best["plain serialize"] + best["plain from_raw_data"]
    model_trip = best["model serialize"] + best["model from_raw_data"]
    bulk_trip = best["bulk_encrypt_items"] + best["bulk_decrypt_items"]
    print(f"  round trip: plain {plain_trip * 1e6:.1f} us, model {model_trip * 1e6:.1f} us "
          f"({model_trip / plain_trip:.2f}x), bulk {bulk_trip * 1e6:.1f} us ({bulk_trip / plain_trip:.2f}x plain, "
          f"{bulk_trip / model_trip:.2f}x model)")


if __name__ == "__main__":
    main()
