"""The ``pynamodb-stash`` command line: keys, the demo, and operations on tables."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from typing import Any, Callable, Dict, Optional, Sequence

from pynamodb.exceptions import PynamoDBException

from ._keyring import ENV_VAR, Keyring
from .exceptions import StashError


def _keygen(args: argparse.Namespace) -> int:
    keyring = Keyring.generate(key_id=args.key_id, index_key_id=args.index_key_id)
    print(keyring.export_secret_string())
    if sys.stderr.isatty():
        print(f"# keep it secret; e.g. export {ENV_VAR}=\"$(pynamodb-stash keygen)\"", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import embedded_dynamodb, run_demo

    if args.endpoint:
        run_demo(args.endpoint, region=args.region)
    else:
        with embedded_dynamodb() as endpoint:
            run_demo(endpoint, region=args.region)
    return 0


def _keystore(args: argparse.Namespace) -> int:
    try:
        import boto3

        from .kms import KeyStore
    except ImportError:
        raise SystemExit("pynamodb-stash keystore needs the [kms] extra: pip install 'pynamodb-stash[kms]'") from None

    # Every KMS key named on the command line is allowed; the key store refuses keysets sealed under others.
    allowed = [*(args.allowed_kms_key_id or []), *([args.kms_key_id] if args.kms_key_id else [])]
    action = args.action
    needs_kms = action not in ("create-table", "destroy-keyset") or args.schedule_kms_key_deletion
    if needs_kms and not allowed:
        raise SystemExit(
            f"pynamodb-stash keystore {action}: --allowed-kms-key-id is required (the KMS keys keysets may be "
            "sealed under; repeat it for several)"
        )
    dynamodb = boto3.client("dynamodb", endpoint_url=args.endpoint, region_name=args.region)
    kms = boto3.client("kms", endpoint_url=args.kms_endpoint, region_name=args.region)
    store = KeyStore(args.table, kms_key_ids=allowed or None, kms_client=kms, dynamodb_client=dynamodb)
    if action == "create-table":
        store.create_table()
        print(f"created key store table {args.table}")
    elif action == "create-keyset":
        encryption, index = store.create_keyset(_need(args, "keyset"), _need(args, "kms_key_id"))
        print(f"keyset {args.keyset}: encryption key {encryption}, index key {index}")
    elif action == "add-key":
        print(f"keyset {args.keyset}: added decrypt-only key {store.add_key(_need(args, 'keyset'))}")
    elif action == "promote":
        store.promote(_need(args, "keyset"), _need(args, "key_id"))
        print(f"keyset {args.keyset}: {args.key_id} is now the active key")
    elif action == "rotate":
        print(f"keyset {args.keyset}: {store.rotate(_need(args, 'keyset'))} is now the active key")
    elif action == "retire":
        store.retire(_need(args, "keyset"), _need(args, "key_id"))
        print(f"keyset {args.keyset}: {args.key_id} is retired")
    elif action == "reinstate":
        store.reinstate(_need(args, "keyset"), _need(args, "key_id"))
        print(f"keyset {args.keyset}: {args.key_id} is decrypt-only again")
    elif action == "rewrap":
        store.rewrap(_need(args, "keyset"), _need(args, "kms_key_id"))
        print(f"keyset {args.keyset}: sealed under KMS key {args.kms_key_id}")
    elif action == "destroy-keyset":
        print(store.destroy_keyset(
            _need(args, "keyset"), schedule_kms_key_deletion=args.schedule_kms_key_deletion,
            pending_window_days=args.pending_window_days,
        ))
    elif action == "upgrade":
        from .exceptions import KeyProviderError

        for keyset in [args.keyset] if args.keyset else store.keysets():
            try:
                print(store.upgrade(keyset, dry_run=args.dry_run, remove_legacy=args.remove_legacy))
            except KeyProviderError as exc:  # of every keyset: a destroyed one has nothing to upgrade
                if args.keyset or exc.code != "keyset_destroyed":
                    raise
                print(f"keyset {keyset!r}: destroyed, nothing to upgrade")
    else:
        for info in store.describe(_need(args, "keyset")):
            print(f"{info.key_id:<14} {info.kind:<10} {info.status:<12} {info.created_at}  {info.kms_key_id}")
    return 0


def _need(args: argparse.Namespace, name: str) -> str:
    value = getattr(args, name)
    if not value:
        raise SystemExit(f"pynamodb-stash keystore {args.action}: --{name.replace('_', '-')} is required")
    return str(value)


def _load_model(args: argparse.Namespace) -> Any:
    """``MODULE:Model``, bound to ``--endpoint``/``--region`` when given. One-line errors, no traceback."""
    from ._model import EncryptedModel

    module_name, _, class_name = args.model.partition(":")
    if not module_name or not class_name:
        raise SystemExit(f"pynamodb-stash: {args.model!r} is not MODULE:Model")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may fail in any way
        raise SystemExit(f"pynamodb-stash: cannot import {module_name}: {type(exc).__name__}") from None
    model = getattr(module, class_name, None)
    if not (isinstance(model, type) and issubclass(model, EncryptedModel)):
        raise SystemExit(f"pynamodb-stash: {args.model} is not an EncryptedModel")
    if args.endpoint:
        model.Meta.host = args.endpoint
    if args.region:
        model.Meta.region = args.region
    if args.endpoint or args.region:
        model._connection = None
    if not model.exists():
        raise SystemExit(f"pynamodb-stash: table {model.Meta.table_name!r} does not exist")
    return model


def _progress(every: float = 2.0) -> Callable[[Any], None]:
    """Progress on stderr: a line rewritten in place on a terminal, a line every ``every`` s elsewhere."""
    started = time.monotonic()
    last = [started]
    terminal = sys.stderr.isatty()

    def show(report: Any) -> None:
        now = time.monotonic()
        if now - last[0] < (0.2 if terminal else every):
            return
        last[0] = now
        rate = report.scanned / max(now - started, 1e-9)
        line = f"{report.summary()} ({rate:.0f} items/s)"
        print(f"\r{line}" if terminal else f"... {line}", end="" if terminal else "\n", file=sys.stderr, flush=True)

    return show


def _operation(args: argparse.Namespace) -> int:
    from . import operations

    model = _load_model(args)
    if args.command == "status":
        rows = operations.status(model)
        columns = list(rows[0]) if rows else []
        widths = [max(len(column), *(len(row[column]) for row in rows)) for column in columns]
        for values in [dict(zip(columns, columns)), *rows]:
            print("  ".join(str(values[column]).ljust(width) for column, width in zip(columns, widths)).rstrip())
        print(f"keyring: primary key {model._stash_runtime().keyring.primary_key_id}")
        if not args.scan:
            return 0
        args.command = "verify"  # the counts come from reading every item
    if args.command == "hmac":
        attribute = model.get_attributes().get(args.attribute)
        if attribute is None or not getattr(attribute, "equality", False):
            raise SystemExit(f"pynamodb-stash: {args.attribute!r} is not an encrypted attribute with equality=True")
        print(attribute.hmac(args.value))
        return 0
    run = {"verify": operations.verify, "encrypt-existing": operations.encrypt_existing, "rotate": operations.rotate}
    options: Dict[str, Any] = {"segments": getattr(args, "segments", 1), "progress": _progress()}
    if args.command != "verify":
        options.update(
            segment=args.segment, total_segments=args.total_segments, checkpoint=args.checkpoint,
            max_write_rate=args.max_write_rate, dry_run=args.dry_run, page_size=args.page_size,
        )
    if args.command == "rotate":
        options["rehash"] = args.rehash
    if args.command == "encrypt-existing":
        options["trust_suspicious"] = args.trust_suspicious_plaintext
    report = run[args.command](model, **options)
    print(report.summary())
    if report.key_ids:
        print("values by key id: " + ", ".join(f"{key}: {count}" for key, count in sorted(report.key_ids.items())))
    return 0 if report.ok else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="pynamodb-stash", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    keygen = commands.add_parser("keygen", help=f"print a fresh keyring for ${ENV_VAR}")
    keygen.add_argument("--key-id", default="k1", help="id of the encryption key (default k1)")
    keygen.add_argument("--index-key-id", default="idx1", help="id of the HMAC index key (default idx1)")
    keygen.set_defaults(run=_keygen)

    demo = commands.add_parser("demo", help="run the quickstart on an embedded DynamoDB")
    demo.add_argument("--endpoint", help="DynamoDB endpoint URL (DynamoDB Local or AWS) instead of embedded")
    demo.add_argument("--region", default="us-east-1")
    demo.set_defaults(run=_demo)

    keystore = commands.add_parser("keystore", help="manage an AWS KMS key store (needs the [kms] extra)")
    keystore.add_argument(
        "action",
        choices=["create-table", "create-keyset", "list", "add-key", "promote", "rotate", "retire", "reinstate",
                 "rewrap", "destroy-keyset", "upgrade"],
    )
    keystore.add_argument("--table", required=True, help="the key store's DynamoDB table")
    keystore.add_argument("--keyset", help="the keyset (a tenant, an application); upgrade: default all")
    keystore.add_argument(
        "--allowed-kms-key-id", action="append", metavar="KMS_KEY_ID",
        help="a KMS key keysets may be sealed under, as they name it (repeatable); others are refused",
    )
    keystore.add_argument("--kms-key-id", help="the KMS key to seal the keyset under (create-keyset, rewrap)")
    keystore.add_argument("--key-id", help="the key to promote, retire or reinstate")
    keystore.add_argument(
        "--schedule-kms-key-deletion", action="store_true",
        help="destroy-keyset: also schedule the deletion of the keyset's own KMS key, which shreds backups too",
    )
    keystore.add_argument("--pending-window-days", type=int, default=30, help="destroy-keyset: 7 to 30 (default 30)")
    keystore.add_argument("--dry-run", action="store_true", help="upgrade: report, write nothing")
    keystore.add_argument(
        "--remove-legacy", action="store_true",
        help="upgrade: delete the rows of the earlier format (once no process of an earlier version runs)",
    )
    keystore.add_argument("--endpoint", help="DynamoDB endpoint URL (default: AWS)")
    keystore.add_argument("--kms-endpoint", help="KMS endpoint URL (default: AWS)")
    keystore.add_argument("--region", default=None)
    keystore.set_defaults(run=_keystore)

    for name, summary in (
        ("status", "print a model's encryption schema"),
        ("verify", "read and decrypt every item; exit 1 if any fails"),
        ("encrypt-existing", "encrypt values still stored in plaintext, in place"),
        ("rotate", "re-encrypt values under the keyring's primary key"),
        ("hmac", "print the HMAC of a value, for the AWS CLI or console"),
    ):
        command = commands.add_parser(name, help=summary)
        command.add_argument("model", help="MODULE:Model, e.g. myapp.models:User")
        if name == "hmac":
            command.add_argument("attribute")
            command.add_argument("value")
        if name == "status":
            command.add_argument("--scan", action="store_true", help="also read every item: counts by key id")
        if name in ("verify", "encrypt-existing", "rotate"):
            command.add_argument("--segments", type=int, default=1, help="parallel scan segments in this process")
        if name in ("encrypt-existing", "rotate"):
            command.add_argument("--segment", type=int, help="scan only this segment (with --total-segments)")
            command.add_argument("--total-segments", type=int, help="the number of workers splitting the table")
            command.add_argument("--checkpoint", help="a file to resume from and record progress in")
            command.add_argument("--max-write-rate", type=float, help="rewrites per second, at most")
            command.add_argument("--dry-run", action="store_true", help="count, write nothing")
            command.add_argument("--page-size", type=int, help="items per scan request")
        if name == "rotate":
            command.add_argument("--rehash", action="store_true", help="also move HMACs to the new index key")
        if name == "encrypt-existing":
            command.add_argument(
                "--trust-suspicious-plaintext", action="store_true",
                help="also encrypt plaintext found beside encrypted values, which a table writer without keys "
                "could have planted (see docs/operations.md); by default such items are reported, not rewritten",
            )
        command.add_argument("--endpoint", help="DynamoDB endpoint URL (default: the model's)")
        command.add_argument("--region", default=None)
        command.set_defaults(run=_operation)

    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except StashError as exc:
        print(f"pynamodb-stash: {exc.code}: {exc}", file=sys.stderr)
        return 1
    except PynamoDBException as exc:  # DynamoDB refused: name the error, not its payload
        print(f"pynamodb-stash: {type(exc).__name__}: {exc.cause_response_code or 'request failed'}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
