"""The hosted page behind a fallback SMS link: the MMS of one send, slide by slide.

A link is `<base>/v/<send-id>.<secret>`: the secret is random per send and
compared in constant time, and the link expires after settings.view_link_days.
Media is served through short-lived presigned S3 URLs, never through the page.

The same route serves the download links of received MMS (`/v/mo.<...>`,
services/mo_links.py): a redirect to the part's presigned URL.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from typing import Final

from mmsapi.media.types import OBJECT_KINDS, MediaKind
from mmsapi.models import Send, StoredMedia, Template, TemplateStatus, utcnow
from mmsapi.numbers import ascii_int
from mmsapi.observability import logger, send_ids, tag
from mmsapi.services import mo_links
from mmsapi.services.context import Context
from mmsapi.services.personalize import subject_for, texts_for
from mmsapi.settings import get_settings

OBJECT_LABELS: Final = {
    MediaKind.VCARD: "Save contact",
    MediaKind.ICAL: "Add to calendar",
    MediaKind.PDF: "Open PDF",
    MediaKind.PASSBOOK: "Add to Wallet",
}

STYLE: Final = """
:root { color-scheme: light dark; }
body { margin: 0; font: 17px/1.45 -apple-system, system-ui, "Segoe UI", Roboto, sans-serif;
       background: #f2f2f7; color: #1c1c1e; }
@media (prefers-color-scheme: dark) { body { background: #000; color: #f2f2f7; }
  .slide { background: #1c1c1e; } }
main { max-width: 560px; margin: 0 auto; padding: 12px; }
h1 { font-size: 1.2em; margin: 8px 4px 12px; }
.slide { background: #fff; border-radius: 14px; padding: 12px; margin-bottom: 12px; }
.slide img, .slide video { display: block; width: 100%; height: auto; border-radius: 10px; }
.slide audio { width: 100%; margin-top: 8px; }
.slide p { margin: 10px 2px 2px; white-space: pre-wrap; overflow-wrap: anywhere; }
.object { display: inline-block; margin-top: 10px; padding: 10px 16px; border-radius: 10px;
          background: #0a84ff; color: #fff; text-decoration: none; font-weight: 600; }
"""


@dataclass(frozen=True)
class Page:
    status: int
    html: str
    location: str = ""  # a redirect's target (an MO file link)


def view_link(send: Send) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/v/{send.send_id}.{send.view_secret}"


def _message(status: int, title: str, text: str) -> Page:
    body = f"<h1>{escape(title)}</h1><div class='slide'><p>{escape(text)}</p></div>"
    return Page(status, _document(title, body))


def _document(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta name='robots' content='noindex'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _find_send(ctx: Context, token: str) -> Send | None:
    number, _, secret = token.partition(".")
    # Send ids are positive 64-bit integers in ASCII digits: anything else is no send.
    send_id = ascii_int(number, 1, 2**63 - 1)
    if send_id is None or not secret or not secret.isascii() or len(token) > 100:
        return None
    send = ctx.sends.get(send_id)
    # Bytes: compare_digest raises TypeError on non-ASCII str.
    if send is None or not hmac.compare_digest(send.view_secret.encode(), secret.encode()):
        return None
    return send


def _media_html(ctx: Context, media: StoredMedia, slide: int) -> str:
    seconds = get_settings().view_media_url_seconds
    key = media.rendition_key or media.original_key
    if media.kind in OBJECT_KINDS:
        name = f"slide{slide}-{media.kind.value}.{key.rsplit('.', 1)[-1]}"
        url = escape(ctx.media.presigned_url(key, seconds, download_name=name))
        return f"<a class='object' href='{url}' download>{OBJECT_LABELS[media.kind]}</a>"
    if media.kind is MediaKind.VIDEO and media.renditions:
        # MP4 plays in every mobile browser; 3GP is for handsets.
        key = next((r.key for r in media.renditions if r.content_type == "video/mp4"), key)
    url = escape(ctx.media.presigned_url(key, seconds))
    if media.kind is MediaKind.IMAGE:
        return f"<img src='{url}' alt='Picture of slide {slide}'>"
    if media.kind is MediaKind.VIDEO:
        return f"<video src='{url}' controls playsinline preload='metadata'></video>"
    if media.kind is MediaKind.AUDIO:
        return f"<audio src='{url}' controls preload='metadata'></audio>"
    return ""


def _slides_html(ctx: Context, template: Template, send: Send) -> str:
    parts = []
    for number, (slide, text) in enumerate(
        zip(template.slides, texts_for(template, send), strict=True), start=1
    ):
        order = (MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.AUDIO, *OBJECT_KINDS)
        media = sorted(slide.media, key=lambda m: order.index(m.kind) if m.kind in order else 9)
        inner = "".join(_media_html(ctx, m, number) for m in media)
        if text:
            inner += f"<p>{escape(text)}</p>"
        parts.append(f"<section class='slide' id='slide-{number}'>{inner}</section>")
    return "".join(parts)


def render_view(ctx: Context, token: str) -> Page:
    if token.startswith(mo_links.TOKEN_PREFIX):
        found = mo_links.download(ctx, token)
        logger.info("MO file link", extra={"status": found.status})
        if found.status == 302:
            return Page(302, "", found.location)
        if found.status == 410:
            return _message(410, "File expired", "This file is no longer available.")
        return _message(404, "File not found", "This link is not valid.")
    send = _find_send(ctx, token)
    if send is not None:
        tag(**send_ids(send))
    logger.info("view page", extra={"found": send is not None})
    if send is None:
        return _message(404, "Message not found", "This link is not valid.")
    if utcnow() - send.created_at > timedelta(days=get_settings().view_link_days):
        return _message(410, "Message expired", "This message is no longer available.")
    template = ctx.templates.get(send.mms_id)
    if template is None or template.status is not TemplateStatus.READY:
        return _message(410, "Message removed", "This message is no longer available.")
    title = subject_for(template, send) or "Your message"
    body = f"<h1>{escape(title)}</h1>{_slides_html(ctx, template, send)}"
    return Page(200, _document(title, body))
