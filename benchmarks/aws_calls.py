"""Counting the AWS API calls a piece of code makes (botocore's one entry point)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient


def by_operation(client: BaseClient, operation: str, params: Any) -> Iterable[str]:
    """`service.Operation`, e.g. dynamodb.PutItem."""
    return [f"{client.meta.service_model.service_name}.{operation}"]


def by_table(client: BaseClient, operation: str, params: Any) -> Iterable[str]:
    """The DynamoDB tables a call touches (a transaction once per table it writes)."""
    tables = {params.get("TableName", "")} | {
        next(iter(item.values()))["TableName"] for item in params.get("TransactItems", [])
    }
    return tables - {""}


@contextmanager
def counting(
    by: Callable[[BaseClient, str, Any], Iterable[str]] = by_operation,
) -> Iterator[Counter[str]]:
    calls: Counter[str] = Counter()
    # botocore-stubs do not declare this private method; it is botocore's one call path.
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009

    def counted(self: BaseClient, operation: str, params: Any) -> Any:
        calls.update(by(self, operation, params))
        return original(self, operation, params)

    setattr(BaseClient, "_make_api_call", counted)  # noqa: B010
    try:
        yield calls
    finally:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010
