"""Backfill throughput against a plain scan-and-rewrite of the same table, in one run.

    python bench/bench_backfill.py --endpoint http://127.0.0.1:8000 [--items 2000]

Writes the reference items (bench_item.py) in plaintext, then times ``encrypt_existing`` on them, and
separately times a plain scan that rewrites every item with one ``UpdateItem`` (what a migration
without encryption costs). Prints items per second for both and the ratio. Target: >= 0.8x.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

from bench_item import models, reference_item
from pynamodb.expressions.operand import Path

from pynamodb_stash.operations import encrypt_existing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="DynamoDB endpoint (DynamoDB Local)")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=4)
    args = parser.parse_args()
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(variable, "bench")

    plain, stash = models(args.endpoint, uuid.uuid4().hex[:8])
    stash.Meta.table_name = plain.Meta.table_name  # the same table, read as encrypted
    stash.Meta.plaintext_policy = "read_plaintext"  # type: ignore[attr-defined]
    plain.create_table(wait=True)
    try:
        def load() -> None:
            with plain.batch_write() as batch:
                for i in range(args.items):
                    batch.save(plain(**reference_item(i)))

        load()
        start = time.perf_counter()
        report = encrypt_existing(stash, segments=args.segments)
        encrypted = time.perf_counter() - start
        assert report.rewritten == args.items and report.ok

        load()  # plaintext again, for the plain rewrite
        start = time.perf_counter()
        connection = plain._get_connection()
        rewritten = 0
        for item in plain.scan():
            connection.update_item(item.pk, actions=[Path(["status"]).set("active")])
            rewritten += 1
        baseline = time.perf_counter() - start
        assert rewritten == args.items
    finally:
        plain.delete_table()

    print(f"{args.items} reference items on {args.endpoint}")
    print(f"  plain scan + UpdateItem rewrite       {args.items / baseline:8.0f} items/s")
    print(f"  encrypt_existing ({args.segments} segments)        {args.items / encrypted:8.0f} items/s"
          f"   {baseline / encrypted:.2f}x plain")


if __name__ == "__main__":
    main()
