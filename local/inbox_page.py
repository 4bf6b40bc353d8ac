"""The local inbox's HTML: plain server-rendered pages, every shown value escaped.

What is shown comes from templates, phones and postbacks (hostile content: a
subject `<script>`, a text with quotes): each value goes through `esc` (text and
attributes alike), URLs are built from ids this module checks, and the page's
Content-Security-Policy (local/inbox.py) allows no inline script.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from local.inbox_store import Item, ReceivedMms, ReceivedPostback

PREFIX: Final = "/_inbox"
# Types a browser shows inline without running anything (never SVG, HTML or XML).
INLINE_IMAGES: Final = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"}
)
_LINK: Final = re.compile(r"https?://[^\s<>\"']{1,2000}")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def trace_href(tracking: str) -> str:
    """The timeline's URL: a tracking-id is base64, its "/" and "+" escaped."""
    return esc(f"{PREFIX}/trace/{quote(tracking, safe='')}")


def linked(text: str, *, xml: bool = False) -> str:
    """Escaped text whose http(s) URLs are links (the fallback SMS's hosted page, an
    N401's files); `xml`: the text is XML, whose URLs are XML-escaped."""
    out: list[str] = []
    position = 0
    for found in _LINK.finditer(text):
        out.append(esc(text[position : found.start()]))
        url = html.unescape(found.group(0)) if xml else found.group(0)
        out.append(f'<a href="{esc(url)}" rel="noreferrer noopener" target="_blank">{esc(url)}</a>')
        position = found.end()
    out.append(esc(text[position:]))
    return "".join(out)


def page(title: str, body: str, *, refresh_hint: bool = True) -> bytes:
    nav = (
        f'<nav><a href="{PREFIX}/">Phones</a> <a href="{PREFIX}/postbacks">Postbacks</a>'
        f' <a href="{PREFIX}/phone">Send from a phone</a>'
        + (' <label><input type="checkbox" id="auto-refresh"> refresh every 3 s</label>'
           if refresh_hint else "")
        + "</nav>"
    )  # fmt: skip
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        f'<link rel="stylesheet" href="{PREFIX}/static/inbox.css">'
        f'<script src="{PREFIX}/static/inbox.js" defer></script></head>'
        f"<body><header><h1>{esc(title)}</h1>{nav}</header><main>{body}</main></body></html>\n"
    ).encode()


# ---------------------------------------------------------------- MMS and SMS per phone


def _item(mms: ReceivedMms, item: Item) -> str:
    base = f"{PREFIX}/mms/{quote(mms.message_id, safe='')}"  # its own path segment
    kind = item.kind
    if kind == "text":
        return f'<p class="text">{linked(item.text or "")}</p>'
    if kind == "image" and media_type(item.content_type) in INLINE_IMAGES:
        return (
            f'<img src="{base}/part/{item.index}" alt="{esc(item.name)}" '
            f'data-type="{esc(item.content_type)}">'
        )
    if kind in ("audio", "video"):
        return (
            f'<{kind} controls preload="metadata" src="{base}/preview/{item.index}" '
            f'data-type="{esc(item.content_type)}" title="{esc(item.name)}"></{kind}>'
            f'<small class="muted">{esc(item.content_type)}, shown converted to WebM'
            f' (<a href="{base}/part/{item.index}">original</a>)</small>'
        )
    return (
        f'<p class="attachment"><a href="{base}/part/{item.index}">{esc(item.name)}</a> '
        f'<small class="muted">{esc(item.content_type)}</small></p>'
    )


def mms_article(mms: ReceivedMms) -> str:
    submit = mms.submit
    tracking = mms.tracking_id
    about = [
        when(mms.received_at),
        f"from {esc(submit.sender)}",
        f"message id {esc(mms.message_id)}",
    ]
    if tracking:
        about.append(f'<a href="{trace_href(tracking)}">tracking-id {esc(tracking)}</a>')
    slides = []
    for number, slide in enumerate(mms.slides, 1):
        seconds = f" ({slide.duration_ms / 1000:g} s)" if slide.duration_ms else ""
        items = "".join(_item(mms, item) for item in slide.items)
        slides.append(
            f'<section class="slide" data-slide="{number}"><h4>Slide {number}{seconds}</h4>'
            f"{items}</section>"
        )
    label = '<span class="badge">DDM</span> ' if mms.is_ddm else ""
    return (
        f'<article class="mms{" ddm" if mms.is_ddm else ""}" '
        f'data-message-id="{esc(mms.message_id)}" data-tracking-id="{esc(tracking or "")}">'
        f"<h3>{label}MMS: {esc(submit.subject) or '<em>(no subject)</em>'}</h3>"
        f'<p class="muted">{" · ".join(about)}</p>{"".join(slides)}</article>'
    )


def sms_article(sms: dict[str, object]) -> str:
    return (
        f'<article class="sms" data-message-id="{esc(sms.get("message_id", ""))}">'
        f"<h3>SMS</h3><p class=muted>{when(float(str(sms.get('received_at', 0))))}"
        f" · from {esc(sms.get('from', ''))}</p>"
        f'<p class="text">{linked(str(sms.get("text", "")))}</p></article>'
    )


