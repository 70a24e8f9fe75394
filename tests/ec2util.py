"""Small helpers for tests that drive the EC2 frontend with boto3."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_of(excinfo: pytest.ExceptionInfo[Any]) -> tuple[str, int]:
    """(EC2 code, HTTP status) of a botocore ClientError."""
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def assert_pages_stable(
    describe: Callable[..., dict[str, Any]],
    list_key: str,
    id_key: str,
    filters: list[dict[str, Any]],
    create: Callable[[], str],
    first: int,
    later: int,
) -> set[str]:
    """Page with MaxResults=5 while ``later`` more are created after the first page.

    Nothing repeats, every resource there from the start is seen, nothing foreign shows up.
    Returns the ids of all the resources created.
    """
    before = {create() for _ in range(first)}
    page = describe(Filters=filters, MaxResults=5)
    seen = [item[id_key] for item in page[list_key]]
    assert len(seen) == 5 and page.get("NextToken")
    after = {create() for _ in range(later)}
    token = page["NextToken"]
    while token:
        page = describe(Filters=filters, MaxResults=5, NextToken=token)
        seen += [item[id_key] for item in page[list_key]]
        token = page.get("NextToken")
        assert len(seen) <= first + later
    assert len(seen) == len(set(seen))  # nothing repeated
    assert before <= set(seen) and set(seen) <= before | after  # nothing skipped, nothing foreign
    return before | after
