"""Fixtures for the integration tests: boto3 clients on DynamoDB Local and moto's KMS."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from stashtest import REGION


@pytest.fixture(scope="module")
def kms(kms_url: str) -> Any:
    """A boto3 KMS client on moto's KMS (the real boto3 code path)."""
    return boto3.client("kms", endpoint_url=kms_url, region_name=REGION)


@pytest.fixture(scope="module")
def dynamodb(ddb_url: str) -> Any:
    """A boto3 DynamoDB client on DynamoDB Local, as a key store uses it."""
    return boto3.client("dynamodb", endpoint_url=ddb_url, region_name=REGION)
