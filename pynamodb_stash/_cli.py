"""The ``pynamodb-stash`` command line: ``keygen``, ``demo`` and ``keystore``."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

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

    dynamodb = boto3.client("dynamodb", endpoint_url=args.endpoint, region_name=args.region)
    kms = boto3.client("kms", endpoint_url=args.kms_endpoint, region_name=args.region)
    store = KeyStore(args.table, kms_client=kms, dynamodb_client=dynamodb)
    action = args.action
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
    elif action == "destroy-keyset":
        print(f"keyset {args.keyset}: destroyed {store.destroy_keyset(_need(args, 'keyset'))} keys")
    else:
        for info in store.describe(_need(args, "keyset")):
            print(f"{info.key_id:<14} {info.kind:<10} {info.status:<12} {info.created_at}  {info.kms_key_id}")
    return 0


def _need(args: argparse.Namespace, name: str) -> str:
    value = getattr(args, name)
    if not value:
        raise SystemExit(f"pynamodb-stash keystore {args.action}: --{name.replace('_', '-')} is required")
    return str(value)


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
        choices=["create-table", "create-keyset", "list", "add-key", "promote", "rotate", "retire", "destroy-keyset"],
    )
    keystore.add_argument("--table", required=True, help="the key store's DynamoDB table")
    keystore.add_argument("--keyset", help="the keyset (a tenant, an application)")
    keystore.add_argument("--kms-key-id", help="the KMS key that wraps new keys (create-keyset)")
    keystore.add_argument("--key-id", help="the key to promote or retire")
    keystore.add_argument("--endpoint", help="DynamoDB endpoint URL (default: AWS)")
    keystore.add_argument("--kms-endpoint", help="KMS endpoint URL (default: AWS)")
    keystore.add_argument("--region", default=None)
    keystore.set_defaults(run=_keystore)

    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except StashError as exc:
        print(f"pynamodb-stash: {exc.code}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
