"""The commands of the pynamodb-stash command line; ``_cli`` parses their arguments and calls them.

Each takes the parsed arguments and returns the exit status. ``keygen`` and ``hmac`` print what they
are for (a keyring, an HMAC) on standard output; nothing else prints a value, ciphertext, HMAC or key.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import json
import os
import secrets
import shlex
import sys
import traceback
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _pynamodb
from ._cli_report import CommandError, Progress, print_report, print_table
from ._crypto import Key, check_key_id
from ._keyring import ENV_VAR, Keyring, TenantKeyrings, tenant
from .exceptions import StashError

# -- keygen -----------------------------------------------------------------------------------------------


def new_key_id(prefix: str) -> str:
    """``k-20261107-3f9a2c1b``: the date, for people, and 32 random bits, so that two keyrings made apart
    never share a key id and a wrong keyring says "key id ... is not in the keyring"."""
    return check_key_id(f"{prefix}-{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(4)}")


def keygen(args: argparse.Namespace) -> int:
    if args.rotate or args.add_key or args.promote or args.drop_old:
        return _keygen_next(args)
    keyring = Keyring.generate(
        key_id=args.key_id or new_key_id("k"), index_key_id=args.index_key_id or new_key_id("idx")
    )
    print(keyring.export_secret_string())
    if sys.stderr.isatty():
        print(f'# keep it secret; e.g. export {ENV_VAR}="$(pynamodb-stash keygen)"', file=sys.stderr)
    return 0


def _keygen_next(args: argparse.Namespace) -> int:
    """The next keyring of a local rotation, from the current one: printed, with what to do next."""
    current, source = _current_keyring(args)
    new_id = args.key_id or new_key_id("k")
    while new_id in (*current.key_ids, current.index_key_id):
        if args.key_id:
            raise CommandError(f"key id {new_id!r} is already in the keyring from {source}")
        new_id = new_key_id("k")
    if args.rotate:
        following = current.with_new_primary(Key.generate(new_id).export_secret_bytes(), key_id=new_id)
    else:
        # No Keyring method adds a decrypt-only key, promotes one or drops the others: edit the keyring's
        # documented string form, which Keyring.from_string then checks as it checks any keyring.
        data = _keyring_data(current)
        keys: Dict[str, str] = data["keys"]
        if args.add_key:
            keys[new_id] = Key.generate(new_id).export_secret_base64()
        elif args.promote:
            if args.promote not in keys:
                raise CommandError(f"key id {args.promote!r} is not an encryption key of the keyring from {source}")
            data["primary"] = args.promote
        else:
            data["keys"] = {data["primary"]: keys[data["primary"]]}
        following = Keyring.from_string(_keyring_text(data), source="the new keyring")
    print(following.export_secret_string())
    old = [key for key in following.key_ids if key != following.primary_key_id]
    print(
        f"# primary {following.primary_key_id}; decrypt-only: {', '.join(old) or 'none'}; "
        f"index key {following.index_key_id} (unchanged)",
        file=sys.stderr,
    )
    if args.add_key:
        nxt = (f"deploy it to every process, wait until all run it, then "
               f"`pynamodb-stash keygen --promote {following.key_ids[-1]}`")
    elif args.rotate or args.promote:
        caution = (" (a process without the new key cannot read what it encrypts: with several, use --add-key "
                   "first)") if args.rotate else ""
        nxt = (f"deploy it to every process{caution}, then `pynamodb-stash rotate MODULE:Model` until it "
               "reports every item already under the primary key, then `pynamodb-stash keygen --drop-old`")
    else:
        nxt = "deploy it: values still under the dropped keys no longer read (check with `pynamodb-stash verify`)"
    print(f"# next: {nxt}", file=sys.stderr)
    return 0


def _current_keyring(args: argparse.Namespace) -> Tuple[Keyring, str]:
    if args.from_file == "-":
        text, source = sys.stdin.read(), "standard input"
    elif args.from_file:
        try:
            text = Path(args.from_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {args.from_file}: {exc.strerror or type(exc).__name__}") from None
        source = f"file {args.from_file}"
    else:
        text, source = os.environ.get(ENV_VAR, ""), f"environment variable {ENV_VAR}"
        if not text:
            raise CommandError(
                f"the current keyring is read from ${ENV_VAR}, which is not set: set it, or pass "
                "--from-file PATH, or --from - to read it from standard input"
            )
    return Keyring.from_string(text, source=source), source


def _keyring_data(keyring: Keyring) -> Dict[str, Any]:
    """The JSON object of the keyring's documented string form (``stash-keyring:v1:`` + base64url)."""
    payload = keyring.export_secret_string().split(":", 2)[2]
    data: Dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def _keyring_text(data: Dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
    return "stash-keyring:v1:" + payload.rstrip("=")


# -- keystore ---------------------------------------------------------------------------------------------


def keystore(args: argparse.Namespace) -> int:
    try:
        import boto3

        from .kms import KeyStore
    except ImportError:
        raise CommandError("pynamodb-stash keystore needs the [kms] extra: pip install 'pynamodb-stash[kms]'") from None

    action = args.action
    if action == "destroy-keyset" and not confirm_destruction(args):
        print("not confirmed: nothing was destroyed", file=sys.stderr)
        return 1
    dynamodb = boto3.client("dynamodb", endpoint_url=args.endpoint, region_name=args.region)
    kms = boto3.client("kms", endpoint_url=args.kms_endpoint, region_name=args.region)
    allowed = allowed_kms_key_ids(args)
    store = KeyStore(args.table, kms_key_ids=allowed or None, kms_client=kms, dynamodb_client=dynamodb)
    keyset: str = getattr(args, "keyset", None) or ""
    if action == "create-table":
        store.create_table()
        print(f"created key store table {args.table}")
    elif action == "create-keyset":
        encryption, index = store.create_keyset(keyset, args.kms_key_id)
        print(f"keyset {keyset}: encryption key {encryption}, index key {index}")
    elif action == "add-key":
        key_id = store.add_key(keyset)
        print(f"keyset {keyset}: added decrypt-only key {key_id}")
        _print_promote_hint(args, key_id)
    elif action == "promote":
        store.promote(keyset, args.key_id)
        print(f"keyset {keyset}: {args.key_id} is now the active key")
    elif action == "rotate":
        if args.promote_now:
            print(f"keyset {keyset}: {store.rotate(keyset)} is now the active key (added and promoted at once)")
        else:
            key_id = store.add_key(keyset)
            print(f"keyset {keyset}: added {key_id}, decrypt-only for now")
            _print_promote_hint(args, key_id)
    elif action == "retire":
        store.retire(keyset, args.key_id)
        print(f"keyset {keyset}: {args.key_id} is retired")
    elif action == "reinstate":
        store.reinstate(keyset, args.key_id)
        print(f"keyset {keyset}: {args.key_id} is decrypt-only again")
    elif action == "rewrap":
        store.rewrap(keyset, args.kms_key_id)
        print(f"keyset {keyset}: sealed under KMS key {args.kms_key_id}")
    elif action == "destroy-keyset":
        print(store.destroy_keyset(
            keyset, schedule_kms_key_deletion=args.schedule_kms_key_deletion,
            pending_window_days=args.pending_window_days,
        ))
    elif action == "upgrade":
        from .exceptions import KeyProviderError

        for name in [keyset] if keyset else store.keysets():
            try:
                print(store.upgrade(name, dry_run=args.dry_run, remove_legacy=args.remove_legacy))
            except KeyProviderError as exc:  # of every keyset: a destroyed one has nothing to upgrade
                if keyset or exc.code != "keyset_destroyed":
                    raise
                print(f"keyset {name!r}: destroyed, nothing to upgrade")
    else:
        for info in store.describe(keyset):
            print(f"{info.key_id:<14} {info.kind:<10} {info.status:<12} {info.created_at}  {info.kms_key_id}")
    return 0


def allowed_kms_key_ids(args: argparse.Namespace) -> List[str]:
    """Every KMS key named on the command line is allowed; the key store refuses keysets sealed under others."""
    kms_key_id = getattr(args, "kms_key_id", None)
    return [*(getattr(args, "allowed_kms_key_id", None) or []), *([kms_key_id] if kms_key_id else [])]


def _print_promote_hint(args: argparse.Namespace, key_id: str) -> None:
    """The runbook's next step: every reader learns the new key within one TTL; then promote it."""
    command = ["pynamodb-stash", "keystore", "promote", "--table", args.table, "--keyset", args.keyset,
               "--key-id", key_id]
    for kms_key_id in args.allowed_kms_key_id or []:
        command += ["--allowed-kms-key-id", kms_key_id]
    for option, value in (("--endpoint", args.endpoint), ("--kms-endpoint", args.kms_endpoint),
                          ("--region", args.region)):
        if value:
            command += [option, value]
    print(
        "every process reads it within one TTL of its keyring (ttl_seconds, 300 s by default); "
        "after that, make it the active key:\n  " + " ".join(shlex.quote(part) for part in command)
    )


def confirm_destruction(args: argparse.Namespace) -> bool:
    """``--yes``, or the keyset's name typed on the terminal. ``_cli`` refuses a non-terminal without
    ``--yes`` before any request."""
    if args.yes:
        return True
    print(
        f"This destroys keyset {args.keyset!r} of key store {args.table!r}: its keys are deleted, and the values "
        "under them can no longer be read" + (", in backups too once AWS KMS deletes its KMS key"
                                            if args.schedule_kms_key_deletion else "") + ".",
        file=sys.stderr,
    )
    print("Type the keyset's name to confirm: ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.rstrip("\r\n") == str(args.keyset)


# -- models ------------------------------------------------------------------------------------------------


def load_model(args: argparse.Namespace, *, table: bool) -> Tuple[Any, Optional[Dict[str, Any]]]:
    """``MODULE:Model``, bound to ``--endpoint``/``--region`` when given, and with ``table``, the table's
    description (DescribeTable: it exists, and its approximate item count). Without ``table``, no
    request is made. One-line errors naming what is wrong, without values."""
    from pynamodb.exceptions import TableDoesNotExist

    from ._model import EncryptedModel

    module_name, _, class_name = args.model.partition(":")
    module = _import(module_name)
    model = getattr(module, class_name, None)
    if model is None and not hasattr(module, class_name):
        found = sorted(name for name, value in vars(module).items()
                       if isinstance(value, type) and issubclass(value, EncryptedModel) and value is not EncryptedModel)
        raise CommandError(
            f"module {module_name} has no attribute {class_name!r}"
            + (f" (its EncryptedModel classes: {', '.join(found)})" if found else "")
        )
    if not (isinstance(model, type) and issubclass(model, EncryptedModel)):
        from pynamodb.models import Model

        plain = isinstance(model, type) and issubclass(model, Model)
        kind = "a PynamoDB Model" if plain else f"a {type(model).__name__}"
        raise CommandError(f"{args.model} is not an EncryptedModel (it is {kind})")
    if args.endpoint:
        model.Meta.host = args.endpoint
    if args.region:
        model.Meta.region = args.region
    if args.endpoint or args.region:
        _pynamodb.reset_connection(model)
    args.where = lambda: _where(model)
    if not table:
        return model, None
    try:
        description: Dict[str, Any] = _pynamodb.connection(model).describe_table()
    except TableDoesNotExist:
        raise CommandError(
            f"table {model.Meta.table_name!r} does not exist at {_where(model)}: check the table name, "
            "--endpoint and --region"
        ) from None
    return model, description


def _where(model: Any) -> str:
    """The endpoint and region a model's requests go to (names and URLs, nothing secret)."""
    try:
        meta = _pynamodb.base_connection(model).client.meta
        return f"{meta.endpoint_url} (region {meta.region_name})"
    except Exception:  # no client could be made: say what the model names
        host = getattr(model.Meta, "host", None) or "AWS"
        return f"{host} (region {getattr(model.Meta, 'region', None) or 'default'})"


def _import(module_name: str) -> Any:
    """The user's module, or a one-line error: the library's own message for its errors, and for any
    other the exception's type, file and line, never its text (it may quote source or values)."""
    sys.path.insert(0, os.getcwd())  # as `python -m` does: run from the project's directory
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise CommandError(
                f"cannot import {module_name}: no module named {exc.name!r} (run from the directory that "
                "holds it, or add that directory to PYTHONPATH)"
            ) from None
        raise CommandError(
            f"cannot import {module_name}: ModuleNotFoundError at {_location(exc)}: no module named {exc.name!r}"
        ) from None
    except StashError as exc:
        raise CommandError(f"cannot import {module_name}: {exc.code} at {_location(exc)}: {exc}") from None
    except SyntaxError as exc:
        raise CommandError(
            f"cannot import {module_name}: {type(exc).__name__} at {exc.filename}, line {exc.lineno} "
            f"(`python -c 'import {module_name}'` shows it)"
        ) from None
    except Exception as exc:  # the user's module may fail in any way
        raise CommandError(
            f"cannot import {module_name}: {type(exc).__name__} at {_location(exc)} "
            f"(`python -c 'import {module_name}'` shows it)"
        ) from None


def _location(exc: BaseException) -> str:
    """``file, line N`` of the innermost frame of the user's code in the traceback: not the import
    machinery, not this library, not PynamoDB."""
    import pynamodb

    ours = (os.path.dirname(__file__) + os.sep, os.path.dirname(pynamodb.__file__) + os.sep)
    frames = [
        frame for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<") and "importlib" not in frame.filename
        and not frame.filename.startswith(ours)
    ]
    if not frames:
        return "an unknown place"
    return f"{frames[-1].filename}, line {frames[-1].lineno}"


def _keyring_ids(model: Any) -> Optional[Tuple[str, ...]]:
    """The key ids of the model's keyring, for the note on foreign keys; None when it has none or one
    per tenant."""
    if isinstance(getattr(model.Meta, "keyring", None), TenantKeyrings):
        return None
    try:
        return tuple(model._stash_keyring().key_ids)
    except StashError:
        return None


def keyring_line(model: Any, *, may_read: bool) -> str:
    """The model's keyring by key ids. Without ``may_read``, only a keyring at hand is described: a key
    store is not read (status without --scan makes no request)."""
    from . import _keyring

    source = getattr(model.Meta, "keyring", None)
    if source is None:
        source = _keyring._configured
    local = source is None or isinstance(source, Keyring) or (
        type(source).__module__ == _keyring.__name__ and not isinstance(source, TenantKeyrings)
    )
    if isinstance(source, TenantKeyrings):
        return f"keyring: one per tenant ({source!r})"
    if not local and not may_read:
        return f"keyring: {source!r} (not read: status reads no key store; status --scan does)"
    try:
        keyring = model._stash_keyring()
    except StashError as exc:
        return f"keyring: none usable: {exc.code}: {exc}"
    others = [key for key in keyring.key_ids if key != keyring.primary_key_id]
    return (
        f"keyring: primary {keyring.primary_key_id}; decrypt-only: {', '.join(others) or 'none'}; "
        f"index key {keyring.index_key_id}"
    )


# -- status, hmac and the scans ---------------------------------------------------------------------------


def status(args: argparse.Namespace) -> int:
    from . import operations

    model, description = load_model(args, table=args.scan)
    print_table(operations.status(model), sys.stdout)
    print(keyring_line(model, may_read=args.scan))
    if not args.scan:
        return 0
    return _scan(args, model, description, operations.verify, {})


def scan_command(args: argparse.Namespace) -> int:
    from . import operations

    model, description = load_model(args, table=True)
    run = {"verify": operations.verify, "encrypt-existing": operations.encrypt_existing, "rotate": operations.rotate}
    options: Dict[str, Any] = {"segments": args.segments, "page_size": args.page_size}
    if args.command != "verify":
        options.update(
            segment=args.segment, total_segments=args.total_segments, checkpoint=args.checkpoint,
            max_write_rate=args.max_write_rate, dry_run=args.dry_run,
        )
    if args.command == "rotate":
        options["rehash"] = args.rehash
    if args.command == "encrypt-existing":
        options["trust_suspicious"] = args.trust_suspicious_plaintext
    return _scan(args, model, description, run[args.command], options)


def _scan(args: argparse.Namespace, model: Any, description: Optional[Dict[str, Any]],
          run: Callable[..., Any], options: Dict[str, Any]) -> int:
    expected = (description or {}).get("ItemCount")
    if expected and getattr(args, "total_segments", None):
        expected = max(1, expected // args.total_segments)
    with Progress(sys.stderr, expected=expected) as progress:
        report = run(model, progress=progress.update, **options)
    print_report(report, sys.stdout, keyring_ids=_keyring_ids(model))
    return 0 if report.ok else 1


def hmac(args: argparse.Namespace) -> int:
    from . import operations

    model, _ = load_model(args, table=False)
    wanted = args.attribute.replace("[]", "")
    fields = list(operations.encrypted_fields(model))
    target = next((f for f in fields if wanted in (f.path.replace("[]", ""), f.stored.replace("[]", ""))), None)
    if target is None:
        with_hmac = [f.path for f in fields if f.field.equality]
        raise CommandError(
            f"{model.__name__} has no encrypted attribute {args.attribute!r}"
            + (f" (those with an HMAC: {', '.join(with_hmac)})" if with_hmac else "")
        )
    if not target.field.equality:
        raise CommandError(f"{model.__name__}.{target.path} has no HMAC: it is not declared with equality=True")
    text = sys.stdin.read() if args.value == "-" else args.value
    if args.value == "-" and text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    value = parse_value(text, args.type, target.field)
    with tenant(args.tenant) if args.tenant else contextlib.nullcontext():
        if target.in_list:  # PynamoDB makes list elements afresh, without their model: hash by the stored path
            digest = model._stash_runtime().by_path[target.stored].digest(value)
        else:
            bound: Any = model
            for part in target.path.split("."):
                bound = getattr(bound, part)
            digest = bound.hmac(value)
    print(digest)
    return 0


# -- values on the command line ---------------------------------------------------------------------------


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError


def _parse_datetime(text: str) -> datetime:
    text = text.strip()
    value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    if value.tzinfo is None:
        raise ValueError
    return value


def _parse_decimal(text: str) -> Decimal:
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ValueError from None


def _parse_json(text: str) -> Any:
    return json.loads(text)


# name: (parser, what a valid value looks like)
VALUE_TYPES: Dict[str, Tuple[Callable[[str], Any], str]] = {
    "str": (str, "text"),
    "int": (lambda text: int(text.strip()), "an integer, e.g. 42"),
    "decimal": (_parse_decimal, "a decimal number, e.g. 12.50"),
    "float": (lambda text: float(text.strip()), "a number, e.g. 0.5"),
    "bool": (_parse_bool, "true or false"),
    "date": (lambda text: date.fromisoformat(text.strip()), "an ISO date, YYYY-MM-DD"),
    "datetime": (_parse_datetime, "an ISO date and time with its offset, e.g. 2026-01-31T09:30:00+00:00"),
    "bytes-hex": (lambda text: bytes.fromhex(text.strip()), "hexadecimal digits"),
    "json": (_parse_json, "JSON"),
}
_DEFAULT_TYPES: Dict[Any, str] = {
    str: "str", int: "int", Decimal: "decimal", float: "float", bool: "bool", date: "date", datetime: "datetime",
    bytes: "bytes-hex", dict: "json", list: "json", set: "json",
}


def parse_value(text: str, type_name: Optional[str], field: Any) -> Any:
    """``text`` as a value of ``type_name``, or of the field's declared type. A failure names the type,
    never the text."""
    from pynamodb.attributes import Attribute

    declared = field.type_
    if type_name is None and isinstance(declared, Attribute):
        if declared.attr_type not in ("S", "N"):
            raise CommandError(
                f"the attribute is declared as a {type(declared).__name__}: give the value's type with --type"
            )
        try:
            return declared.deserialize(text)
        except Exception:  # PynamoDB's errors may quote the value
            raise CommandError(f"the value is not a valid {type(declared).__name__} value") from None
    name = type_name or _DEFAULT_TYPES.get(declared)
    if name is None:
        raise CommandError("give the value's type with --type")
    parse, expected = VALUE_TYPES[name]
    try:
        value = parse(text)
    except (ValueError, TypeError, OverflowError):  # their messages quote the text
        raise CommandError(f"the value is not a valid {name}: expected {expected}") from None
    if declared is set and isinstance(value, list):
        value = set(value)
    return value

