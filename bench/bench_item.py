"""Per-item cost of pynamodb-stash against plain PynamoDB, measured in one run.

    python bench/bench_item.py [--items N] [--endpoint URL]

The reference item (DESIGN.md): 10 attributes, 5 encrypted, 2 of them with equality. Prints:

- CPU per item for ``serialize()`` + ``from_raw_data()`` (what save/get spend outside the network),
  plain and encrypted, and their ratio (target <= 1.5x); then each way alone, with the cryptographic
  floor of the item (the AEAD, HMAC and nonce calls alone, through ``cryptography`` directly, on the
  same sizes) and the glue: stash - plain - floor, as a share of plain (target <= 10% each way);
- the stored item size by DynamoDB's rules (names + values), and the ratio (target <= 1.6x);
- with ``--endpoint`` (DynamoDB Local, say): wall time per ``save()`` + ``get()``, and the ratio
  (target <= 1.05x).

Nothing here is asserted; the figures are printed for the README and the release notes.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Tuple

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from pynamodb_stash import EncryptedAttribute, EncryptedModel, Keyring
from pynamodb_stash._wire import item_size  # the size the library's 400 KB check counts

KEYRING = Keyring.generate()
BIO = (
    "Keen cyclist and amateur astronomer. Works on payments infrastructure; previously at a regional "
    "bank. Prefers email contact after 6pm. Allergic to penicillin. Two children, one dog named Pixel."
)


def reference_item(i: int) -> Dict[str, Any]:
    return {
        "pk": f"user#{i:08d}",
        "email": f"person{i}@example.com",
        "ssn": f"{i % 1000:03d}-{i % 100:02d}-{i % 10000:04d}",
        "name": "Alexandra Quinn-Whitaker",
        "address": "1428 Elm Street, Apartment 12B, Springfield, OR 97477",
        "bio": BIO,
        "role": "member",
        "status": "active",
        "balance": 1234.56,
        "created_at": datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc),
    }


def models(host: str | None, suffix: str) -> Tuple[type, type]:
    class Meta:
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"

    class PlainUser(Model):
        class Meta:
            table_name = f"bench-plain-{suffix}"

        pk = UnicodeAttribute(hash_key=True)
        email = UnicodeAttribute()
        ssn = UnicodeAttribute()
        name = UnicodeAttribute()
        address = UnicodeAttribute()
        bio = UnicodeAttribute()
        role = UnicodeAttribute()
        status = UnicodeAttribute()
        balance = NumberAttribute()
        created_at = UTCDateTimeAttribute()

    class StashUser(EncryptedModel):
        class Meta:
            table_name = f"bench-stash-{suffix}"

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True)
        ssn = EncryptedAttribute(str, equality=True)
        name = EncryptedAttribute(str)
        address = EncryptedAttribute(str)
        bio = EncryptedAttribute(str)
        role = UnicodeAttribute()
        status = UnicodeAttribute()
        balance = NumberAttribute()
        created_at = UTCDateTimeAttribute()

    for model in (PlainUser, StashUser):
        for option in ("region", "billing_mode"):
            setattr(model.Meta, option, getattr(Meta, option))
        model.Meta.host = host  # type: ignore[attr-defined]
    StashUser.Meta.keyring = KEYRING  # type: ignore[attr-defined]
    return PlainUser, StashUser


def best_cpu(run: Callable[[], object], count: int, rounds: int) -> float:
    """Best-of-``rounds`` process CPU seconds of ``run()``, divided by the ``count`` items it handles."""
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        run()
        best = min(best, (time.process_time() - start) / count)
    return best


def cpu_per_item(model: type, items: List[Dict[str, Any]], rounds: int) -> float:
    """Best-of-``rounds`` process CPU seconds per serialize + from_raw_data round trip."""
    instances = [model(**item) for item in items]

    def round_trip() -> None:
        for instance in instances:
            model.from_raw_data(instance.serialize())

    return best_cpu(round_trip, len(instances), rounds)


def cpu_each_way(model: type, items: List[Dict[str, Any]], rounds: int) -> Tuple[float, float]:
    """Best-of-``rounds`` CPU seconds per item of ``serialize()`` alone and of ``from_raw_data()`` alone."""
    instances = [model(**item) for item in items]
    stored = [instance.serialize() for instance in instances]

    def serialize() -> None:
        for instance in instances:
            instance.serialize()

    def read() -> None:
        for raw in stored:
            model.from_raw_data(raw)

    return best_cpu(serialize, len(instances), rounds), best_cpu(read, len(stored), rounds)


ENCRYPTED = ("email", "ssn", "name", "address", "bio")
WITH_EQUALITY = ("email", "ssn")


def crypto_floor(items: List[Dict[str, Any]], rounds: int) -> Tuple[float, float]:
    """The cryptographic floor of the reference item, through ``cryptography`` directly, on the same sizes:
    per item, 5 nonces and 5 AES-256-GCM-SIV encryptions plus 2 HMAC-SHA256 (writing), 5 decryptions
    (reading). Associated data of the library's length: header, table, path, item key, stored HMAC."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

    aeads = {name: AESGCMSIV(AESGCMSIV.generate_key(256)) for name in ENCRYPTED}
    macs = {name: hmac.new(os.urandom(32), digestmod=hashlib.sha256) for name in WITH_EQUALITY}
    header = b"\x01\x02k1"
    work = []
    for item in items:
        key = b"S\x00" + bytes((len(item["pk"]),)) + item["pk"].encode()
        fields = []
        for name in ENCRYPTED:
            plaintext = b"\x01" + item[name].encode()
            aad = header + b"\x00\x05bench\x00" + bytes((len(name),)) + name.encode() + key
            if name in WITH_EQUALITY:
                aad += b"H\x00\x16" + b"x" * 22
            fields.append((name, plaintext, aad))
        work.append(fields)
    sealed = [[(name, aeads[name].encrypt(b"\x00" * 12, p, a), a) for name, p, a in fields] for fields in work]

    def write() -> None:
        for fields in work:
            for name, plaintext, aad in fields:
                nonce = os.urandom(12)
                aeads[name].encrypt(nonce, plaintext, aad)
                if name in macs:
                    mac = macs[name].copy()
                    mac.update(plaintext)
                    mac.digest()

    def read() -> None:
        for fields in sealed:
            for name, body, aad in fields:
                aeads[name].decrypt(b"\x00" * 12, body, aad)

    return best_cpu(write, len(work), rounds), best_cpu(read, len(sealed), rounds)


