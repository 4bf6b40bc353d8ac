"""MM7 DeliverReq/DeliverRsp (3GPP TS 23.140 §8.3): an MMS a phone sent to a shortcode (MO).

Pure: no storage (services/inbound.py stores and tells). The MMSC posts a SOAP with
attachments body, as for SubmitReq (carrier/mm7.py): multipart/related whose start part
is the SOAP envelope, and one more part, named by <Content href="cid:...">, holding the
MM: multipart/related (SMIL first) or multipart/mixed. The elements of DeliverReq, in
the schemas' order (REL-5-MM7-1-2 for 5.3.0, REL-6-MM7-1-4 for 6.8.0; '?' optional):

    MM7Version, MMSRelayServerID?, [6.8.0: VASPID?, VASID?], LinkedID?, Sender,
    Recipients?, [6.8.0: Previouslysentby?, SenderSPI?, RecipientSPI?], TimeStamp,
    ReplyChargingID?, Priority?, Subject?, [6.8.0: ApplicID?, ReplyApplicID?,
    AuxApplicInfo?, UACapabilities?], Content?

and of DeliverRsp: MM7Version, Status (StatusCode, StatusText, Details?), ServiceCode?.

Every input is hostile: the body, its MIME structure and its XML are bounded (BOUNDS)
before and while they are read, so a request costs bounded time and memory. What
cannot be read or is out of bounds raises DeliverError with the MM7 status to answer.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Final
from urllib.parse import unquote

from lxml import etree

from mmsapi.carrier.message import MessagePart
from mmsapi.carrier.mm7 import (
    NAMESPACES,
    MM7Error,
    Version,
    _add,
    _add_status,
    _all_text,
    _attachment,
    _boundaries,
    _child,
    _cid,
    _envelope,
    _find,
    _mime,
    _multipart,
    _operation,
    _payload,
    _read_envelope,
    _recipients,
    _serialize,
    _start,
    _subparts,
    _text,
    _timestamp,
    international,
    soap_with_attachments,
)
from mmsapi.numbers import phone_digits
from mmsapi.records import record


@dataclass(frozen=True)
class Bounds:
    """What one DeliverReq may hold. The body bound keeps the API Gateway event (the body
    base64-encoded, 4/3 larger) under Lambda's 6 MB payload limit."""

    body_bytes: int = 4_000_000
    envelope_bytes: int = 64 * 1024  # the SOAP part: a few hundred bytes in practice
    parts: int = 32  # leaf parts of the MM (phones send a few)
    part_bytes: int = 3_000_000  # one decoded part
    multiparts: int = 6  # multipart entities in the whole body (the envelope's included)
    depth: int = 3  # the body, the MM, one nested multipart/alternative
    subject_chars: int = 1000
    # Lines starting with "--" (each delimiter is one), whatever the boundaries declared:
    # the parts' and entities' delimiters, and slack for such lines in text and binary.
    dash_lines: int = 128
    # One header block, one unfolded header line, the parameters (';') of one header:
    # Python's header parser is superlinear in these, so they are bounded before it runs.
    header_block_bytes: int = 16 * 1024
    header_bytes: int = 64 * 1024  # all header blocks of the body together
    header_line_bytes: int = 2048
    header_params: int = 20  # and as many comments "(...)"
    header_words: int = 64  # whitespace-separated (folding, encoded words)


BOUNDS: Final = Bounds()

# The MM7 statuses this module answers with (carrier/mm7.py STATUS_TABLE has them all).
SUCCESS: Final = 1000
FORMAT_CORRUPT: Final = 2007  # unreadable MIME or XML, no such part
CONTENT_REFUSED: Final = 2004  # out of bounds: too large, too many parts, too deep
VALIDATION_ERROR: Final = 4004  # readable, but not a complete DeliverReq
ADDRESS_NOT_FOUND: Final = 2003  # no account holds the recipient shortcode
SERVER_ERROR: Final = 3000  # we failed (storage): the MMSC may send it again

STATUS_TEXTS: Final[dict[int, str]] = {
    SUCCESS: "Success",
    FORMAT_CORRUPT: "Message format corrupt",
    CONTENT_REFUSED: "Multimedia content refused",
    VALIDATION_ERROR: "Validation error",
    ADDRESS_NOT_FOUND: "Address not found",
    SERVER_ERROR: "Server error",
}

SOAP_CID: Final = "mm7-start"
CONTENT_CID: Final = "mm7-content"
SMIL_CID: Final = "mms.smil"

