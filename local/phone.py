"""The local carrier plays a phone: an MMS from a handset, as the MMSC relays it, i.e. an
MM7 DeliverReq (SOAP with attachments) posted to the runtime's own carrier route
/carrier/mm7/<token>, the route a real MMSC posts MO to.

    .venv/bin/python -m local phone --from 14082257140 --to 28444 --text yes \\
        [--picture reply.jpg] [--subject ...]

finds the running runtime through <data dir>/runtime.json (its API URL and carrier
token) and prints the MMSC's answer (DeliverRsp status). The inbox page's form and
POST /_inbox/api/phone call send_mms the same way.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from mmsapi.carrier.message import MessagePart
from mmsapi.carrier.mm7_deliver import build_deliver_req

MAX_PICTURE_BYTES: Final = 2 * 1024 * 1024
MAX_TEXT_CHARS: Final = 5000
MAX_SMS_CHARS: Final = 1600  # End User Messaging's longest SMS
# What a phone attaches, told by its first bytes (an upload's own type is not trusted).
PICTURE_TYPES: Final[tuple[tuple[bytes, str, str], ...]] = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
)
_STATUS: Final = re.compile(rb"<(?:\w+:)?StatusCode>\s*(\d{1,5})\s*<")
_STATUS_TEXT: Final = re.compile(rb"<(?:\w+:)?StatusText>([^<]{0,200})<")


class PhoneError(ValueError):
    """What the phone was asked cannot be sent (bad number, picture, text)."""


@dataclass(frozen=True)
class Reply:
    """The MMSC's view of one MO: the HTTP status and DeliverRsp status of the route."""

    http_status: int
    status_code: int | None
    status_text: str
    transaction_id: str

    @property
    def ok(self) -> bool:
        return self.http_status == 200 and self.status_code == 1000


def picture_type(data: bytes) -> tuple[str, str]:
    for magic, content_type, extension in PICTURE_TYPES:
        if data.startswith(magic):
            return content_type, extension
    raise PhoneError("the picture is not a JPEG, PNG or GIF")


def mo_parts(text: str, picture: bytes | None = None) -> list[MessagePart]:
    """A phone's parts: the picture first, then the text (as handsets order them)."""
    if len(text) > MAX_TEXT_CHARS:
        raise PhoneError(f"the text is longer than {MAX_TEXT_CHARS} characters")
    parts: list[MessagePart] = []
    if picture:
        if len(picture) > MAX_PICTURE_BYTES:
            raise PhoneError(f"the picture is larger than {MAX_PICTURE_BYTES // 1024} KB")
        content_type, extension = picture_type(picture)
        name = f"IMG_0001.{extension}"
        parts.append(MessagePart(content_id=name, content_type=content_type, filename=name,
                                 data=picture))  # fmt: skip
    if text or not parts:
        parts.append(MessagePart(content_id="text_0.txt", content_type="text/plain; charset=utf-8",
                                 filename="text_0.txt", data=text.encode("utf-8")))  # fmt: skip
    return parts


