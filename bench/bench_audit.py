"""Audit overhead: ``python bench/bench_audit.py [--endpoint http://127.0.0.1:8000]``.

The reference items (bench_item.py), audit events off and on with each kind of sink, in one run; every
figure is the best of ``--rounds`` rounds, the sinks interleaved round by round (a shared machine drifts).

1. Round trips, ``serialize()`` + ``from_raw_data()``, each call its own operation: two events per round
   trip, the most events per item any workload makes, and no network to hide them. Target: <= 1.1x off.
2. Operations over many items: the same round trips counted into one operation of ``--batch`` items (as
   query, scan and batch_get count their reads): one event per kind per operation, so the per-item cost
   should not depend on the sink.
3. With ``--endpoint`` (DynamoDB Local, say): ``save()`` + ``get()``, process CPU and wall time per pair.

The sinks: the default one with the audit logger not enabled (the library's default: silent), or at INFO
with only a ``NullHandler`` (nobody receives the records), or at INFO with a handler that receives every
record without formatting it, or with a ``StreamHandler`` writing each event's JSON line to memory; and a
callable sink (``configure(audit_sink=events.append)``).
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import statistics
import time
import uuid
from typing import Any, Callable, Dict, List

from bench_item import models, reference_item

from pynamodb_stash import _audit, configure

AUDIT_LOGGER = logging.getLogger("pynamodb_stash.audit")


class Receiving(logging.Handler):
    """Receives every record (the cost of a handler that queues or ships records), formats none."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _logging(level: int, handler: logging.Handler | None) -> Callable[[], None]:
    def setup() -> None:
        configure(audit_enabled=True, audit_sink=None)
        AUDIT_LOGGER.handlers[:] = [handler] if handler is not None else []
        AUDIT_LOGGER.propagate = False
        AUDIT_LOGGER.setLevel(level)

    return setup


def sinks() -> Dict[str, Callable[[], None]]:
    """Each sink's label and its setup, "audit off" first (the baseline)."""
    events: List[Any] = []

    def off() -> None:
        configure(audit_enabled=False, audit_sink=None)
        AUDIT_LOGGER.handlers[:] = []
        AUDIT_LOGGER.setLevel(logging.NOTSET)

    def callable_sink() -> None:
        events.clear()
        configure(audit_enabled=True, audit_sink=events.append)

    def json_stream() -> None:
        _logging(logging.INFO, logging.StreamHandler(io.StringIO()))()

    return {
        "audit off": off,
        "default sink, logger not enabled": _logging(logging.WARNING, None),
        "default sink, NullHandler at INFO": _logging(logging.INFO, logging.NullHandler()),
        "default sink, a handler receiving every record": _logging(logging.INFO, Receiving()),
        "default sink, JSON lines to a stream": json_stream,
        "callable sink (list.append)": callable_sink,
    }


def interleaved(runs: Dict[str, Callable[[], float]], setups: Dict[str, Callable[[], None]],
                rounds: int) -> Dict[str, float]:
    """Best-of-``rounds`` of each ``runs[label]()`` (a per-item figure), run under its sink's setup."""
    best = {label: float("inf") for label in runs}
    for _ in range(rounds):
        for label, run in runs.items():
            setups[label]()
            gc.collect()
            best[label] = min(best[label], run())
    setups["audit off"]()
    return best


def cpu_per_item(work: Callable[[], int]) -> Callable[[], float]:
    def run() -> float:
        start = time.process_time()
        count = work()
        return (time.process_time() - start) / count

    return run


def report(title: str, best: Dict[str, float], unit: float = 1e6, suffix: str = "us") -> None:
    print(title)
    off = best["audit off"]
    width = max(len(label) for label in best)
    for label, value in best.items():
        print(f"  {label:{width}}  {value * unit:8.1f} {suffix}  {value / off:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=100, help="items per operation in part 2")
    parser.add_argument("--endpoint", help="DynamoDB endpoint for save() + get() (part 3)")
    parser.add_argument("--pairs", type=int, default=200, help="save() + get() pairs a round in part 3")
    args = parser.parse_args()
    _, stash = models(args.endpoint, f"audit-{uuid.uuid4().hex[:8]}")
    instances = [stash(**reference_item(i)) for i in range(args.items)]
    setups = sinks()

    def each_its_own() -> int:
        for instance in instances:
            stash.from_raw_data(instance.serialize())
        return len(instances)

    def batched() -> int:
        for start in range(0, len(instances), args.batch):
            with _audit.operation(stash.__name__, stash.Meta.table_name):
                for instance in instances[start : start + args.batch]:
                    stash.from_raw_data(instance.serialize())
        return len(instances)

    each_its_own()  # warm caches (derived keys, plans) outside the measurement
    best = interleaved({label: cpu_per_item(each_its_own) for label in setups}, setups, args.rounds)
    report(f"1. {args.items} reference items, serialize() + from_raw_data(), each its own operation (two events "
           f"per round trip); process CPU per item, best of {args.rounds}", best)
    best = interleaved({label: cpu_per_item(batched) for label in setups}, setups, args.rounds)
    report(f"2. the same, {args.batch} items per operation (one event per kind per operation)", best)

    if args.endpoint:
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(variable, "bench")
        stash.create_table(wait=True)
        chosen = {label: setups[label] for label in ("audit off", "default sink, a handler receiving every record",
                                                     "default sink, JSON lines to a stream")}
        walls: Dict[str, List[float]] = {label: [] for label in chosen}
        try:
            pairs = instances[: args.pairs]

            def save_get(label: str) -> Callable[[], float]:
                def run() -> float:
                    start = time.process_time()
                    for instance in pairs:
                        began = time.perf_counter()
                        instance.save()
                        stash.get(instance.pk)
                        walls[label].append(time.perf_counter() - began)
                    return (time.process_time() - start) / len(pairs)

                return run

            save_get("audit off")()  # warm the connection
            walls["audit off"].clear()
            best = interleaved({label: save_get(label) for label in chosen}, chosen, max(3, args.rounds // 2))
            report(f"3. save() + get() on {args.endpoint}, {len(pairs)} pairs a round: client process CPU per pair, "
                   "best round", best, 1e3, "ms")
            print("   wall time per pair, median of all rounds")
            off = statistics.median(walls["audit off"])
            for label, samples in walls.items():
                wall = statistics.median(samples)
                print(f"  {label:46}  {wall * 1e3:8.2f} ms  {wall / off:5.2f}x")
        finally:
            stash.delete_table()


if __name__ == "__main__":
    main()
