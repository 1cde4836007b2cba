"""``pynamodb-stash demo``: the quickstart, run against an embedded or given DynamoDB.

It prints what the application sees beside what DynamoDB stores. Stored values are described by type
and size only: the demo's output, like every output of this library, shows no ciphertext or HMAC.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from typing import Any, Callable, Dict, Iterator, Optional, TextIO

from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from . import _pynamodb
from ._attributes import EncryptedAttribute, HmacAttribute
from ._keyring import Keyring
from ._model import EncryptedModel

_USERS = [
    ("user#1", "alice@example.com", "Alice Liddell", "admin"),
    ("user#2", "bob@example.com", "Bob Marley", "member"),
    ("user#3", "carol@example.com", "Carol Danvers", "member"),
]


@contextlib.contextmanager
def embedded_dynamodb() -> Iterator[str]:
    """An in-process DynamoDB (moto's server) on a free loopback port; yields its URL.

    :raises SystemExit: naming the ``[local]`` extra if moto is not installed.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise SystemExit(
            "the embedded DynamoDB needs the [local] extra: pip install 'pynamodb-stash[local]' "
            "(or pass --endpoint URL)"
        ) from None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _models(endpoint: str, region: str, keyring: Keyring, table_name: str) -> Any:
    class EmailIndex(GlobalSecondaryIndex["User"]):  # type: ignore[no-untyped-call]
        class Meta:
            index_name = "EmailIndex"
            projection = AllProjection()

        email = HmacAttribute(hash_key=True)

    class User(EncryptedModel):
        class Meta:
            pass

        pk = UnicodeAttribute(hash_key=True)
        email = EncryptedAttribute(str, equality=True)
        name = EncryptedAttribute(str)
        role = UnicodeAttribute()
        email_index = EmailIndex()

    User.Meta.table_name = table_name  # type: ignore[attr-defined]
    User.Meta.host = endpoint  # type: ignore[attr-defined]
    User.Meta.region = region  # type: ignore[attr-defined]
    User.Meta.keyring = keyring  # type: ignore[attr-defined]
    User.Meta.billing_mode = "PAY_PER_REQUEST"  # type: ignore[attr-defined]
    return User


def _describe_stored(value: Dict[str, Any]) -> str:
    (kind, data), = value.items()
    if kind == "B":
        return f"B, {len(data)} bytes of ciphertext"
    return f"{kind}, {len(data)} characters"


def run_demo(endpoint: str, *, region: str = "us-east-1", out: Optional[TextIO] = None) -> None:
    """Save users, read them back, look one up by email through a GSI on the HMAC, update one.

    Uses the keyring in ``$PYNAMODB_STASH_KEYRING`` if set, else a fresh one that lives only in this
    process. Creates and finally deletes its own table.
    """
    say: Callable[[str], None] = lambda line: print(line, file=out)  # noqa: E731
    keyring = Keyring.from_env() if os.environ.get("PYNAMODB_STASH_KEYRING") else Keyring.generate()
    keyring.primary_key_id  # noqa: B018 - read (and check) the environment's keyring now, not at the first save
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(variable, "demo")  # a local endpoint accepts any credentials
    User = _models(endpoint, region, keyring, f"stash-demo-{uuid.uuid4().hex[:8]}")
    say(f"DynamoDB at {endpoint}, table {User.Meta.table_name}, keyring {keyring!r}")
    User.create_table(wait=True)
    try:
        say("\n1. save: the application hands PynamoDB plaintext")
        for pk, email, name, role in _USERS:
            User(pk=pk, email=email, name=name, role=role).save()
            say(f"   saved {pk}")

        say("\n2. what the application sees, and what DynamoDB stores")
        for pk, email, _, _ in _USERS:
            user = User.get(pk)
            raw = _pynamodb.connection(User).get_item(pk)["Item"]
            say(f"   {pk}")
            say(f"     application: email={user.email!r} name={user.name!r} role={user.role!r}")
            for stored_name in sorted(raw):
                say(f"     stored: {stored_name:<15} {_describe_stored(raw[stored_name])}")
            leaked = any(email.encode() in repr(value).encode() for value in raw.values())
            say(f"     plaintext email found in the stored item: {'YES' if leaked else 'no'}")
            if leaked:
                raise SystemExit("the stored item contains plaintext")

        say("\n3. look a user up by email: plaintext in, HMAC on the wire (GSI on email__hmac)")
        found = [user.pk for user in User.email_index.query("bob@example.com")]
        say(f"   User.email_index.query('bob@example.com') -> {found}")
        say(f"   User.scan(User.email == 'carol@example.com') -> "
            f"{[u.pk for u in User.scan(User.email == 'carol@example.com')]}")

        say("\n4. update: both email__source and email__hmac change together")
        bob = User.get("user#2")
        bob.update(actions=[User.email.set("robert@example.com"), User.role.set("admin")])
        old = [u.pk for u in User.email_index.query("bob@example.com")]
        new = [u.pk for u in User.email_index.query("robert@example.com")]
        say(f"   by old email -> {old}, by new email -> {new}, role -> {User.get('user#2').role!r}")
        if old or new != ["user#2"]:
            raise SystemExit("the index did not follow the update")
        say("\ndone: DynamoDB only ever saw ciphertext and HMACs.")
    finally:
        User.delete_table()