def send_mms(
    carrier_url: str,
    *,
    sender: str,
    recipient: str,
    text: str,
    picture: bytes | None = None,
    subject: str = "",
    timeout: float = 30.0,
) -> Reply:
    """Post one MO DeliverReq to carrier_url (the runtime's /carrier/mm7/<token>)."""
    transaction_id = f"phone-{time.time_ns()}"
    try:
        body, content_type = build_deliver_req(
            sender=sender,
            recipient=recipient,
            parts=mo_parts(text, picture),
            transaction_id=transaction_id,
            subject=subject[:200],
        )
    except PhoneError:
        raise
    except ValueError as exc:  # an invalid number
        raise PhoneError(str(exc)) from exc
    request = urllib.request.Request(  # noqa: S310 - the runtime's own route on loopback
        carrier_url, data=body, headers={"Content-Type": content_type}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, answer = response.status, response.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read(64 * 1024)
    code = _STATUS.search(answer)
    words = _STATUS_TEXT.search(answer)
    return Reply(
        status,
        int(code.group(1)) if code else None,
        words.group(1).decode("utf-8", "replace").strip() if words else "",
        transaction_id,
    )


def sms_mo_event(topic_arn: str, *, sender: str, recipient: str, text: str) -> dict[str, Any]:
    """An SMS from a phone as Lambda receives it from the two-way SMS topic: an SNS record
    whose message is End User Messaging's inbound SMS JSON (docs/inbound.md#sms-mo)."""
    if len(text) > MAX_SMS_CHARS:
        raise PhoneError(f"the SMS is longer than {MAX_SMS_CHARS} characters")
    inbound_id = str(uuid.uuid4())
    message = {
        "originationNumber": "+" + sender.removeprefix("+"),
        "destinationNumber": recipient,
        "messageKeyword": "KEYWORD_" + recipient,
        "messageBody": text,
        "inboundMessageId": inbound_id,
        "previousPublishedMessageId": "",
    }
    sns: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic_arn,
        "Subject": None,
        "Message": json.dumps(message),
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "SignatureVersion": "1",
        "Signature": "local",
        "MessageAttributes": {},
    }
    record = {"EventSource": "aws:sns", "EventVersion": "1.0",
              "EventSubscriptionArn": f"{topic_arn}:local", "Sns": sns}  # fmt: skip
    return {"Records": [record]}


def carrier_url_of(data_dir: Path) -> str:
    """The running runtime's MM7 route, from its runtime.json."""
    state_file = data_dir / "runtime.json"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        return f"{state['api_url']}/carrier/mm7/{state['carrier_token']}"
    except (OSError, ValueError, KeyError) as exc:
        raise PhoneError(
            f"the local runtime is not running ({state_file}: {exc}); start it with make local"
        ) from exc


def main(argv: list[str] | None = None) -> int:
    from local.runtime import DEMO_SHORTCODE, data_dir

    arguments = argparse.ArgumentParser(
        prog="python -m local phone",
        description="Send an MMS from a simulated phone to the running local runtime.",
    )
    arguments.add_argument("--from", dest="sender", default="14082257140", help="phone number")
    arguments.add_argument("--to", default=DEMO_SHORTCODE, help="shortcode (default 28444)")
    arguments.add_argument("--text", default="", help="the message text")
    arguments.add_argument("--subject", default="")
    arguments.add_argument("--picture", type=Path, help="a JPEG, PNG or GIF to attach")
    arguments.add_argument(
        "--sms", action="store_true", help="send an SMS (two-way SMS) instead of an MMS"
    )
    given = arguments.parse_args(argv)
    if given.sms:
        return _send_sms(data_dir(), given.sender, given.to, given.text)
    try:
        picture = given.picture.read_bytes() if given.picture else None
        reply = send_mms(
            carrier_url_of(data_dir()),
            sender=given.sender,
            recipient=given.to,
            text=given.text,
            picture=picture,
            subject=given.subject,
        )
    except (PhoneError, OSError) as exc:
        print(f"phone: {exc}", file=sys.stderr)
        return 2
    print(
        f"DeliverReq {reply.transaction_id}: HTTP {reply.http_status}, "
        f"MM7 status {reply.status_code} {reply.status_text}".rstrip()
    )
    return 0 if reply.ok else 1


def _send_sms(data_dir: Path, sender: str, recipient: str, text: str) -> int:
    """The runtime delivers it to the function the topic's subscription names: asked
    over its inbox's HTTP endpoint (SNS to Lambda happens inside the runtime)."""
    try:
        state = json.loads((data_dir / "runtime.json").read_text(encoding="utf-8"))
        url = f"{state['api_url']}/_inbox/api/phone"
    except (OSError, ValueError, KeyError) as exc:
        print(f"phone: the local runtime is not running ({exc})", file=sys.stderr)
        return 2
    body = json.dumps({"sms": True, "from": sender, "to": recipient, "text": text}).encode()
    request = urllib.request.Request(  # noqa: S310 - the runtime on loopback
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            print(response.read().decode("utf-8", "replace"))
            return 0
    except urllib.error.HTTPError as exc:
        print(f"phone: {exc.read().decode('utf-8', 'replace')}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