# An element named DeliverReq (any prefix): DeliveryReportReq does not match.
_DELIVER_REQ: Final = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?DeliverReq[\s/>]")
_TRANSACTION_ID: Final = re.compile(rb"TransactionID[^>]{0,300}>\s*([!-;=?-~]{1,100})\s*<")
_BOUNDARY: Final = re.compile(rb"boundary\s*=\s*\"?([^\";\r\n]{1,100})", re.IGNORECASE)
# RFC 2231 boundaries (boundary*0=, boundary*=) are not accepted: _BOUNDARY cannot count them.
_BOUNDARY_2231: Final = re.compile(rb"boundary\s*\*", re.IGNORECASE)
# Where the MIME parser reads a header block: after a delimiter line, one starting "--".
# Its lines end at CRLF, CR or LF (email.feedparser), so does a line here.
_DASH_LINE: Final = re.compile(rb"(?<![^\r\n])--")
_LINE: Final = re.compile(rb"([^\r\n]*)(\r\n|\r|\n|$)")
# A line the parser takes as a header (email.feedparser.headerRE); any other ends the block.
_HEADER_LINE: Final = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")
# Content types whose payload the parser reads as more headers (message/*, and the
# parts of multipart/digest, message/rfc822 by default): refused before it reads them.
_NESTED_HEADERS: Final = re.compile(
    rb"message\s*(?:\([^)]*\)\s*)*/|/\s*(?:\([^)]*\)\s*)*digest", re.IGNORECASE
)
_SNIFF_BYTES: Final = 64 * 1024


