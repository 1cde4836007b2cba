"""The pynamodb-stash command line: argument parsing, checking, and dispatch.

The commands live in _cli_commands, what they print in _cli_report. Every argument is checked here,
before any request: a command line that cannot run is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
import traceback
from typing import Any, Callable, NoReturn, Optional, Sequence

from pynamodb.exceptions import PynamoDBException

from . import _cli_commands as commands
from ._cli_report import CommandError, UsageError, aws_failure
from ._crypto import check_key_id
from ._keyring import ENV_VAR
from .exceptions import StashError

DESCRIPTION = (
    "Client-side field-level encryption for PynamoDB models on DynamoDB: make and rotate keyrings, run the "
    "demo, manage a KMS key store, and inspect, encrypt, re-encrypt and verify tables. No output holds a "
    "value, ciphertext, HMAC or key, except what keygen and hmac print on purpose."
)
EPILOG = "Run 'pynamodb-stash COMMAND --help' for a command's options. Guides: docs/operations.md, docs/keys.md."


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (and exit status 2), not the usage block followed by the error."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}; see '{self.prog} --help'", file=sys.stderr)
        raise UsageError(message)


# -- argument types: each refuses a bad value before any request ------------------------------------------


def _integer(minimum: int, maximum: Optional[int] = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be {bounds} (got {value})")
        return value

    parse.__name__ = "integer"
    return parse


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of writes per second (got {text})")
    return value


def _key_id(text: str) -> str:
    try:
        return check_key_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _model_spec(text: str) -> str:
    module, _, name = text.partition(":")
    if not module or not name or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r} is not MODULE:Model, e.g. myapp.models:User")
    return text


# -- the parser -------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pynamodb-stash", description=DESCRIPTION, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keygen = sub.add_parser(
        "keygen", help=f"print a new keyring for ${ENV_VAR}, or the next one of a local rotation",
        description=(
            f"Print a new keyring on standard output, in the form ${ENV_VAR} takes. Key ids are unique "
            "(k-DATE-RANDOM, idx-DATE-RANDOM), so a value read with another keyring names the missing key. "
            "With --rotate, --add-key, --promote or --drop-old, read the current keyring instead and print "
            "the next one of a rotation (see docs/keys.md)."
        ),
    )
    keygen.add_argument("--key-id", type=_key_id, help="id of the new encryption key (default: k-DATE-RANDOM)")
    keygen.add_argument("--index-key-id", type=_key_id,
                        help="id of a new keyring's index (HMAC) key (default: idx-DATE-RANDOM)")
    step = keygen.add_mutually_exclusive_group()
    step.add_argument("--rotate", action="store_true",
                      help="next keyring: a new primary key, the current keys decrypt-only, the same index key")
    step.add_argument("--add-key", action="store_true",
                      help="next keyring: the current one plus a new decrypt-only key (a rolling rotation's step 1)")
    step.add_argument("--promote", metavar="KEY_ID", type=_key_id,
                      help="next keyring: KEY_ID primary, the old primary decrypt-only (a rolling rotation's step 2)")
    step.add_argument("--drop-old", action="store_true",
                      help="next keyring: the current one without its decrypt-only keys (after 'rotate')")
    keygen.add_argument("--from-file", "--from", dest="from_file", metavar="PATH",
                        help=f"read the current keyring from PATH ('-': standard input) instead of ${ENV_VAR}")
    keygen.set_defaults(run=commands.keygen, check=_check_keygen)

    demo = sub.add_parser("demo", help="run the quickstart end to end on an embedded DynamoDB",
                          description="Run the quickstart and show what the application sees beside what "
                          "DynamoDB stores (by type and size only).")
    demo.add_argument("--endpoint", help="DynamoDB endpoint URL (DynamoDB Local or AWS) instead of the embedded one")
    demo.add_argument("--region", default="us-east-1", help="AWS region (default us-east-1)")
    demo.set_defaults(run=_demo)

    _add_keystore(sub)

    for name, summary in (
        ("status", "print a model's encryption schema, nested fields included; --scan also reads the table"),
        ("verify", "read and decrypt every item; exit 1 if any fails, naming the items by primary key"),
        ("encrypt-existing", "encrypt values still stored in plaintext, in place"),
        ("rotate", "re-encrypt values under the keyring's primary key (--rehash: and the index key)"),
        ("hmac", "print the HMAC of a value, to look it up with the AWS CLI or console"),
    ):
        command = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        command.add_argument("model", type=_model_spec, help="MODULE:Model, e.g. myapp.models:User")
        if name == "hmac":
            command.add_argument("attribute",
                                 help="the encrypted attribute by Python names; a nested one as address.street")
            command.add_argument("value", help="the value; '-' reads it from standard input (one newline stripped)")
            command.add_argument("--type", choices=sorted(commands.VALUE_TYPES),
                                 help="how to read the value (default: the attribute's declared type)")
            command.add_argument("--tenant",
                                 help="the tenant whose keys hash it, for a model with a keyring per tenant")
        if name == "status":
            command.add_argument("--scan", action="store_true",
                                 help="also read every item: values by key id, and failures by item")
        if name in ("verify", "encrypt-existing", "rotate"):
            command.add_argument("--segments", type=_integer(1), default=1,
                                 help="parallel scan segments in this process (default 1)")
            command.add_argument("--page-size", type=_integer(1), help="items per scan request (default: 1 MB pages)")
        if name in ("encrypt-existing", "rotate"):
            command.add_argument("--segment", type=_integer(0),
                                 help="scan only this segment, from 0 (with --total-segments)")
            command.add_argument("--total-segments", type=_integer(1),
                                 help="the number of workers splitting the table (with --segment)")
            command.add_argument("--checkpoint", metavar="FILE", help="a file to resume from and record progress in")
            command.add_argument("--max-write-rate", type=_rate, help="rewrites per second, at most")
            command.add_argument("--dry-run", action="store_true", help="count what would be rewritten, write nothing")
        if name == "rotate":
            command.add_argument("--rehash", action="store_true", help="also move HMACs to the new index key")
        if name == "encrypt-existing":
            command.add_argument(
                "--trust-suspicious-plaintext", action="store_true",
                help="also encrypt plaintext found beside encrypted values, which a table writer without keys "
                "could have planted (see docs/operations.md); by default such items are reported, not rewritten",
            )
        command.add_argument("--endpoint", help="DynamoDB endpoint URL (default: the model's)")
        command.add_argument("--region", help="AWS region (default: the model's)")
        runner = {"status": commands.status, "hmac": commands.hmac}.get(name, commands.scan_command)
        command.set_defaults(run=runner, check=_check_scan)
    return parser


_KEYSTORE_ACTIONS = {
    # action: (one-line description, options it needs)
    "create-table": ("create the key store's DynamoDB table", ()),
    "create-keyset": ("create a keyset: an encryption key and an index key, sealed under a KMS key",
                      ("keyset", "kms_key_id")),
    "list": ("list a keyset's keys: id, kind, status, creation time, KMS key", ("keyset",)),
    "add-key": ("add a decrypt-only encryption key (promote it after one TTL)", ("keyset",)),
    "promote": ("make a key the active encryption key; the active one becomes decrypt-only", ("keyset", "key_id")),
    "rotate": ("add a decrypt-only key and print the promote command to run after one TTL "
               "(--promote-now: both at once)", ("keyset",)),
    "retire": ("stop reading values under a key (reinstate undoes it)", ("keyset", "key_id")),
    "reinstate": ("make a retired key decrypt-only again", ("keyset", "key_id")),
    "rewrap": ("seal a keyset under another KMS key", ("keyset", "kms_key_id")),
    "destroy-keyset": ("crypto-shred a keyset: asks for its name on a terminal, needs --yes otherwise", ("keyset",)),
    "upgrade": ("authenticate keysets of the earlier record format (default: every keyset)", ()),
}


def _add_keystore(sub: Any) -> None:
    keystore = sub.add_parser(
        "keystore", help="manage an AWS KMS key store (needs the [kms] extra)",
        description="Manage the keysets of an AWS KMS key store (see docs/keys.md). Needs the [kms] extra.",
    )
    actions = keystore.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, (summary, _) in _KEYSTORE_ACTIONS.items():
        command = actions.add_parser(action, help=summary, description=summary[0].upper() + summary[1:] + ".")
        command.add_argument("--table", required=True, help="the key store's DynamoDB table")
        if action not in ("create-table", "upgrade"):
            command.add_argument("--keyset", help="the keyset (an application, a tenant)")
        if action == "upgrade":
            command.add_argument("--keyset", help="the keyset to upgrade (default: every keyset)")
            command.add_argument("--dry-run", action="store_true", help="report, write nothing")
            command.add_argument(
                "--remove-legacy", action="store_true",
                help="delete the rows of the earlier format (once no process of an earlier version runs)",
            )
        if action != "create-table":
            command.add_argument(
                "--allowed-kms-key-id", action="append", metavar="KMS_KEY_ID",
                help="a KMS key keysets may be sealed under, as they name it (repeatable); others are refused",
            )
        if action in ("create-keyset", "rewrap"):
            command.add_argument("--kms-key-id", help="the KMS key to seal the keyset under")
        if action in ("promote", "retire", "reinstate"):
            command.add_argument("--key-id", help=f"the key to {action}")
        if action == "rotate":
            command.add_argument("--promote-now", action="store_true",
                                 help="add and promote at once, skipping the wait (one process, or a planned window)")
        if action == "destroy-keyset":
            command.add_argument(
                "--schedule-kms-key-deletion", action="store_true",
                help="also schedule the deletion of the keyset's own KMS key, which shreds backups too",
            )
            command.add_argument("--pending-window-days", type=_integer(7, 30), default=30,
                                 help="days before AWS KMS deletes the KMS key, 7 to 30 (default 30)")
            command.add_argument("--yes", action="store_true", help="destroy without asking")
        command.add_argument("--endpoint", help="DynamoDB endpoint URL (default: AWS)")
        command.add_argument("--kms-endpoint", help="KMS endpoint URL (default: AWS)")
        command.add_argument("--region", help="AWS region (default: boto3's)")
        command.set_defaults(run=commands.keystore, check=_check_keystore)


# -- checks across arguments ------------------------------------------------------------------------------


def _usage(args: argparse.Namespace, message: str) -> NoReturn:
    prog = "pynamodb-stash " + " ".join(part for part in (args.command, getattr(args, "action", None)) if part)
    print(f"{prog}: error: {message}; see '{prog} --help'", file=sys.stderr)
    raise UsageError(message)


def _check_keygen(args: argparse.Namespace) -> None:
    rotating = args.rotate or args.add_key or args.promote or args.drop_old
    if args.from_file and not rotating:
        _usage(args, "--from-file reads the current keyring: use it with --rotate, --add-key, --promote or --drop-old")
    if rotating and args.index_key_id:
        _usage(args, "--index-key-id names the index key of a new keyring; a rotation keeps the index key")
    if args.key_id and (args.promote or args.drop_old):
        _usage(args, "--key-id names a new key: use it with --rotate or --add-key")


def _check_scan(args: argparse.Namespace) -> None:
    segment, total = getattr(args, "segment", None), getattr(args, "total_segments", None)
    if (segment is None) != (total is None):
        _usage(args, "--segment and --total-segments go together")
    if segment is not None and total is not None:
        if segment >= total:
            _usage(args, f"--segment is from 0 to --total-segments - 1 (got {segment} of {total})")
        if args.segments != 1:
            _usage(args, "--segments splits this process's share; with --segment, give one or the other")
    if getattr(args, "dry_run", False) and getattr(args, "checkpoint", None):
        _usage(args, "--dry-run writes nothing, so it has no progress to record in --checkpoint")


def _check_keystore(args: argparse.Namespace) -> None:
    needed = _KEYSTORE_ACTIONS[args.action][1]
    for name in needed:
        if not getattr(args, name, None):
            _usage(args, f"--{name.replace('_', '-')} is required")
    allowed = commands.allowed_kms_key_ids(args)
    shredding = getattr(args, "schedule_kms_key_deletion", False)
    if (args.action not in ("create-table", "destroy-keyset") or shredding) and not allowed:
        _usage(args, "--allowed-kms-key-id is required (the KMS keys keysets may be sealed under; repeat it)")
    if args.action == "destroy-keyset" and not args.yes and not sys.stdin.isatty():
        _usage(args, f"destroying keyset {args.keyset!r} cannot be undone: confirm with --yes "
                     "(standard input is not a terminal to ask on)")


def _demo(args: argparse.Namespace) -> int:
    from ._demo import embedded_dynamodb, run_demo

    if args.endpoint:
        run_demo(args.endpoint, region=args.region)
    else:
        with embedded_dynamodb() as endpoint:
            run_demo(endpoint, region=args.region)
    return 0


# -- main -------------------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; returns its exit status: 0, 1 when it failed (one line on stderr), 2 for a
    command line that cannot run (raised as ``SystemExit``, before any request), 130 when interrupted."""
    args = build_parser().parse_args(argv)
    check = getattr(args, "check", None)
    if check is not None:
        check(args)
    aws_errors: tuple[type[BaseException], ...] = (PynamoDBException, *_botocore_errors())
    try:
        return int(args.run(args))
    except CommandError as exc:
        print(f"pynamodb-stash: {exc}", file=sys.stderr)
    except StashError as exc:
        print(f"pynamodb-stash: {exc.code}: {exc}", file=sys.stderr)
    except aws_errors as exc:
        print(f"pynamodb-stash: {aws_failure(exc, _where(args))}", file=sys.stderr)
    except KeyboardInterrupt:
        resume = " (run it again with the same --checkpoint to resume)" if getattr(args, "checkpoint", None) else ""
        print(f"\npynamodb-stash: interrupted{resume}", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, or another library's error: its text may quote a value, so it is not shown
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {frames[-1].filename}, line {frames[-1].lineno}" if frames else ""
        print(f"pynamodb-stash: unexpected {type(exc).__name__}{where} (its message is not shown: it may "
              "hold values)", file=sys.stderr)
    return 1


def _botocore_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _where(args: argparse.Namespace) -> str:
    where = getattr(args, "where", None)
    if where is not None:
        return str(where())
    region = f" (region {args.region})" if getattr(args, "region", None) else ""
    return (getattr(args, "endpoint", None) or "AWS") + region


if __name__ == "__main__":
    raise SystemExit(main())
