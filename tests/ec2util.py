"""Small helpers for tests that drive the EC2 frontend with boto3."""

from __future__ import annotations

import uuid
from typing import Any

import pytest


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_of(excinfo: pytest.ExceptionInfo[Any]) -> tuple[str, int]:
    """(EC2 code, HTTP status) of a botocore ClientError."""
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]