class DeliverError(MM7Error):
    """A DeliverReq answered with an MM7 error status (nothing is stored)."""

    def __init__(self, status: int, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.details = details


@record
class ReceivedDeliver:
    transaction_id: str
    version: Version  # the version answered in (the request's namespace)
    linked_id: str
    sender: str  # digits as written, without separators and a leading '+' or '00'
    recipients: list[str]
    subject: str
    timestamp: datetime | None
    # Every part of the MM in the order sent (the SMIL too), flattened.
    parts: list[MessagePart]
    # Written with '+' or '00': else the sender may be national (4082257140), read in
    # the receiving shortcode's country (mmsapi/phones.py, services/inbound.py).
    sender_international: bool = False

    @property
    def first_text(self) -> str:
        """The first text/plain part, decoded (at most 1000 characters)."""
        for part in self.parts:
            if part.content_type.split(";", 1)[0].strip().lower() == "text/plain":
                head = part.data[:4000]
                try:
                    return head.decode(_charset(part.content_type), errors="replace")[:1000]
                except (UnicodeError, LookupError):  # a codec that passed the trial only
                    return head.decode("utf-8", errors="replace")[:1000]
        return ""


def looks_like_deliver_req(body: bytes) -> bool:
    """Whether the body's start holds a DeliverReq element (cheap: no parsing)."""
    return _DELIVER_REQ.search(body[:_SNIFF_BYTES]) is not None


def check_bounds(body: bytes, content_type: str, bounds: Bounds = BOUNDS) -> None:
    """DeliverError (2004) for a body the MIME parser must not read: any MM7 request
    (a delivery report too) is bounded so before it is parsed."""
    _check_shape(body, content_type, bounds)


def is_deliver_req(body: bytes, content_type: str, bounds: Bounds = BOUNDS) -> bool:
    """Whether the MMSC posted a DeliverReq (else it is read as a delivery report).

    The start part's operation element decides, its SOAP part anywhere in the body: it
    is read within the bounds. A body out of bounds or unreadable is a DeliverReq when it
    names one anywhere (so it is answered a DeliverRsp with the status saying why).
    """
    if looks_like_deliver_req(body):
        return True  # the SOAP part first, as MMSCs send it: no parsing
    try:
        _check_shape(body, content_type, bounds)
        soap, _attachments = _split(body, content_type)
        if len(soap) <= bounds.envelope_bytes:
            return etree.QName(_read_envelope(soap).operation).localname == "DeliverReq"
    except (MM7Error, ValueError, LookupError, RecursionError):  # DeliverError included
        pass
    return _DELIVER_REQ.search(body[: bounds.body_bytes]) is not None


def sniff_transaction_id(body: bytes) -> str:
    """The TransactionID, found without parsing (for answering a body that cannot be read)."""
    found = _TRANSACTION_ID.search(body[:_SNIFF_BYTES])
    return found.group(1).decode("ascii") if found else ""


def sniff_version(body: bytes) -> Version:
    return "5.3.0" if NAMESPACES["5.3.0"].encode() in body[:_SNIFF_BYTES] else "6.8.0"


def _decodes_text(name: str) -> bool:
    """Whether `name` is a text codec whose decoder replaces what it cannot read (not
    idna, punycode, undefined, nor the bytes-to-bytes codecs such as base64)."""
    try:
        codecs.lookup(name)
        # bytes.decode refuses a codec that is not text (LookupError) by itself.
        for trial in (b"", b"\xff", b"a\x00\x80"):
            trial.decode(name, errors="replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return False
    return True


def _charset(content_type: str) -> str:
    """The text's charset, when it is one that decodes with errors='replace'; else
    utf-8 (an unknown charset is read as UTF-8, what cannot be read replaced)."""
    found = re.search(r"charset\s*=\s*\"?([A-Za-z0-9_.:-]{1,40})", content_type, re.IGNORECASE)
    name = found.group(1) if found else "utf-8"
    return name if _decodes_text(name) else "utf-8"


# ---- reading -----------------------------------------------------------------------


def _check_header(line: bytes, bounds: Bounds) -> None:
    """One unfolded header line: its length, its parameters, what it would make the
    parser read (RFC 2231 boundaries, more headers in a message/* payload)."""
    if len(line) > bounds.header_line_bytes:
        raise DeliverError(CONTENT_REFUSED, f"a header line over {bounds.header_line_bytes} bytes")
    if max(line.count(b";"), line.count(b"(")) > bounds.header_params:
        raise DeliverError(
            CONTENT_REFUSED, f"a header of more than {bounds.header_params} parameters or comments"
        )
    if len(line.split(None, bounds.header_words)) > bounds.header_words:
        raise DeliverError(CONTENT_REFUSED, f"a header of more than {bounds.header_words} words")
    if _BOUNDARY_2231.search(line):
        raise DeliverError(CONTENT_REFUSED, "RFC 2231 boundary parameters are not accepted")
    if line[:13].lower() == b"content-type:" and _NESTED_HEADERS.search(line):
        raise DeliverError(CONTENT_REFUSED, "message/* parts are not accepted")


def _check_header_block(body: bytes, start: int, bounds: Bounds) -> int:
    """The header block the parser reads from `start` (the line after a delimiter): it
    ends at an empty line or at the first line that is not a header, as the parser's.
    Returns its length."""
    window = body[start : start + bounds.header_block_bytes + 1]
    line = b""
    for found in _LINE.finditer(window):
        text, end = found.group(1), found.group(2)
        if not end and found.end() == len(window) and len(window) > bounds.header_block_bytes:
            raise DeliverError(
                CONTENT_REFUSED, f"a header block over {bounds.header_block_bytes} bytes"
            )
        if text[:1] in (b" ", b"\t") and line:
            line += text  # a folded line continues the header
        else:
            _check_header(line, bounds)
            if not text or not _HEADER_LINE.match(text):
                return found.start()
            line = text
        if not end:
            break
    _check_header(line, bounds)
    return len(window)


def _check_shape(body: bytes, content_type: str, bounds: Bounds) -> None:
    """Bound the MIME parser's work before it runs: the number of multipart entities
    (each declares a boundary), of parts (each starts with a delimiter line, a line
    starting "--"), and every header block the parser would read (after each such line)."""
    if len(body) > bounds.body_bytes:
        raise DeliverError(CONTENT_REFUSED, f"body of {len(body)} bytes: {bounds.body_bytes} most")
    declared = content_type.encode("latin-1", "replace")
    _check_header(b"content-type: " + declared, bounds)
    header_bytes = 0
    for dash_lines, found in enumerate(_DASH_LINE.finditer(body), start=1):
        if dash_lines > bounds.dash_lines:
            raise DeliverError(CONTENT_REFUSED, f"more than {bounds.dash_lines} delimiter lines")
        after = _LINE.match(body, found.start())
        assert after is not None  # _LINE matches everywhere (an empty line at the end)
        header_bytes += _check_header_block(body, after.end(), bounds)
        if header_bytes > bounds.header_bytes:
            raise DeliverError(CONTENT_REFUSED, f"headers over {bounds.header_bytes} bytes")
    boundaries = set(_BOUNDARY.findall(declared)) | set(_BOUNDARY.findall(body))
    if len(boundaries) > bounds.multiparts or body.lower().count(b"message/") > bounds.multiparts:
        raise DeliverError(CONTENT_REFUSED, f"more than {bounds.multiparts} nested entities")
    delimiters = sum(
        body.count(b"\n--" + b) + body.startswith(b"--" + b)
        for b in {b.strip() for b in boundaries}
    )
    # One delimiter before each part, one closing delimiter per multipart.
    if delimiters > bounds.parts + 2 * bounds.multiparts:
        raise DeliverError(CONTENT_REFUSED, f"more than {bounds.parts} parts")


def _leaves(entity: EmailMessage, depth: int, bounds: Bounds) -> list[EmailMessage]:
    if entity.get_content_maintype() == "message":
        raise DeliverError(CONTENT_REFUSED, "message/* parts are not accepted")
    if not entity.is_multipart():
        return [entity]
    if depth >= bounds.depth:
        raise DeliverError(CONTENT_REFUSED, f"multiparts nested deeper than {bounds.depth}")
    return [leaf for sub in _subparts(entity) for leaf in _leaves(sub, depth + 1, bounds)]


_UNSAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._+-]")


def _filename(part: EmailMessage, number: int) -> str:
    """A name for the part that is safe in a header and a path: its own where it has one."""
    given = str(part.get("Content-Location", "") or "").strip() or (part.get_filename() or "")
    name = unquote(given).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip("._")[:100]
    return name or f"part-{number}"


def _part(part: EmailMessage, number: int, bounds: Bounds) -> MessagePart:
    data = _payload(part)
    if len(data) > bounds.part_bytes:
        raise DeliverError(
            CONTENT_REFUSED, f"part {number} of {len(data)} bytes: {bounds.part_bytes} most"
        )
    content_type = part.get_content_type()
    charset = part.get_content_charset()
    if content_type.startswith("text/") or content_type == "application/smil":
        content_type += f"; charset={_charset(f'charset={charset}') if charset else 'utf-8'}"
    return MessagePart(
        content_id=_cid(part) or f"part-{number}",
        content_type=content_type,
        filename=_filename(part, number),
        data=data,
    )


def _content(req: etree._Element, attachments: list[EmailMessage]) -> EmailMessage | None:
    """The MM: the attachment <Content href="cid:..."> names, else the only one."""
    ref = _find(req, "Content")
    href = "" if ref is None else (ref.get("href") or "").strip()
    if href:
        wanted = href.removeprefix("cid:").strip("<>")
        found = next((p for p in attachments if _cid(p) == wanted), None)
        if found is None:
            raise DeliverError(FORMAT_CORRUPT, f"the Content href {href[:100]!r} names no part")
        return found
    if len(attachments) > 1:
        raise DeliverError(VALIDATION_ERROR, "several attachments and no Content href")
    return attachments[0] if attachments else None


def _split(body: bytes, content_type: str) -> tuple[bytes, list[EmailMessage]]:
    """The SOAP envelope and the other parts of the body (none for a bare envelope)."""
    if not content_type.lower().lstrip().startswith("multipart/"):
        return body, []
    entity = _mime(body, content_type)
    parts = _subparts(entity)
    soap = _start(entity, parts)
    return _payload(soap), [p for p in parts if p is not soap]


def _version(operation: etree._Element) -> Version:
    namespace = etree.QName(operation).namespace or ""
    return "5.3.0" if namespace == NAMESPACES["5.3.0"] else "6.8.0"


def _sender(req: etree._Element) -> tuple[str, bool]:
    holder = _child(req, "Sender")
    inner = [] if holder is None else [c for c in holder if isinstance(c.tag, str)]
    text = _all_text(inner[0] if inner else holder).strip() if holder is not None else ""
    number = text.split("/TYPE=", 1)[0].strip()
    digits = phone_digits(number)  # separators, '+' and '00' as a send's recipient drops them
    if digits is None:
        raise DeliverError(VALIDATION_ERROR, f"Sender {number[:40]!r} is not a number")
    if not 3 <= len(digits) <= 15:
        raise DeliverError(VALIDATION_ERROR, f"Sender {digits[:40]!r}: 3 to 15 digits")
    return digits, number.startswith(("+", "00"))


def _date(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def parse_deliver_req(body: bytes, content_type: str, bounds: Bounds = BOUNDS) -> ReceivedDeliver:
    """A DeliverReq as the MMSC posts it. DeliverError (with the status to answer) for
    anything that is not a complete, bounded DeliverReq."""
    _check_shape(body, content_type, bounds)
    try:
        soap, attachments = _split(body, content_type)
        if len(soap) > bounds.envelope_bytes:
            raise DeliverError(
                CONTENT_REFUSED, f"SOAP envelope of {len(soap)} bytes: {bounds.envelope_bytes} most"
            )
        envelope = _read_envelope(soap)
    except DeliverError:
        raise
    except (MM7Error, ValueError, LookupError, RecursionError) as exc:
        raise DeliverError(FORMAT_CORRUPT, str(exc)[:200]) from None
    req = envelope.operation
    if etree.QName(req).localname != "DeliverReq":
        raise DeliverError(
            VALIDATION_ERROR, f"expected DeliverReq, got <{etree.QName(req).localname}>"
        )
    if not envelope.transaction_id:
        raise DeliverError(VALIDATION_ERROR, "no TransactionID in the SOAP header")
    sender, international_form = _sender(req)
    recipients = [r for r in _recipients(req) if r]
    if not recipients:
        raise DeliverError(VALIDATION_ERROR, "DeliverReq without Recipients")
    try:
        content = _content(req, attachments)
        leaves = [] if content is None else _leaves(content, 1, bounds)
        if len(leaves) > bounds.parts:
            raise DeliverError(CONTENT_REFUSED, f"{len(leaves)} parts: {bounds.parts} most")
        parts = [_part(leaf, number, bounds) for number, leaf in enumerate(leaves, start=1)]
    except DeliverError:
        raise
    except (MM7Error, ValueError, LookupError, RecursionError) as exc:
        raise DeliverError(FORMAT_CORRUPT, str(exc)[:200]) from None
    subject_element = _child(req, "Subject")
    subject = "" if subject_element is None else _all_text(subject_element).strip()
    return ReceivedDeliver(
        transaction_id=envelope.transaction_id,
        version=_version(req),
        linked_id=(_text(req, "LinkedID") or "")[:100],
        sender=sender,
        recipients=recipients[:10],
        subject=subject[: bounds.subject_chars],
        timestamp=_date(_text(req, "TimeStamp")),
        parts=parts,
        sender_international=international_form,
    )


# ---- writing -----------------------------------------------------------------------


def build_deliver_rsp(
    transaction_id: str,
    version: Version = "6.8.0",
    status_code: int = SUCCESS,
    details: str = "",
) -> bytes:
    """The DeliverRsp envelope (text/xml) answering a DeliverReq."""
    envelope, body = _envelope(version, transaction_id)
    rsp = _operation(body, "DeliverRsp", version)
    _add_status(rsp, status_code, STATUS_TEXTS.get(status_code, "Error"), details)
    return _serialize(envelope)


_SMIL_TAGS: Final = {"image": "img", "video": "video", "audio": "audio", "text": "text"}


def _smil(parts: list[MessagePart]) -> bytes:
    """One slide holding every part, as a phone's SMIL does for a picture and its text."""
    items = "".join(
        f'<{_SMIL_TAGS.get(p.content_type.split("/", 1)[0], "ref")} src="cid:{p.content_id}"/>'
        for p in parts
    )
    return (
        f'<smil><head><layout/></head><body><par dur="5000ms">{items}</par></body></smil>'.encode()
    )


def build_deliver_req(
    *,
    sender: str,
    recipient: str,
    parts: list[MessagePart],
    transaction_id: str,
    linked_id: str = "",
    subject: str = "",
    timestamp: datetime | None = None,
    version: Version = "6.8.0",
    mixed: bool = False,
) -> tuple[bytes, str]:
    """A DeliverReq as an MMSC posts it (the simulated MMSC's phone), and its Content-Type.

    The MM is multipart/related with a SMIL part first, or multipart/mixed without SMIL
    (`mixed`), as phones send either. ValueError for an invalid number or content id.
    """
    envelope, body = _envelope(version, transaction_id)
    req = _operation(body, "DeliverReq", version)
    if linked_id:
        _add(req, "LinkedID", linked_id)
    _add(_add(req, "Sender"), "Number", international(sender))
    to = _add(_add(req, "Recipients"), "To")
    number = international(recipient)
    _add(to, "ShortCode" if len(number) <= 8 else "Number", number)
    _add(req, "TimeStamp", _timestamp(timestamp or datetime.now().astimezone()))
    if subject:
        _add(req, "Subject", subject)
    _add(req, "Content").set("href", f"cid:{CONTENT_CID}")
    soap = _serialize(envelope)
    outer, inner = _boundaries(soap + b"".join(p.data for p in parts))
    # base64, as MMSCs commonly relay a phone's parts (our SubmitReq sends binary).
    mm = [
        _attachment(p.content_id, p.content_type, p.filename, p.data, "base64", inner)
        for p in parts
    ]
    if mixed:
        inner_type = f'multipart/mixed; boundary="{inner}"'
    else:
        smil_type = "application/smil; charset=utf-8"
        smil = _attachment(SMIL_CID, smil_type, "mms.smil", _smil(parts), "base64", inner)
        mm = [smil, *mm]
        inner_type = (
            f'multipart/related; type="application/smil"; start="<{SMIL_CID}>"; boundary="{inner}"'
        )
    return soap_with_attachments(soap, inner_type, _multipart(inner, mm), outer)
