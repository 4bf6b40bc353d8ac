"""The price list of benchmarks/cost.py, and the arithmetic that turns counts into dollars.

One table (PRICES): AWS's public on-demand prices in US East (N. Virginia), each with
the page it was taken from and that page's date. There is no internet here: the pages
are the stored copies the project's `search` tool found (corpora "pages" and "docs");
a figure no stored page showed is AWS's long-published value, marked "as published
<month year>". No free tier is applied (a stack sending MMS at volume is past it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

PRICE_LIST: Final = "AWS public on-demand prices, US East (N. Virginia), no free tier"
PRICE_LIST_DATE: Final = "taken 2026-11-26 from pages dated May 2024 - June 2026 (each below)"


@dataclass(frozen=True)
class Price:
    service: str
    what: str
    usd: float  # per `per` units
    per: int
    unit: str
    source: str

    @property
    def each(self) -> float:
        """Dollars for one unit."""
        return self.usd / self.per

    def quoted(self) -> str:
        per = {1: "", 1000: "1K ", 10_000: "10K ", 100_000: "100K ", 1_000_000: "1M "}[self.per]
        return f"${self.usd:g} / {per}{self.unit}"


_LAMBDA = (
    "aws.amazon.com/lambda/pricing as quoted by cloudchipr.com/blog/aws-lambda-pricing "
    "(2024) and git.mcrn.ar/mariano/lambda_local_runner docs/lambdas-md/lambda-13-cost.md "
    "(2026-05-11)"
)
_DDB = (
    "aws.eu/dynamodb/pricing/on-demand (units); on-demand rates (after the Nov 2024 cut) "
    "quoted by airbyte.com/data-engineering-resources/dynamodb-pricing and linkedin.com "
    "'Amazon DynamoDB Pricing Explained' (2025)"
)
_LOGS = "c3x.dev/blog/cloudwatch-logs-cost-optimization ('us-east-1, June 2026')"

# Keys are what benchmarks/cost.py counts; one row per billed unit.
PRICES: Final[dict[str, Price]] = {
    "lambda.requests": Price("Lambda", "requests", 0.20, 1_000_000, "requests", _LAMBDA),
    "lambda.x86_64": Price("Lambda", "duration x86_64", 0.0000166667, 1, "GB-s", _LAMBDA),
    "lambda.arm64": Price("Lambda", "duration arm64", 0.0000133334, 1, "GB-s", _LAMBDA),
    "apigw.http": Price(
        "API Gateway",
        "HTTP API requests (per 512 KB)",
        1.00,
        1_000_000,
        "requests",
        "docs.aws.amazon.com/whitepapers/latest/best-practices-api-gateway-private-apis-"
        "integration/cost-optimization.html (Table 4, first 300M/month)",
    ),
    "dynamodb.wru": Price("DynamoDB", "write request units", 0.625, 1_000_000, "WRU", _DDB),
    "dynamodb.rru": Price("DynamoDB", "read request units", 0.125, 1_000_000, "RRU", _DDB),
    "dynamodb.storage": Price(
        "DynamoDB", "storage (Standard)", 0.25, 1, "GB-month", "as published Nov 2024"
    ),
    "dynamodb.pitr": Price("DynamoDB", "PITR backup", 0.20, 1, "GB-month", "as published Nov 2024"),
    "dynamodb.streams": Price(
        "DynamoDB",
        "stream read request units",
        0.02,
        100_000,
        "reads",
        "aws.eu/dynamodb/pricing/on-demand (free when Lambda triggers read them)",
    ),
    "s3.tier1": Price(
        "S3",
        "PUT/COPY/POST/LIST",
        0.005,
        1000,
        "requests",
        "c3x.dev/blog/s3-request-fees-explained (S3 Standard, 2026)",
    ),
    "s3.tier2": Price(
        "S3",
        "GET/HEAD",
        0.0004,
        1000,
        "requests",
        "c3x.dev/blog/s3-request-fees-explained (S3 Standard, 2026)",
    ),
    "s3.storage": Price(
        "S3", "storage (Standard)", 0.023, 1, "GB-month", "as published (first 50 TB), Nov 2024"
    ),
    "sqs.requests": Price(
        "SQS",
        "standard requests (per 64 KB)",
        0.40,
        1_000_000,
        "requests",
        "cloudburn.io/blog/amazon-sqs-pricing ('US East, March 2026')",
    ),
    "events.custom": Price(
        "EventBridge",
        "custom events (per 64 KB)",
        1.00,
        1_000_000,
        "events",
        "cloudburn.io/blog/amazon-eventbridge-pricing ('US East, March 2026')",
    ),
    "states.standard": Price(
        "Step Functions",
        "Standard state transitions",
        0.025,
        1000,
        "transitions",
        "aws.amazon.com/step-functions/pricing (US East $0.0250 per 1,000)",
    ),
    "states.express.requests": Price(
        "Step Functions",
        "Express requests",
        1.00,
        1_000_000,
        "requests",
        "wring.co/blog/aws-step-functions-pricing-guide (2026-03-14)",
    ),
    "states.express.gb_s": Price(
        "Step Functions",
        "Express duration (64 MB min)",
        0.00001667,
        1,
        "GB-s",
        "wring.co/blog/aws-step-functions-pricing-guide (2026-03-14)",
    ),
    "logs.ingest": Price("CloudWatch Logs", "ingestion (Standard)", 0.50, 1, "GB", _LOGS),
    "logs.ingest_ia": Price(
        "CloudWatch Logs", "ingestion (Infrequent Access)", 0.25, 1, "GB", _LOGS
    ),
    "logs.storage": Price("CloudWatch Logs", "storage", 0.03, 1, "GB-month", _LOGS),
    "metrics.custom": Price(
        "CloudWatch",
        "custom metrics (EMF), first 10K",
        0.30,
        1,
        "metric-month",
        "signoz.io/guides/cloudwatch-pricing (2026-02-15)",
    ),
    "alarms.standard": Price(
        "CloudWatch", "alarms (standard)", 0.10, 1, "alarm-month", "as published Nov 2024"
    ),
    "xray.traces": Price(
        "X-Ray",
        "traces recorded",
        5.00,
        1_000_000,
        "traces",
        "aws.amazon.com/de/xray/pricing ($0.000005 per trace)",
    ),
    "kms.requests": Price(
        "KMS",
        "symmetric requests",
        0.03,
        10_000,
        "requests",
        "wring.co/blog/aws-kms-pricing-guide; cloudburn.io/blog/aws-kms-pricing (March 2026)",
    ),
    "kms.keys": Price(
        "KMS",
        "customer managed keys",
        1.00,
        1,
        "key-month",
        "cloudburn.io/blog/aws-kms-pricing (March 2026)",
    ),
    "sns.publish": Price(
        "SNS", "publish requests (per 64 KB)", 0.50, 1_000_000, "requests", "as published Nov 2024"
    ),
    "transfer.out": Price(
        "Data transfer",
        "out to the internet (first 10 TB)",
        0.09,
        1,
        "GB",
        "egresscost.com/aws; leanopstech.com/blog/aws-data-transfer-pricing-2026 (2026-04-27)",
    ),
    # Printed apart: not AWS infrastructure, and not part of the goal.
    "sms.message": Price(
        "End User Messaging",
        "US outbound SMS part (10DLC/toll-free)",
        0.00581,
        1,
        "part",
        "as published Jun 2024",
    ),
    "sms.carrier": Price(
        "US carriers",
        "SMS carrier pass-through fee (10DLC, approx.)",
        0.00302,
        1,
        "part",
        "as published Jun 2024 (varies by carrier)",
    ),
}

GOAL_PER_1000: Final = 0.05  # dollars per 1,000 MMS, carrier and SMS fees excluded
GB: Final = 1024**3
SQS_CHUNK: Final = 64 * 1024
APIGW_CHUNK: Final = 512 * 1024


@dataclass(frozen=True)
class Usage:
    """A counted quantity of one price, over the whole run."""

    item: str  # what the table prints
    price: str  # key in PRICES
    quantity: float


@dataclass(frozen=True)
class Line:
    item: str
    price: Price
    per_1000: float  # quantity per 1,000 MMS
    cost: float  # dollars per 1,000 MMS


def chunks(size: int, chunk: int) -> int:
    """Billed units of a payload metered in `chunk`-byte increments (at least one)."""
    return max(1, math.ceil(size / chunk))


def gb_seconds(billed_ms: float, memory_mb: int) -> float:
    """Lambda's GB-s: billed milliseconds (1 ms granularity) at the configured memory."""
    return billed_ms / 1000 * memory_mb / 1024


def lines(usages: Iterable[Usage], sends: int) -> list[Line]:
    """Each usage per 1,000 MMS and its cost, the largest first."""
    scale = 1000 / sends
    found = [
        Line(u.item, PRICES[u.price], u.quantity * scale, u.quantity * scale * PRICES[u.price].each)
        for u in usages
    ]
    return sorted(found, key=lambda line: line.cost, reverse=True)


def total(found: Iterable[Line]) -> float:
    return sum(line.cost for line in found)