def latency(model: type, items: List[Dict[str, Any]]) -> List[float]:
    samples = []
    for item in items:
        start = time.perf_counter()
        model(**item).save()
        model.get(item["pk"])
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--endpoint", help="DynamoDB endpoint for the latency figure (e.g. DynamoDB Local)")
    args = parser.parse_args()

    plain, stash = models(args.endpoint, uuid.uuid4().hex[:8])
    items = [reference_item(i) for i in range(args.items)]
    for model in (plain, stash):  # warm caches (derived keys, imports) outside the measurement
        cpu_per_item(model, items[:200], 1)

    plain_cpu = cpu_per_item(plain, items, args.rounds)
    stash_cpu = cpu_per_item(stash, items, args.rounds)
    plain_write, plain_read = cpu_each_way(plain, items, args.rounds)
    stash_write, stash_read = cpu_each_way(stash, items, args.rounds)
    floor_write, floor_read = crypto_floor(items, args.rounds)
    glue_write = stash_write - plain_write - floor_write  # target: at most 10% of plain, each way
    glue_read = stash_read - plain_read - floor_read
    plain_size = item_size(plain(**items[0]).serialize())
    stash_size = item_size(stash(**items[0]).serialize())

    rows: List[Tuple[str, str, str, str]] = [
        ("serialize + from_raw_data, CPU/item", f"{plain_cpu * 1e6:.1f} us", f"{stash_cpu * 1e6:.1f} us",
         f"{stash_cpu / plain_cpu:.2f}x"),
        ("serialize(), CPU/item", f"{plain_write * 1e6:.1f} us", f"{stash_write * 1e6:.1f} us",
         f"{stash_write / plain_write:.2f}x"),
        ("from_raw_data(), CPU/item", f"{plain_read * 1e6:.1f} us", f"{stash_read * 1e6:.1f} us",
         f"{stash_read / plain_read:.2f}x"),
        ("  crypto floor: serialize", "", f"{floor_write * 1e6:.1f} us", ""),
        ("  crypto floor: from_raw_data", "", f"{floor_read * 1e6:.1f} us", ""),
        ("  glue, serialize", "", f"{glue_write * 1e6:.1f} us", f"{glue_write / plain_write:.0%}"),
        ("  glue, from_raw_data", "", f"{glue_read * 1e6:.1f} us", f"{glue_read / plain_read:.0%}"),
        ("stored item size", f"{plain_size} B", f"{stash_size} B", f"{stash_size / plain_size:.2f}x"),
    ]
    if args.endpoint:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        for model in (plain, stash):
            model.create_table(wait=True)
        try:
            sample = items[: min(len(items), 500)]
            latency(plain, sample[:50])
            latency(stash, sample[:50])
            plain_lat: List[float] = []
            stash_lat: List[float] = []
            for start in range(0, len(sample), 50):  # interleave, so drift hits both alike
                plain_lat += latency(plain, sample[start : start + 50])
                stash_lat += latency(stash, sample[start : start + 50])
            p, s = statistics.median(plain_lat), statistics.median(stash_lat)
            rows.append(("save + get on the endpoint, median", f"{p * 1e3:.2f} ms", f"{s * 1e3:.2f} ms",
                         f"{s / p:.2f}x"))
        finally:
            for model in (plain, stash):
                model.delete_table()

    print(f"reference item: 10 attributes, 5 encrypted (2 with equality); {args.items} items, "
          f"best of {args.rounds} rounds")
    widths = [max(len(row[i]) for row in rows + [("figure", "plain", "stash", "ratio")]) for i in range(4)]
    for row in [("figure", "plain", "stash", "ratio"), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


if __name__ == "__main__":
    main()
