"""Backfill and rotation throughput against a plain scan-and-rewrite of the same table, in one run.

    python bench/bench_backfill.py --endpoint http://127.0.0.1:8000 [--items 2000] [--segments 4] [--rounds 3]

Writes the reference items (bench_item.py) in plaintext, then, round by round:

- a plain rewrite: a scan that rewrites every item with one ``UpdateItem`` setting one attribute (what a
  migration without encryption costs), in ``--segments`` threads and, as before, in one;
- ``encrypt_existing`` of the same plaintext items, in ``--segments`` segments;
- ``rotate`` of the encrypted items to a new primary key, in ``--segments`` segments.

The measurements are interleaved round by round (the table is written in plaintext again before each one
but rotate), and each figure is the best of ``--rounds``. Prints items per second and the ratios to the
plain rewrite with the same number of segments (like for like) and to the one-thread rewrite.
Target: >= 0.8x.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict

from bench_item import KEYRING, models, reference_item
from pynamodb.expressions.operand import Path

from pynamodb_stash.operations import encrypt_existing, rotate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="DynamoDB endpoint (DynamoDB Local)")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(variable, "bench")

    plain, stash = models(args.endpoint, uuid.uuid4().hex[:8])
    stash.Meta.table_name = plain.Meta.table_name  # the same table, read as encrypted
    stash.Meta.plaintext_policy = "read_plaintext"  # type: ignore[attr-defined]
    plain.create_table(wait=True)

    def load() -> None:
        with plain.batch_write() as batch:
            for i in range(args.items):
                batch.save(plain(**reference_item(i)))

    def plain_rewrite(segments: int) -> Callable[[], None]:
        def scan_segment(number: int) -> int:
            connection = plain._get_connection()
            rewritten = 0
            scan = plain.scan(segment=number, total_segments=segments) if segments > 1 else plain.scan()
            for item in scan:
                connection.update_item(item.pk, actions=[Path(["status"]).set("active")])
                rewritten += 1
            return rewritten

        def run() -> None:
            with ThreadPoolExecutor(max_workers=segments) as pool:
                assert sum(pool.map(scan_segment, range(segments))) == args.items

        return run

    def backfill() -> None:
        report = encrypt_existing(stash, segments=args.segments)
        assert report.rewritten == args.items and report.ok, report

    def rotation() -> None:
        stash.Meta.keyring = stash.Meta.keyring.with_new_primary(  # type: ignore[attr-defined]
            secrets.token_bytes(32), key_id=f"k-{uuid.uuid4().hex[:8]}"
        )
        report = rotate(stash, segments=args.segments)
        assert report.rewritten == args.items and report.ok, report

    runs: Dict[str, Callable[[], None]] = {
        "plain rewrite, 1 thread": plain_rewrite(1),
        f"plain rewrite, {args.segments} segments": plain_rewrite(args.segments),
        f"encrypt_existing, {args.segments} segments": backfill,
        f"rotate, {args.segments} segments": rotation,
    }
    best: Dict[str, float] = dict.fromkeys(runs, 0.0)
    try:
        for _ in range(args.rounds):
            stash.Meta.keyring = KEYRING  # type: ignore[attr-defined]
            for name, run in runs.items():
                if not name.startswith("rotate"):  # rotate rewrites what encrypt_existing just wrote
                    load()
                start = time.perf_counter()
                run()
                best[name] = max(best[name], args.items / (time.perf_counter() - start))
    finally:
        plain.delete_table()

    same = best[f"plain rewrite, {args.segments} segments"]
    one = best["plain rewrite, 1 thread"]
    print(f"{args.items} reference items on {args.endpoint}, best of {args.rounds} interleaved rounds")
    for name, rate in best.items():
        ratios = "" if name.startswith("plain") else (
            f"   {rate / same:.2f}x plain ({args.segments} segments)   {rate / one:.2f}x plain (1 thread)"
        )
        print(f"  {name:<34} {rate:8.0f} items/s{ratios}")


if __name__ == "__main__":
    main()
