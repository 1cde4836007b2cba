"""The long fuzz run: ``python tests/fuzz/run_fuzz.py --inputs 150000 [--seed 1]`` (7 targets, 1.05M inputs).

Feeds each target of fuzz_targets.py random inputs (bytes, text, nested DynamoDB-JSON-like values) from a
seeded generator and counts the outcomes. Exits 1 if any input raised something other than a StashError
or took longer than a second (a hang).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import fuzz_targets  # noqa: E402

from pynamodb_stash import StashError  # noqa: E402

TYPES = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "Z"]
NAMES = ["pk", "email__source", "email__hmac", "count__source", "address", "street__source", "street__hmac"]


def value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.35:
        return rng.choice([rng.randbytes(rng.randrange(40)), "".join(rng.choice("ab1-é\\x00") for _ in range(8)),
                           rng.randrange(-10**6, 10**6), True, None, str(rng.random())])
    if roll < 0.6:
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(TYPES + NAMES): value(rng, depth + 1) for _ in range(rng.randrange(3))}


def item(rng: random.Random) -> Any:
    return {rng.choice(NAMES): {rng.choice(TYPES): value(rng)} for _ in range(rng.randrange(5))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=250_000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    inputs = {
        "ciphertext": lambda: rng.randbytes(rng.randrange(120)),
        "mutated_ciphertext": lambda: rng.randbytes(rng.randrange(1, 6)),
        "keyring_string": lambda: rng.randbytes(rng.randrange(200)),
        "keyring_payload": lambda: value(rng) if rng.random() < 0.5 else {
            "primary": "k1", "keys": value(rng), "index": value(rng)},
        "dynamodb_json": lambda: item(rng),
        "mixed_item": lambda: item(rng),
        "stream_image": lambda: item(rng) if rng.random() < 0.8 else value(rng),
    }
    failed = False
    for name, target in fuzz_targets.TARGETS.items():
        outcomes: Counter[str] = Counter()
        slowest = 0.0
        started = time.perf_counter()
        for _ in range(args.inputs):
            data = inputs[name]()
            began = time.perf_counter()
            try:
                target(data)
                outcomes["accepted"] += 1
            except StashError as error:
                outcomes[error.code] += 1
            except Exception as error:  # a finding
                outcomes[f"UNEXPECTED {type(error).__name__}"] += 1
                failed = True
            slowest = max(slowest, time.perf_counter() - began)
        failed |= slowest > 1.0
        summary = ", ".join(f"{code} {count}" for code, count in outcomes.most_common())
        elapsed = time.perf_counter() - started
        print(f"{name}: {args.inputs} inputs in {elapsed:.0f} s, slowest {slowest * 1e3:.1f} ms: {summary}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
