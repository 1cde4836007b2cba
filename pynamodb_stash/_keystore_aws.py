"""The KMS key store's AWS calls: boto3 (the ``[kms]`` extra), and the key store table.

Every call goes through :meth:`AwsCalls.kms` or :meth:`AwsCalls.dynamodb`, which turn a boto3 failure
into :class:`~pynamodb_stash.KeyProviderError` naming only the AWS error code (or exception type), the
keyset and the KMS key, with the boto3 error chained. Nothing here knows the record format.
"""

from __future__ import annotations

from typing import Any, Dict, List, NoReturn, Optional

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as exc:  # pragma: no cover - exercised by a test that hides boto3
    raise ImportError(
        "pynamodb_stash.kms needs the [kms] extra: pip install 'pynamodb-stash[kms]'"
    ) from exc

from .exceptions import KeyProviderError

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})  # backs off on throttling


def default_client(service: str) -> Any:
    """``boto3.client(service)`` with retries on throttling."""
    return boto3.client(service, config=_RETRIES)


class AwsCalls:
    """The KMS client and the DynamoDB client of one key store table."""

    def __init__(self, table_name: str, kms_client: Any, dynamodb_client: Any) -> None:
        self.table_name = table_name
        self.kms_client = kms_client
        self.dynamodb_client = dynamodb_client

    # -- KMS -----------------------------------------------------------------------------------------

    def kms(self, operation: str, keyset: str, kms_key_id: str, **kwargs: Any) -> Dict[str, Any]:
        try:
            result: Dict[str, Any] = getattr(self.kms_client, operation)(**kwargs)
            return result
        except (ClientError, BotoCoreError) as exc:
            raise KeyProviderError(
                f"AWS KMS {operation} failed for keyset {keyset!r} with KMS key {kms_key_id!r}: {aws_error(exc)}",
                code="kms_error",
            ) from exc

    # -- DynamoDB ------------------------------------------------------------------------------------

    def dynamodb(self, operation: str, keyset: Optional[str], **kwargs: Any) -> Dict[str, Any]:
        try:
            result: Dict[str, Any] = getattr(self.dynamodb_client, operation)(**kwargs)
            return result
        except (ClientError, BotoCoreError) as exc:
            self._dynamodb_failed(operation, keyset, exc)

    def _dynamodb_failed(self, operation: str, keyset: Optional[str], exc: Exception) -> NoReturn:
        where = f" for keyset {keyset!r}" if keyset else ""
        raise KeyProviderError(
            f"key store {self.table_name!r}: DynamoDB {operation} failed{where}: {aws_error(exc)}",
            code="key_store_error",
        ) from exc

    def create_table(self, *, wait: bool) -> None:
        self.dynamodb(
            "create_table",
            None,
            TableName=self.table_name,
            AttributeDefinitions=[
                {"AttributeName": "keyset", "AttributeType": "S"},
                {"AttributeName": "key_id", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "keyset", "KeyType": "HASH"},
                {"AttributeName": "key_id", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        if wait:
            self.dynamodb_client.get_waiter("table_exists").wait(TableName=self.table_name)

    def get(self, keyset: str, key_id: str) -> Optional[Dict[str, Any]]:
        """One row, read consistently; None if there is none."""
        item: Optional[Dict[str, Any]] = self.dynamodb(
            "get_item", keyset, TableName=self.table_name, ConsistentRead=True,
            Key={"keyset": {"S": keyset}, "key_id": {"S": key_id}},
        ).get("Item")
        return item

    def rows(self, keyset: str, limit: Optional[int] = None) -> List[Dict[str, Any]]:
        """The keyset's rows (at least ``limit`` of them, if it has that many), read consistently."""
        rows: List[Dict[str, Any]] = []
        start: Optional[Dict[str, Any]] = None
        while True:
            page = self.dynamodb(
                "query", keyset, TableName=self.table_name, ConsistentRead=True,
                KeyConditionExpression="keyset = :k", ExpressionAttributeValues={":k": {"S": keyset}},
                **({"ExclusiveStartKey": start} if start else {}), **({"Limit": limit} if limit else {}),
            )
            rows.extend(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start or (limit and len(rows) >= limit):
                return rows

    def scan(self, **kwargs: Any) -> List[Dict[str, Any]]:
        """Every row of the table, read consistently (``kwargs`` go to each ``Scan``)."""
        items: List[Dict[str, Any]] = []
        start: Optional[Dict[str, Any]] = None
        while True:
            page = self.dynamodb(
                "scan", None, TableName=self.table_name, ConsistentRead=True,
                **kwargs, **({"ExclusiveStartKey": start} if start else {}),
            )
            items.extend(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def put(self, keyset: str, item: Dict[str, Any]) -> None:
        self.dynamodb("put_item", keyset, TableName=self.table_name, Item=item)

    def put_if(self, keyset: str, item: Dict[str, Any], condition: str, names: Dict[str, str],
               values: Dict[str, Any]) -> bool:
        """Put ``item`` if ``condition`` holds; False if it does not."""
        try:
            self.dynamodb_client.put_item(
                TableName=self.table_name, Item=item, ConditionExpression=condition,
                ExpressionAttributeNames=names, **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as exc:
            if aws_code(exc) == "ConditionalCheckFailedException":
                return False
            self._dynamodb_failed("put_item", keyset, exc)
        except BotoCoreError as exc:
            self._dynamodb_failed("put_item", keyset, exc)
        return True

    def delete_rows(self, keyset: str, key_ids: List[str]) -> None:
        for key_id in key_ids:
            self.dynamodb(
                "delete_item", keyset, TableName=self.table_name,
                Key={"keyset": {"S": keyset}, "key_id": {"S": key_id}},
            )


def aws_code(exc: Any) -> Optional[str]:
    """A ClientError's error code; None for anything else."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    return None


def aws_error(exc: Exception) -> str:
    """What may be said of an AWS call's failure: its error code (a ClientError's) or its exception type."""
    return aws_code(exc) or type(exc).__name__
