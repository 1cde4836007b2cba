"""The ``pynamodb-stash`` command line: ``keygen`` and ``demo``."""

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

    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except StashError as exc:
        print(f"pynamodb-stash: {exc.code}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
