"""boto3 clients, created once per process and reused across invocations.

The endpoint comes from boto3's own AWS_ENDPOINT_URL handling, which is how the
local runtime points everything at its embedded AWS.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_pinpoint_sms_voice_v2 import PinpointSMSVoiceV2Client
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

_CONFIG = Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"max_attempts": 4, "mode": "standard"},
    tcp_keepalive=True,
)


# Presigned URLs must be SigV4: SigV2 is refused for KMS-encrypted objects and new regions.
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4"))


# Set by a tool that talks to another AWS than its environment names (mmsapi-admin: a
# stack's region, or the local runtime's embedded AWS); empty on Lambda.
_session_options: dict[str, str] = {}
_endpoint: dict[str, str] = {}


def use(*, endpoint_url: str = "", **session_options: str) -> None:
    """Make every client from now on use this endpoint and these Session options
    (region_name, aws_access_key_id, ...)."""
    _session_options.clear()
    _session_options.update(session_options)
    _endpoint.clear()
    _endpoint.update({"endpoint_url": endpoint_url} if endpoint_url else {})
    _client.cache_clear()


@cache
def _client(service: str) -> Any:
    config = _S3_CONFIG if service == "s3" else _CONFIG
    session = boto3.session.Session(**_session_options)  # type: ignore[arg-type]
    return session.client(service, config=config, **_endpoint)  # type: ignore[call-overload]


def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb")
    return client


def s3() -> S3Client:
    client: S3Client = _client("s3")
    return client


def events() -> EventBridgeClient:
    client: EventBridgeClient = _client("events")
    return client


def sqs() -> SQSClient:
    client: SQSClient = _client("sqs")
    return client


def stepfunctions() -> SFNClient:
    client: SFNClient = _client("stepfunctions")
    return client


def sms() -> PinpointSMSVoiceV2Client:
    client: PinpointSMSVoiceV2Client = _client("pinpoint-sms-voice-v2")
    return client


def reset() -> None:
    """Forget every client and `use` (tests that start a fresh emulated AWS call this)."""
    use()
