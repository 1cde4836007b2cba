"""DynamoDB stopping in the middle of a batch write or a backfill: a clear error, no half-written item,
and a second run that finishes. Runs its own DynamoDB Local, on disk, so that it can be killed and
started again with the data it had."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator, List

import boto3
import pytest
from conftest import _find_jar, _free_port, _is_ready
from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from pynamodb_stash import EncryptedAttribute, EncryptedModel, Keyring
from pynamodb_stash.operations import encrypt_existing

ITEMS = 200


class Server:
    def __init__(self, data: Path) -> None:
        self.jar = _find_jar()
        self.data = data
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["java", f"-Djava.library.path={self.jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(self.jar),
             "-sharedDb", "-disableTelemetry", "-dbPath", str(self.data), "-port", str(self.port)],
            cwd=self.jar.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not _is_ready(self.url):
            assert time.monotonic() < deadline and self.process.poll() is None, "DynamoDB Local did not start"
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    local = Server(tmp_path)
    local.start()
    yield local
    if local.process is not None and local.process.poll() is None:
        local.kill()


def models(url: str) -> tuple[Any, Any]:
    keyring = Keyring.generate()

    class Card(EncryptedModel):
        class Meta:
            table_name = "cards"
            host = url
            region = "us-east-1"
            max_retry_attempts = 1
            connect_timeout_seconds = 1
            plaintext_policy = "read_plaintext"

        pk = UnicodeAttribute(hash_key=True)
        number = EncryptedAttribute(str, equality=True)

    class LegacyCard(Model):
        class Meta:
            table_name = "cards"
            host = url
            region = "us-east-1"

        pk = UnicodeAttribute(hash_key=True)
        number = UnicodeAttribute()

    Card.Meta.keyring = keyring  # type: ignore[attr-defined]
    return Card, LegacyCard


def stored_items(url: str) -> List[dict[str, Any]]:
    client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    return list(client.get_paginator("scan").paginate(TableName="cards").search("Items"))


def assert_whole(items: List[dict[str, Any]]) -> None:
    for item in items:
        assert "number" not in item  # never in plaintext
        assert ("number__source" in item) == ("number__hmac" in item)  # never a source without its HMAC


def test_dynamodb_stopping_in_a_batch_write(server: Server) -> None:
    Card, _ = models(server.url)
    Card.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    written = 0
    with pytest.raises(PynamoDBException):
        batch = Card.batch_write()
        for i in range(ITEMS):
            batch.save(Card(pk=f"c{i:03d}", number=f"4111-0000-{i:04d}"))
            written += 1
            if written == 100:
                batch.commit()  # the first 100 are in
                server.kill()
        batch.commit()
    server.start()
    survivors = stored_items(server.url)
    assert_whole(survivors)
    assert 0 < len(survivors) < ITEMS

    with Card.batch_write() as batch:  # run again: it finishes
        for i in range(ITEMS):
            batch.save(Card(pk=f"c{i:03d}", number=f"4111-0000-{i:04d}"))
    assert_whole(stored_items(server.url))
    assert sorted(c.number for c in Card.scan()) == [f"4111-0000-{i:04d}" for i in range(ITEMS)]


def test_dynamodb_stopping_in_a_backfill(server: Server, tmp_path: Path) -> None:
    Card, LegacyCard = models(server.url)
    LegacyCard.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    with LegacyCard.batch_write() as batch:
        for i in range(ITEMS):
            batch.save(LegacyCard(pk=f"c{i:03d}", number=f"4111-0000-{i:04d}"))
    checkpoint = tmp_path / "backfill.json"

    def stop_midway(report: Any) -> None:
        if report.scanned >= 60 and server.process is not None and server.process.poll() is None:
            server.kill()

    with pytest.raises(PynamoDBException):
        encrypt_existing(Card, checkpoint=str(checkpoint), page_size=20, progress=stop_midway)
    server.start()
    items = stored_items(server.url)
    for item in items:  # each item is either still plaintext or fully encrypted
        assert ("number" in item) != ("number__source" in item and "number__hmac" in item)
    assert 0 < sum("number__source" in item for item in items) < ITEMS

    report = encrypt_existing(Card, checkpoint=str(checkpoint), page_size=20)
    assert report.ok
    assert_whole(stored_items(server.url))
    assert sorted(c.number for c in Card.scan()) == [f"4111-0000-{i:04d}" for i in range(ITEMS)]
