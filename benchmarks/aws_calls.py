"""Counting the AWS API calls a piece of code makes (botocore's one entry point)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient


@contextmanager
def counting() -> Iterator[Counter[str]]:
    calls: Counter[str] = Counter()
    # botocore-stubs do not declare this private method; it is botocore's one call path.
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009

    def counted(self: BaseClient, operation: str, params: Any) -> Any:
        calls[f"{self.meta.service_model.service_name}.{operation}"] += 1
        return original(self, operation, params)

    setattr(BaseClient, "_make_api_call", counted)  # noqa: B010
    try:
        yield calls
    finally:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010
