"""What the local inbox shows, read from <data dir>: the MMS the simulated MMSC kept
(mmsc/<message-id>/submit.txt, parsed again), the SMS the simulated gateway kept
(sms/<id>.json) and the postbacks the inbox received (inbox/postbacks/<n>.json).

Everything here is untrusted content (a template's text, a phone's reply, a postback
body): it is read as data and bounded (the newest LIMIT of each, parsed requests
cached by file and mtime), never interpreted; the page escapes it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

from lxml import etree

from mmsapi.carrier.message import MessagePart
from mmsapi.carrier.mm7 import MM7Error, ReceivedSubmit, parse_submit_req
from mmsapi.tracking import tracking_id

log = logging.getLogger(__name__)

LIMIT: Final = 50  # the newest this many MMS, SMS and postbacks are listed
KEPT_POSTBACKS: Final = 1000  # older ones are deleted: the inbox's folder stays small
MAX_SUBMIT_BYTES: Final = 20 * 1024 * 1024  # the simulated MMSC's own bound
MAX_POSTBACK_BYTES: Final = 256 * 1024
_CACHED: Final = 64  # parsed SubmitReqs kept in memory
MESSAGE_ID: Final = re.compile(r"[0-9A-Za-z_-]{1,64}")
# The deliver function's MM7 TransactionIDs (services/deliver.py, services/ddm.py).
_TRANSACTION: Final = re.compile(r"mmsapi-(ddm-)?(\d{1,20})")
_SAFE_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


# ---------------------------------------------------------------- MMS at the MMSC


@dataclass(frozen=True)
class Item:
    """One object of a slide: a part of the message, in SMIL order."""

    kind: str  # image, audio, video, text, other
    index: int  # the part's position in the message (its URL under /_inbox/mms/<id>/)
    content_type: str
    name: str
    text: str | None = None  # text parts, decoded


@dataclass(frozen=True)
class Slide:
    duration_ms: int | None
    items: tuple[Item, ...]


@dataclass(frozen=True)
class ReceivedMms:
    """One SubmitReq the simulated MMSC accepted, as a phone would show it."""

    message_id: str
    received_at: float
    submit: ReceivedSubmit
    slides: tuple[Slide, ...]

    @property
    def recipients(self) -> list[str]:
        return [r.removeprefix("+") for r in self.submit.recipients]

    @property
    def send_id(self) -> int | None:
        found = _TRANSACTION.fullmatch(self.submit.transaction_id)
        return int(found.group(2)) if found else None

    @property
    def tracking_id(self) -> str | None:
        send_id = self.send_id
        return tracking_id(send_id) if send_id is not None else None

    @property
    def is_ddm(self) -> bool:
        return self.submit.transaction_id.startswith("mmsapi-ddm-")

    def part(self, index: int) -> MessagePart | None:
        parts = self.submit.parts
        return parts[index] if 0 <= index < len(parts) else None


def kind_of(content_type: str) -> str:
    major = content_type.split(";", 1)[0].strip().lower().partition("/")[0]
    return major if major in ("image", "audio", "video", "text") else "other"


def _text_of(part: MessagePart) -> str:
    charset = re.search(r"charset=\"?([A-Za-z0-9._-]+)", part.content_type)
    try:
        return part.data.decode(charset.group(1) if charset else "utf-8", errors="replace")
    except LookupError:
        return part.data.decode("utf-8", errors="replace")


def _item(part: MessagePart, index: int) -> Item:
    kind = kind_of(part.content_type)
    text = _text_of(part) if kind == "text" else None
    return Item(kind, index, part.content_type, part.filename or part.content_id, text)


def _duration(value: str | None) -> int | None:
    found = re.fullmatch(r"\s*(\d{1,7})(ms|s)?\s*", value or "")
    if not found:
        return None
    number = int(found.group(1))
    return number if found.group(2) == "ms" else number * 1000


def slides_of(submit: ReceivedSubmit) -> tuple[Slide, ...]:
    """The slides in SMIL order, each object its part; parts no slide names come last,
    as a phone shows attachments (and a message without SMIL is one slide)."""
    by_id: dict[str, int] = {}
    for index, part in enumerate(submit.parts):
        for name in (part.content_id, part.filename):
            if name:
                by_id.setdefault(name.strip("<>"), index)
    slides: list[Slide] = []
    used: set[int] = set()
    try:
        root = etree.fromstring(submit.smil.encode("utf-8"), _SAFE_PARSER) if submit.smil else None
    except etree.XMLSyntaxError:
        root = None
    pars = [e for e in root.iter() if etree.QName(e).localname == "par"] if root is not None else []
    for par in pars:
        items: list[Item] = []
        for element in par.iter():
            src = element.get("src") if isinstance(element.tag, str) else None
            if not src:
                continue
            name = unquote(src.removeprefix("cid:")).strip("<>")
            found = by_id.get(name)
            if found is None or found in used:
                continue
            used.add(found)
            items.append(_item(submit.parts[found], found))
        slides.append(Slide(_duration(par.get("dur")), tuple(items)))
    rest = [_item(p, i) for i, p in enumerate(submit.parts) if i not in used]
    rest = [item for item in rest if "smil" not in item.content_type.lower()]
    if rest:
        slides.append(Slide(None, tuple(rest)))
    return tuple(slides)


class MmscFolder:
    """<data dir>/mmsc/: the MMS the simulated MMSC accepted, newest first."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "mmsc"
        self._cache: OrderedDict[tuple[str, int], ReceivedMms] = OrderedDict()
        self._lock = threading.Lock()

    def newest(self, limit: int = LIMIT) -> list[ReceivedMms]:
        if not self.root.is_dir():
            return []
        directories = [
            d for d in self.root.iterdir() if d.is_dir() and (d / "submit.txt").is_file()
        ]
        directories.sort(key=lambda d: (d / "submit.txt").stat().st_mtime, reverse=True)
        found = (self.get(d.name) for d in directories[:limit])
        return [mms for mms in found if mms is not None]

    def get(self, message_id: str) -> ReceivedMms | None:
        if not MESSAGE_ID.fullmatch(message_id) or message_id == "invalid":
            return None
        path = self.root / message_id / "submit.txt"
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (message_id, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        if stat.st_size > MAX_SUBMIT_BYTES:
            return None
        head, _, body = path.read_bytes().partition(b"\r\n\r\n")
        try:
            submit = parse_submit_req(body, head.decode("latin-1").removeprefix("Content-Type: "))
        except MM7Error as exc:
            log.info("inbox: %s cannot be read again: %s", path, exc)
            return None
        mms = ReceivedMms(message_id, stat.st_mtime, submit, slides_of(submit))
        with self._lock:
            self._cache[key] = mms
            while len(self._cache) > _CACHED:
                self._cache.popitem(last=False)
        return mms


# ---------------------------------------------------------------- SMS at the gateway


def sms_newest(data_dir: Path, limit: int = LIMIT) -> list[dict[str, Any]]:
    """The fallback SMS the simulated gateway kept (to, from, text), newest first."""
    folder = data_dir / "sms"
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    found: list[dict[str, Any]] = []
    for path in paths[:limit]:
        try:
            record = json.loads(path.read_bytes()[:MAX_POSTBACK_BYTES])
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            found.append({**record, "received_at": path.stat().st_mtime})
    return found


# ---------------------------------------------------------------- postbacks to the inbox


@dataclass(frozen=True)
class ReceivedPostback:
    received_at: float
    account_id: str
    body: bytes
    postback_id: str
    signature: str  # valid, invalid, unsigned, unknown account
    fields: dict[str, str]

    @property
    def code(self) -> str:
        return self.fields.get("code", "")

    @property
    def tracking(self) -> str:
        return self.fields.get("tracking-id") or self.fields.get("trackingid", "")

    def recipient(self) -> str:
        return self.fields.get("to", "")


def signature_status(body: bytes, header: str | None, secret: str | None) -> str:
    """X-MMS-Signature checked as a receiver checks it (docs/postbacks.md)."""
    if secret is None:
        return "unknown account"
    if not header:
        return "unsigned"
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return "valid" if hmac.compare_digest(expected, header.strip()) else "invalid"


def postback_fields(body: bytes) -> dict[str, str]:
    """The flat fields of a postback (both dialects: names lower-cased, legacy ones as
    sent); `content` keeps its files one per line."""
    try:
        root = etree.fromstring(body, _SAFE_PARSER)
    except etree.XMLSyntaxError:
        return {}
    fields: dict[str, str] = {}
    for child in root:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname.lower()
        if len(child):
            fields[name] = "\n".join((c.text or "").strip() for c in child)
        else:
            fields[name] = (child.text or "").strip()
    return fields


class PostbackBox:
    """<data dir>/inbox/postbacks/: what the accounts' postback URL on the inbox got."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "inbox" / "postbacks"
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, account_id: str, body: bytes, postback_id: str, signature: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            name = f"{time.time_ns()}-{next(self._numbers):06d}.json"
        record = {
            "received_at": time.time(),
            "account_id": account_id,
            "postback_id": postback_id,
            "signature": signature,
            "body": body.decode("utf-8", errors="replace"),
        }
        partial = self.root / f".{name}.partial"
        partial.write_text(json.dumps(record), encoding="utf-8")
        partial.replace(self.root / name)
        if int(name.split("-")[1].split(".")[0]) % 100 == 0:
            self.prune()

    def prune(self, keep: int = KEPT_POSTBACKS) -> None:
        for old in sorted(self.root.glob("*.json"), reverse=True)[keep:]:
            old.unlink(missing_ok=True)

    def newest(self, limit: int = LIMIT) -> list[ReceivedPostback]:
        if not self.root.is_dir():
            return []
        names = sorted((p.name for p in self.root.glob("*.json")), reverse=True)
        found: list[ReceivedPostback] = []
        for name in names[:limit]:
            try:
                record = json.loads((self.root / name).read_text(encoding="utf-8"))
                body = str(record["body"]).encode("utf-8")
                found.append(
                    ReceivedPostback(
                        float(record["received_at"]),
                        str(record["account_id"]),
                        body,
                        str(record.get("postback_id", "")),
                        str(record["signature"]),
                        postback_fields(body),
                    )
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return found
