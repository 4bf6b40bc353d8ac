"""Download links of received MMS parts (N401's files), served by the hosted page's route.

A link is `<base>/v/mo.<account>.<mo-id>.<part>.<secret>` (the account id in unpadded
base64url): no AWS credentials in it. The secret is derived per message (so a resent
message keeps its links: services/inbound.link_secret); the parts keep only its
sha256 (store/inbox.py), compared in constant time. A link works for
LINK_DAYS after the message came; a valid one answers a redirect to a presigned URL
of the part that works for REDIRECT_SECONDS (the page's media are served the same way).

Kept apart from services/inbound.py so that ViewFunction does not import MM7.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Final

from mmsapi.numbers import ascii_digits
from mmsapi.services.context import Context
from mmsapi.store.inbox import InboxStore, mo_key

LINK_DAYS: Final = 7
REDIRECT_SECONDS: Final = 300
TOKEN_PREFIX: Final = "mo."  # noqa: S105 (a path prefix, not a secret)
MAX_TOKEN_CHARS: Final = 300


def _encode_account(account_id: str) -> str:
    return base64.urlsafe_b64encode(account_id.encode("utf-8")).decode("ascii").rstrip("=")


def file_link(base_url: str, account_id: str, mo_id: str, number: int, secret: str) -> str:
    token = f"{TOKEN_PREFIX}{_encode_account(account_id)}.{mo_id}.{number}.{secret}"
    return f"{base_url.rstrip('/')}/v/{token}"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Download:
    status: int  # 302 with a location, else 404 / 410
    location: str = ""


def download(ctx: Context, token: str) -> Download:
    """Where an MO file link leads: a short-lived presigned URL of the part, or 404/410."""
    parts = token.removeprefix(TOKEN_PREFIX).split(".")
    if len(token) > MAX_TOKEN_CHARS or len(parts) != 4:
        return Download(404)
    encoded, mo_id, number, secret = parts
    try:
        account_id = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError):
        return Download(404)
    if not (mo_id.isascii() and mo_id.isalnum() and ascii_digits(number) and secret.isascii()):
        return Download(404)
    if "/" in account_id or not account_id.isprintable():
        return Download(404)
    inbox = InboxStore(ctx.media.bucket)
    stored = inbox.link_of(mo_key(account_id, mo_id, int(number)))
    given = secret_hash(secret)
    if stored is None or not hmac.compare_digest(stored.link_hash, given):
        return Download(404)
    if stored.expires < time.time():
        return Download(410)
    return Download(302, inbox.presigned_url(stored.key, REDIRECT_SECONDS))
