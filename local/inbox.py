"""The local MMS inbox at /_inbox/ on the API port, like the mail catchers developers use.

    GET  /_inbox/                            every phone, with the MMS (slides in SMIL order),
                                             DDMs and fallback SMS it received, newest first
    GET  /_inbox/mms/<id>/part/<n>           one part as received (images shown inline)
    GET  /_inbox/mms/<id>/preview/<n>        audio/video converted to WebM (local.inbox_preview)
    GET  /_inbox/postbacks                   postbacks the inbox received, signature checked
    POST /_inbox/receive/<account-id>        the postback URL of accounts that have the inbox
    GET  /_inbox/trace/<tracking-id>         the send's timeline (mmsapi-admin trace's)
    GET  /_inbox/phone, POST /_inbox/phone   a phone's form: an MO DeliverReq (local.phone)
    POST /_inbox/api/phone                   the same, JSON, for tests and scripts

It exists only in the local runtime (API Gateway has no such route). Only loopback
hosts are served (no DNS rebinding), a POST from another origin is refused, pages
carry a Content-Security-Policy without inline script, and every value is escaped
(local/inbox_page.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

from local import inbox_page
from local.http_api import HttpAnswer, HttpRequest
from local.inbox_preview import CONTENT_TYPE as PREVIEW_TYPES
from local.inbox_preview import PreviewError, Previews
from local.inbox_store import (
    LIMIT,
    MAX_POSTBACK_BYTES,
    MmscFolder,
    PostbackBox,
    kind_of,
    signature_status,
    sms_newest,
)
from local.phone import PhoneError, Reply, send_mms

log = logging.getLogger(__name__)

PREFIX: Final = inbox_page.PREFIX
RECEIVER: Final = f"{PREFIX}/receive/"  # + account id: the postback URL of the inbox
STATIC: Final = Path(__file__).with_name("inbox_static")
STATIC_TYPES: Final = {"inbox.css": "text/css; charset=utf-8",
                       "inbox.js": "text/javascript; charset=utf-8"}  # fmt: skip
SECURITY_HEADERS: Final = [
    ("Content-Security-Policy",
     "default-src 'self'; img-src 'self'; media-src 'self'; style-src 'self';"
     " script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    # same-origin, not no-referrer: with no-referrer Chromium posts forms with Origin: null.
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]  # fmt: skip
_ID: Final = re.compile(r"[A-Za-z0-9_=+/-]{1,128}")
MO_PREFIXES: Final = ("MMS_MO_", "SMS_MO_")  # tracking-ids of messages from phones
_RANGE: Final = re.compile(r"bytes=(\d{0,12})-(\d{0,12})")
_LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")

SendSms = Callable[[str, str, str], str]  # (from, to, text) -> what became of it
SecretOf = Callable[[str], str | None]  # account id -> postback secret (None: no account)
Timeline = Callable[[str], str | None]  # tracking-id -> mmsapi-admin trace's text


def _answer(status: int, content_type: str, body: bytes, *extra: tuple[str, str]) -> HttpAnswer:
    headers = [("Content-Type", content_type), ("Accept-Ranges", "bytes"), *SECURITY_HEADERS]
    return HttpAnswer(status, [*headers, *extra], body)


def _html(body: bytes, status: int = 200) -> HttpAnswer:
    return _answer(status, "text/html; charset=utf-8", body)


def _text(status: int, message: str) -> HttpAnswer:
    return _answer(status, "text/plain; charset=utf-8", (message + "\n").encode("utf-8"))


def _json(status: int, value: object) -> HttpAnswer:
    return _answer(status, "application/json", json.dumps(value).encode("utf-8"))


def ranged(answer: HttpAnswer, asked: str) -> HttpAnswer:
    """One byte range of a 200 answer, as media players ask (Safari plays no video
    without it); anything but one satisfiable `bytes=a-b` range: the whole answer."""
    found = _RANGE.fullmatch(asked.strip())
    size = len(answer.body)
    if answer.status != 200 or found is None or not found.group(1) + found.group(2):
        return answer
    if found.group(1):
        start = int(found.group(1))
        end = min(int(found.group(2)) if found.group(2) else size - 1, size - 1)
    else:  # bytes=-n: the last n bytes
        start, end = max(size - int(found.group(2)), 0), size - 1
    if start >= size or start > end:
        return HttpAnswer(416, [*answer.headers, ("Content-Range", f"bytes */{size}")], b"")
    headers = [*answer.headers, ("Content-Range", f"bytes {start}-{end}/{size}")]
    return HttpAnswer(206, headers, answer.body[start : end + 1])


def _header(request: HttpRequest, name: str) -> str:
    lower = name.lower()
    return next((value for key, value in request.headers if key.lower() == lower), "")


def _form(request: HttpRequest) -> dict[str, bytes]:
    """The fields of a multipart/form-data or urlencoded body (values as bytes)."""
    content_type = _header(request, "Content-Type")
    if content_type.lower().startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        message = BytesParser(policy=HTTP).parsebytes(head + request.body)
        fields: dict[str, bytes] = {}
        if isinstance(message, EmailMessage) and message.is_multipart():
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    fields[name] = payload
        return fields
    pairs = parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: value.encode("utf-8") for name, value in pairs}


class Inbox:
    """Answers every /_inbox request (see the module doc)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        carrier_url: str,
        shortcode: str,
        secret_of: SecretOf,
        timeline: Timeline,
        send_sms: SendSms | None = None,
        limit: int = LIMIT,
    ) -> None:
        self.send_sms = send_sms
        self.port = port
        self.carrier_url = carrier_url
        self.shortcode = shortcode
        self.secret_of = secret_of
        self.timeline = timeline
        self.limit = limit
        self.mmsc = MmscFolder(data_dir)
        self.data_dir = data_dir
        self.postbacks = PostbackBox(data_dir)
        self.previews = Previews(data_dir)

    def receiver_url(self, account_id: str) -> str:
        """The postback URL that brings an account's postbacks to the inbox."""
        return f"http://127.0.0.1:{self.port}{RECEIVER}{account_id}"

    # ---------------------------------------------------------------- dispatch

    def handle(self, request: HttpRequest) -> HttpAnswer:
        refused = self._refused(request)
        if refused is not None:
            return refused
        path = urlsplit(request.target).path
        # Split before unquoting: a tracking-id (base64) may hold an escaped "/".
        parts = [unquote(part) for part in path.removeprefix(PREFIX).strip("/").split("/")]
        method = request.method
        try:
            return self._route(method, parts, request)
        except Exception:
            log.exception("inbox: %s %s failed", method, path[:120])
            return _text(500, "The inbox failed (see the runtime's log).")

    def _refused(self, request: HttpRequest) -> HttpAnswer | None:
        host = _header(request, "Host").lower()
        if host not in {f"{name}:{self.port}" for name in _LOOPBACK_HOSTS}:
            return _text(421, "The inbox answers on 127.0.0.1 or localhost only.")
        origin = _header(request, "Origin")
        if request.method == "POST" and origin and origin.lower() != f"http://{host}":
            return _text(403, "Refused: a form of another site posted to the inbox.")
        return None

    def _route(self, method: str, parts: list[str], request: HttpRequest) -> HttpAnswer:
        match (method, parts):
            case ("GET" | "HEAD", [""]):
                return self.phones()
            case ("GET" | "HEAD", ["static", name]) if name in STATIC_TYPES:
                body = (STATIC / name).read_bytes()
                return _answer(200, STATIC_TYPES[name], body)
            case ("GET" | "HEAD", ["mms", message_id, "part" | "preview" as what, index]):
                return ranged(self.media(message_id, what, index), _header(request, "Range"))
            case ("GET" | "HEAD", ["postbacks"]):
                postbacks = self.postbacks.newest(self.limit)
                receiver = self.receiver_url("")
                return _html(inbox_page.postbacks_page(postbacks, receiver, self.limit))
            case ("POST", ["receive", account_id]) if _ID.fullmatch(account_id):
                return self.receive(account_id, request)
            case ("GET" | "HEAD", ["trace", tracking]) if _ID.fullmatch(tracking):
                postbacks = self.postbacks.newest(self.limit)
                return _html(inbox_page.trace_page(tracking, self._timeline(tracking), postbacks))
            case ("GET" | "HEAD", ["phone"]):
                return self.phone_page()
            case ("POST", ["phone"]):
                return self.phone_form(request)
            case ("POST", ["api", "phone"]):
                return self.phone_api(request)
        return _text(404, "Not in the inbox.")

    # ---------------------------------------------------------------- pages and media

    def _timeline(self, tracking: str) -> str:
        if tracking.startswith(MO_PREFIXES):
            return "A message from a phone: no send, so no timeline. Its postbacks are below."
        return self.timeline(tracking) or "No send has this tracking-id."

    def phones(self) -> HttpAnswer:
        mms = self.mmsc.newest(self.limit)
        sms: list[dict[str, object]] = list(sms_newest(self.data_dir, self.limit))
        return _html(inbox_page.phones_page(mms, sms, self.limit))

    def media(self, message_id: str, what: str, index_text: str) -> HttpAnswer:
        mms = self.mmsc.get(message_id)
        index = int(index_text) if index_text.isdigit() and len(index_text) < 4 else -1
        part = mms.part(index) if mms is not None else None
        if part is None:
            return _text(404, "No such part.")
        media_type = inbox_page.media_type(part.content_type)
        if what == "part":
            if media_type in inbox_page.INLINE_IMAGES:
                return _answer(200, media_type, part.data)
            # Anything else is a download: never shown as a page of this origin.
            return _answer(
                200,
                "application/octet-stream",
                part.data,
                ("Content-Disposition", f'attachment; filename="part-{index}"'),
            )
        kind = kind_of(part.content_type)
        if kind not in PREVIEW_TYPES:
            return _text(404, "Only audio and video have previews.")
        try:
            path = self.previews.preview(part.data, kind)
        except PreviewError as exc:
            return _text(422, f"No preview: {exc}")
        return _answer(200, PREVIEW_TYPES[kind], path.read_bytes())

    # ---------------------------------------------------------------- postbacks

    def receive(self, account_id: str, request: HttpRequest) -> HttpAnswer:
        body = request.body[:MAX_POSTBACK_BYTES]
        signature = signature_status(
            body, _header(request, "X-MMS-Signature"), self.secret_of(account_id)
        )
        postback_id = _header(request, "X-MMS-Postback-Id")[:200]
        self.postbacks.record(account_id, body, postback_id, signature)
        log.info("inbox: postback for %s (%s)", account_id, signature)
        return _text(200, "ok")

    # ---------------------------------------------------------------- the phone

    def _send(self, sender: str, to: str, text: str, subject: str, picture: bytes | None) -> Reply:
        return send_mms(
            self.carrier_url, sender=sender, recipient=to, text=text, picture=picture,
            subject=subject,
        )  # fmt: skip

    def _sms(self, given: dict[str, object]) -> HttpAnswer:
        if self.send_sms is None:
            return _json(501, {"error": "the template has no two-way SMS topic"})
        outcome = self.send_sms(
            str(given.get("from") or "14082257140"), str(given.get("to") or self.shortcode),
            str(given.get("text") or ""),
        )  # fmt: skip
        return _json(200, {"sms": outcome})

    def phone_form(self, request: HttpRequest) -> HttpAnswer:
        fields = _form(request)

        def field(name: str) -> str:
            return fields.get(name, b"").decode("utf-8", "replace").strip()

        try:
            if field("as") == "sms" and self.send_sms is not None:
                outcome = self.send_sms(field("from"), field("to"), field("text"))
                return _html(inbox_page.phone_page(self.shortcode, f"SMS sent: {outcome}"))
            reply = self._send(
                field("from"), field("to"), field("text"), field("subject"),
                fields.get("picture") or None,
            )  # fmt: skip
        except PhoneError as exc:
            return _html(inbox_page.phone_page(self.shortcode, f"Not sent: {exc}"), 400)
        said = (
            f"Sent: the carrier route answered HTTP {reply.http_status}, MM7 status "
            f"{reply.status_code} {reply.status_text} (transaction {reply.transaction_id})."
        )
        return _html(inbox_page.phone_page(self.shortcode, said), 200 if reply.ok else 502)

    def phone_page(self) -> HttpAnswer:
        return _html(inbox_page.phone_page(self.shortcode, sms=self.send_sms is not None))

    def phone_api(self, request: HttpRequest) -> HttpAnswer:
        """{"from", "to", "text", "subject"?, "picture_base64"?} -> the MMSC's answer;
        {"sms": true, "from", "to", "text"} -> an SMS through the two-way SMS topic."""
        if not _header(request, "Content-Type").lower().startswith("application/json"):
            return _json(415, {"error": "send application/json"})
        try:
            given = json.loads(request.body)
            if not isinstance(given, dict):
                raise ValueError("not an object")
            if given.get("sms") is True:
                return self._sms(given)
            picture_text = str(given.get("picture_base64") or "")
            picture = base64.b64decode(picture_text, validate=True) if picture_text else None
            reply = self._send(
                str(given.get("from") or "14082257140"), str(given.get("to") or self.shortcode),
                str(given.get("text") or ""), str(given.get("subject") or ""), picture,
            )  # fmt: skip
        except (ValueError, binascii.Error) as exc:  # PhoneError is a ValueError
            return _json(400, {"error": str(exc)[:300]})
        return _json(
            200 if reply.ok else 502,
            {
                "http_status": reply.http_status,
                "status_code": reply.status_code,
                "status_text": reply.status_text,
                "transaction_id": reply.transaction_id,
            },
        )
