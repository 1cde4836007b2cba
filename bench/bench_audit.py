"""Audit overhead: ``python bench/bench_audit.py``.

The reference items (bench_item.py) through ``serialize()`` + ``from_raw_data()`` with audit events off,
and on with the default sink writing to a logger that has a NullHandler at INFO (so every event is
built and handed to logging). Each call is its own operation here: two events per round trip, the most
events per item any workload produces. Target: <= 1.1x.
"""

from __future__ import annotations

import argparse
import logging

from bench_item import cpu_per_item, models, reference_item

from pynamodb_stash import configure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    _, stash = models(None, "audit")
    items = [reference_item(i) for i in range(args.items)]
    cpu_per_item(stash, items[:200], 1)

    configure(audit_enabled=False)
    off = cpu_per_item(stash, items, args.rounds)
    configure(audit_enabled=True)
    logger = logging.getLogger("pynamodb_stash.audit")
    logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False
    on = cpu_per_item(stash, items, args.rounds)
    logger.setLevel(logging.WARNING)
    quiet = cpu_per_item(stash, items, args.rounds)

    print(f"{args.items} reference items, serialize + from_raw_data, CPU per item, best of {args.rounds}")
    print(f"  audit off                                   {off * 1e6:6.1f} us")
    print(f"  audit on, default sink, logging not enabled {quiet * 1e6:6.1f} us   {quiet / off:.2f}x")
    print(f"  audit on, default sink, NullHandler at INFO {on * 1e6:6.1f} us   {on / off:.2f}x")


if __name__ == "__main__":
    main()
