"""Cold start: ``import`` plus the first ``save()`` of a model, pynamodb-stash against plain PynamoDB.

    python bench/bench_coldstart.py [--runs 10] [--endpoint http://127.0.0.1:8000]

Each measurement is a fresh interpreter (``python -X importtime``), as a Lambda cold start is; plain and
encrypted runs alternate, so drift on a shared machine hits both alike. A child times, with
``time.perf_counter``, the import of its library and then its first operation on the reference item's
model (bench_item.py's, declared inline so the plain child never imports pynamodb-stash):

- with ``--endpoint`` (DynamoDB Local, say): the first ``save()``, which also builds botocore's client;
- without it: the first ``serialize()`` (everything ``save()`` does before the request: key resolution
  from ``$PYNAMODB_STASH_KEYRING``, key derivation, the model's plan, encryption).

Printed: medians of ``--runs`` runs for the import (from ``-X importtime``: the time of the modules the
import statement loaded), import + first operation (perf_counter, and the child's process CPU, which
waits for neither DynamoDB Local nor other processes on a busy machine), the whole process (its wall
time, interpreter start and exit included), peak RSS, and the difference encrypted - plain. Target:
import + first save <= 50 ms more than plain.

Bytecode: the children use a private, pre-warmed ``PYTHONPYCACHEPREFIX``, as an installed wheel has its
``.pyc`` files; without it (``PYTHONDONTWRITEBYTECODE``, or a source checkout never imported) every run
would also compile the package's source, which no deployment pays twice.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Dict, List

COMMON = """
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
sys.stderr.write("import time: MARK-START\\n"); sys.stderr.flush()
{imports}
sys.stderr.write("import time: MARK-END\\n"); sys.stderr.flush()
t1 = time.perf_counter()
from datetime import datetime, timezone

class Meta:
    table_name = {table!r}
    region = "us-east-1"
    host = {host!r}

{model}

item = User(
    pk="user#00000001", email="person1@example.com", ssn="001-01-0001", name="Alexandra Quinn-Whitaker",
    address="1428 Elm Street, Apartment 12B, Springfield, OR 97477", bio="Keen cyclist. " * 14,
    role="member", status="active", balance=1234.56, created_at=datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc),
)
item.{first}()
t2, c2 = time.perf_counter(), time.process_time()
import json
with open("/proc/self/status") as status:  # VmHWM: this process's peak RSS (ru_maxrss keeps the parent's)
    hwm = [int(line.split()[1]) for line in status if line.startswith("VmHWM:")]
print(json.dumps({{"import": (t1 - t0) * 1e3, "first": (t2 - t1) * 1e3, "total": (t2 - t0) * 1e3,
                  "cpu": (c2 - c0) * 1e3,
                  "rss_kb": hwm[0] if hwm else 0,
                  "modules": sorted(sys.modules)}}))
"""

PLAIN_IMPORTS = """
from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model
"""
PLAIN_MODEL = """
class User(Model):
    Meta = Meta
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
"""
STASH_IMPORTS = """
from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb_stash import EncryptedAttribute, EncryptedModel
"""
STASH_MODEL = """
class User(EncryptedModel):
    Meta = Meta
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
"""

_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def importtime_ms(stderr: str) -> float:
    """The cumulative time of the top-level imports between the child's two marks, in ms."""
    inside, total = False, 0
    for line in stderr.splitlines():
        if "MARK-START" in line:
            inside = True
        elif "MARK-END" in line:
            break
        elif inside:
            match = _LINE.match(line)
            if match and len(match.group(3)) == 1:  # nesting level 0: its cumulative time covers its children
                total += int(match.group(2))
    return total / 1e3


def self_times(stderr: str) -> Dict[str, float]:
    return {m.group(4): int(m.group(1)) / 1e3 for m in map(_LINE.match, stderr.splitlines()) if m}


