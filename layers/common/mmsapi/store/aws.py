"""AWS clients, created once per process from one botocore session, reused across
invocations.

botocore clients, not boto3: importing boto3 costs a cold start its resource and docs
machinery, which no client uses. Only S3's client comes from boto3 (and boto3 is
imported when it is first needed), for its managed transfers (upload_fileobj,
download_file). The endpoint comes from botocore's own AWS_ENDPOINT_URL handling, which
is how the local runtime points everything at its embedded AWS.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.session
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


_SESSION_OPTIONS = frozenset(
    {"region_name", "aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
)
# Sessions are not thread-safe (a save's fetch threads may ask for clients at once).
_making = threading.RLock()


def use(*, endpoint_url: str = "", **session_options: str) -> None:
    """Make every client from now on use this endpoint and these session options
    (region_name, aws_access_key_id, aws_secret_access_key, aws_session_token)."""
    unknown = set(session_options) - _SESSION_OPTIONS
    if unknown:
        raise TypeError(f"unknown session options: {sorted(unknown)}")
    with _making:
        _session_options.clear()
        _session_options.update(session_options)
        _endpoint.clear()
        _endpoint.update({"endpoint_url": endpoint_url} if endpoint_url else {})
        _clients.clear()
        _session.cache_clear()


@cache
def _session() -> botocore.session.Session:
    """One session for every client: each new session registers botocore's handlers
    again (tens of ms of a cold start per service)."""
    session = botocore.session.get_session()
    given = _session_options
    if "aws_access_key_id" in given:
        session.set_credentials(
            given["aws_access_key_id"],
            given.get("aws_secret_access_key", ""),
            given.get("aws_session_token"),
        )
    if "region_name" in given:
        session.set_config_variable("region", given["region_name"])
    return session


_clients: dict[str, Any] = {}


def _client(service: str) -> Any:
    """The process's one client for `service` (threads asking at once wait for it)."""
    client = _clients.get(service)
    if client is None:
        with _making:
            client = _clients.get(service) or _new_client(service)
            _clients[service] = client
    return client


def _new_client(service: str) -> Any:
    endpoint_url = _endpoint.get("endpoint_url")
    if service == "s3":
        import boto3  # its S3 client has the managed transfers

        s3 = boto3.session.Session(botocore_session=_session())
        return s3.client("s3", config=_S3_CONFIG, endpoint_url=endpoint_url)
    return _session().create_client(service, config=_CONFIG, endpoint_url=endpoint_url)


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
