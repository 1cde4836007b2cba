"""Smoke test: the DynamoDB Local fixture serves a working DynamoDB API."""

from __future__ import annotations

import boto3


def test_put_get_round_trip(ddb_url: str, table_name: str) -> None:
    client = boto3.client("dynamodb", endpoint_url=ddb_url, region_name="us-east-1")
    client.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        item = {"pk": {"S": "key-1"}, "value": {"B": b"\x00secret\xff"}, "n": {"N": "42"}}
        client.put_item(TableName=table_name, Item=item)
        got = client.get_item(TableName=table_name, Key={"pk": {"S": "key-1"}}, ConsistentRead=True)
        assert got["Item"] == item
    finally:
        client.delete_table(TableName=table_name)