def run_child(code: str, env: Dict[str, str], cwd: str) -> Dict[str, object]:
    """Run ``code`` in a fresh interpreter, from ``cwd`` (not this directory: ``-c`` puts the working
    directory first on ``sys.path``, and the package must come from where it is installed)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          env=env, cwd=cwd, check=False)
    wall = (time.perf_counter() - start) * 1e3
    if done.returncode != 0:
        raise SystemExit(f"a child failed:\n{done.stderr[-3000:]}")
    result: Dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    result["importtime"] = importtime_ms(done.stderr)
    result["self"] = self_times(done.stderr)
    return result


def table_models(endpoint: str, tables: List[str]) -> List[type]:
    from pynamodb.attributes import UnicodeAttribute
    from pynamodb.models import Model

    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(variable, "bench")
    models = []
    for table in tables:
        class Table(Model):
            class Meta:
                table_name = table
                region = "us-east-1"
                host = endpoint
                billing_mode = "PAY_PER_REQUEST"

            pk = UnicodeAttribute(hash_key=True)

        models.append(Table)
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--endpoint", help="DynamoDB endpoint for the first save() (else: first serialize())")
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    tables = {"plain": f"coldstart-plain-{suffix}", "stash": f"coldstart-stash-{suffix}"}
    first = "save" if args.endpoint else "serialize"
    codes = {
        "plain": COMMON.format(imports=PLAIN_IMPORTS, model=PLAIN_MODEL, table=tables["plain"],
                               host=args.endpoint, first=first),
        "stash": COMMON.format(imports=STASH_IMPORTS, model=STASH_MODEL, table=tables["stash"],
                               host=args.endpoint, first=first),
    }
    from pynamodb_stash import Keyring  # the parent only: a keyring for the children's environment

    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
               PYNAMODB_STASH_KEYRING=Keyring.generate().export_secret_string())
    created = table_models(args.endpoint, list(tables.values())) if args.endpoint else []
    for model in created:
        model.create_table(wait=True)  # type: ignore[attr-defined]

    results: Dict[str, List[Dict[str, object]]] = {"plain": [], "stash": []}
    try:
        with tempfile.TemporaryDirectory(prefix="coldstart-pyc-") as pycache:
            env["PYTHONPYCACHEPREFIX"] = pycache
            for kind in ("plain", "stash"):  # writes the bytecode and warms the file cache: not measured
                run_child(codes[kind], env, pycache)
            for run in range(args.runs):
                order = ("plain", "stash") if run % 2 == 0 else ("stash", "plain")
                for kind in order:
                    results[kind].append(run_child(codes[kind], env, pycache))
    finally:
        for model in created:
            model.delete_table()  # type: ignore[attr-defined]

    def median(kind: str, field: str) -> float:
        return statistics.median(float(r[field]) for r in results[kind])  # type: ignore[arg-type]

    print(f"cold start, fresh processes, median of {args.runs} (interleaved); first operation: {first}()"
          + (f" on {args.endpoint}" if args.endpoint else " (no endpoint: import + first serialize)"))
    rows = [
        ("import (-X importtime)", "importtime", "ms"),
        ("import (perf_counter)", "import", "ms"),
        (f"first {first}()", "first", "ms"),
        (f"import + first {first}()", "total", "ms"),
        ("  the same, process CPU", "cpu", "ms"),
        ("process wall time", "wall", "ms"),
    ]
    print(f"  {'figure':28} {'plain':>9} {'stash':>9} {'difference':>11}")
    for label, field, unit in rows:
        p, s = median("plain", field), median("stash", field)
        print(f"  {label:28} {p:7.1f}{unit} {s:7.1f}{unit} {s - p:+9.1f}{unit}")
    p_rss, s_rss = median("plain", "rss_kb") / 1024, median("stash", "rss_kb") / 1024
    print(f"  {'peak RSS':28} {p_rss:7.1f}MB {s_rss:7.1f}MB {s_rss - p_rss:+9.1f}MB")
    def paired(field: str) -> float:  # run i's plain and encrypted children ran back to back
        return statistics.median(float(s[field]) - float(p[field])  # type: ignore[arg-type]
                                 for p, s in zip(results["plain"], results["stash"]))

    print(f"  import + first {first}() extra, median of the paired differences: {paired('total'):.1f} ms wall, "
          f"{paired('cpu'):.1f} ms CPU (target <= 50 ms)")

    plain_modules = set(results["plain"][0]["modules"])  # type: ignore[arg-type]
    stash_modules = set(results["stash"][0]["modules"])  # type: ignore[arg-type]
    extra = sorted(stash_modules - plain_modules)
    heavy = [m for m in ("boto3", "argparse", "pynamodb_stash.kms", "pynamodb_stash._cli", "moto") if m in extra]
    print(f"  modules only the encrypted child loads: {len(extra)}; heavy ones among them: {heavy or 'none'}")
    selfs: Dict[str, List[float]] = {}
    for result in results["stash"]:
        for module, ms in result["self"].items():  # type: ignore[union-attr]
            if module in extra:
                selfs.setdefault(module, []).append(ms)
    top = sorted(((statistics.median(v), m) for m, v in selfs.items()), reverse=True)[:8]
    print("  their largest import self times (median): "
          + ", ".join(f"{m} {ms:.1f} ms" for ms, m in top))


if __name__ == "__main__":
    main()