def phones_page(mms: list[ReceivedMms], sms: list[dict[str, object]], limit: int) -> bytes:
    """Every recipient, with what reached it (MMS, DDMs, fallback SMS), newest first."""
    by_number: dict[str, list[tuple[float, str]]] = {}
    for message in mms:
        for number in message.recipients:
            by_number.setdefault(number, []).append((message.received_at, mms_article(message)))
    for text in sms:
        number = str(text.get("to", "")).removeprefix("+")
        by_number.setdefault(number, []).append((float(str(text.get("received_at", 0))),
                                                 sms_article(text)))  # fmt: skip
    if not by_number:
        body = (
            "<p>Nothing received yet. Send an MMS through the API (sendSavedMMS, sendMMS):"
            " what the simulated carrier delivers shows up here, per phone.</p>"
        )
        return page("Local MMS inbox", body)
    newest = sorted(by_number, key=lambda n: max(t for t, _ in by_number[n]), reverse=True)
    index = "".join(f'<li><a href="#phone-{esc(n)}">{esc(n)}</a></li>' for n in newest)
    sections = []
    for number in newest:
        messages = sorted(by_number[number], key=lambda m: m[0], reverse=True)
        sections.append(
            f'<section class="phone" id="phone-{esc(number)}" data-number="{esc(number)}">'
            f"<h2>To {esc(number)}</h2>{''.join(article for _, article in messages)}</section>"
        )
    note = f'<p class="muted">The newest {limit} MMS and {limit} SMS are listed.</p>'
    return page("Local MMS inbox", f'<ul class="phones">{index}</ul>{note}{"".join(sections)}')


# ---------------------------------------------------------------- postbacks and timelines


def _postback_row(postback: ReceivedPostback) -> str:
    tracking = postback.tracking
    trace = f'<a href="{trace_href(tracking)}">{esc(tracking)}</a>' if tracking else ""
    return (
        f'<tr class="postback" data-code="{esc(postback.code)}" '
        f'data-signature="{esc(postback.signature)}" data-tracking-id="{esc(tracking)}">'
        f"<td>{when(postback.received_at)}</td><td>{esc(postback.account_id)}</td>"
        f"<td>{esc(postback.code)}</td><td>{trace}</td>"
        f'<td class="signature {esc(postback.signature.replace(" ", "-"))}">'
        f"{esc(postback.signature)}</td>"
        f"<td><details><summary>{esc(postback.fields.get('status', ''))}</summary>"
        f"<pre>{linked(postback.body.decode('utf-8', 'replace'), xml=True)}</pre>"
        "</details></td></tr>"
    )


def postbacks_table(postbacks: Iterable[ReceivedPostback]) -> str:
    rows = "".join(_postback_row(p) for p in postbacks)
    if not rows:
        return "<p>No postback yet.</p>"
    return (
        '<div class="scroll"><table class="postbacks"><thead><tr><th>received</th>'
        "<th>account</th><th>code</th><th>tracking-id</th><th>X-MMS-Signature</th><th>body</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def postbacks_page(postbacks: list[ReceivedPostback], receiver: str, limit: int) -> bytes:
    body = (
        f'<p class="muted">Postbacks of accounts whose postback URL is the inbox'
        f" ({esc(receiver)}&lt;account-id&gt;; the demo account's unless MMS_LOCAL_POSTBACK_URL"
        f" is set), newest {limit} first. The signature is checked with the account's"
        " postback secret, as a receiver checks it.</p>" + postbacks_table(postbacks)
    )
    return page("Postbacks", body)


def trace_page(tracking: str, timeline: str, postbacks: list[ReceivedPostback]) -> bytes:
    body = (
        f'<pre class="timeline">{esc(timeline)}</pre><h2>Postbacks the inbox received for it</h2>'
        + postbacks_table(p for p in postbacks if p.tracking == tracking)
    )
    return page(f"Timeline of {tracking}", body, refresh_hint=False)


# ---------------------------------------------------------------- the phone


def phone_page(shortcode: str, message: str = "", *, sms: bool = False) -> bytes:
    said = f'<p class="result">{esc(message)}</p>' if message else ""
    form = (
        f'{said}<form method="post" action="{PREFIX}/phone" enctype="multipart/form-data"'
        ' class="phone-form">'
        '<label>From (the phone) <input name="from" value="14082257140" required></label>'
        f'<label>To (shortcode) <input name="to" value="{esc(shortcode)}" required></label>'
        '<label>Subject <input name="subject"></label>'
        '<label>Text <textarea name="text" rows="3"></textarea></label>'
        '<label>Picture (JPEG, PNG, GIF) <input type="file" name="picture"'
        ' accept="image/jpeg,image/png,image/gif"></label>'
        '<button type="submit" name="as" value="mms">Send MMS (MM7 DeliverReq)</button>'
        + (
            ' <button type="submit" name="as" value="sms">Send SMS (two-way SMS topic)</button>'
            if sms
            else ""
        )
        + "</form>"
        '<p class="muted">The simulated MMSC posts a DeliverReq to the runtime\'s carrier route,'
        " as a carrier relays a phone's MMS; the account of the shortcode gets N401.</p>"
    )
    return page("Send from a phone", form, refresh_hint=False)
