"""MM7 (3GPP TS 23.140) messages: SubmitReq/Rsp and DeliveryReportReq/Rsp, built and parsed.

Pure: no network (mm7_client.py sends). The shapes follow the public worked
examples of an MMSC operator (sinch/docs, docs/mms/mm7-service/):

- SOAP 1.1. The TransactionID sits in the SOAP header with
  soap-env:mustUnderstand="1", in the MM7 namespace of the version:
  5.3.0 → .../REL-5-MM7-1-2, 6.8.0 → .../REL-6-MM7-1-4.
- A SubmitReq is multipart/related (type="text/xml", start=the SOAP part, which
  comes first). Its <Content href="cid:..."> names the second part, the MM
  itself: multipart/related with start=the SMIL part, then every message part.
- Numbers are international without '+' (the MMSC routes on the country code).

Message parts travel binary by default: MM7 runs over HTTP, which is 8-bit
clean, and base64 would add 37% to every byte sent to the carrier (the largest
item of a message's AWS cost: data transfer out, benchmarks/cost.py). A part in
which the boundary occurs goes base64 (never, short of a SHA-256 collision: the
boundary is derived from the content). `part_encoding="base64"` (the template's
Mm7PartEncoding) sends every part base64, for an MMSC or a hop that needs it.
The size estimate that adaptation targets (size × 1.37, message.air_bytes) counts
base64 either way: it is the handset's limit on the air, not this body's size.

Parsing is lenient about where namespaces are declared (operators differ) but
strict about safety: no DTD, no entities, no network (mmsapi/xml/safe.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from enum import StrEnum
from typing import Final, Literal
from urllib.parse import quote, unquote

from lxml import etree

from mmsapi.carrier.message import MessagePart, OutgoingMessage
from mmsapi.carrier.smil import build_smil
from mmsapi.records import record
from mmsapi.xml.safe import UnsafeXmlError, parse_untrusted

Version = Literal["5.3.0", "6.8.0"]
_MM7_SCHEMA: Final = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/"
NAMESPACES: Final[dict[str, str]] = {
    "5.3.0": _MM7_SCHEMA + "REL-5-MM7-1-2",
    "6.8.0": _MM7_SCHEMA + "REL-6-MM7-1-4",
}
SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
XML_CONTENT_TYPE: Final = "text/xml; charset=utf-8"

# Content-IDs of the parts we add around the message's own parts.
SOAP_CID: Final = "mm7-start"
CONTENT_CID: Final = "mm7-content"
SMIL_CID: Final = "mms.smil"
_RESERVED_CIDS: Final = frozenset({SOAP_CID, CONTENT_CID, SMIL_CID})


class MM7Error(ValueError):
    """A body that is not a well-formed MM7 message of the expected kind."""


# ---- status codes ------------------------------------------------------------


class StatusClass(StrEnum):
    """The thousands digit of an MM7 StatusCode (TS 23.140 §8.7.x)."""

    SUCCESS = "success"  # 1xxx
    CLIENT_ERROR = "client-error"  # 2xxx: our request (VASP side) is at fault
    SERVER_ERROR = "server-error"  # 3xxx: the MMSC failed
    SERVICE_ERROR = "service-error"  # 4xxx: the service is refused or unavailable
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, code: int) -> StatusClass:
        return {1: cls.SUCCESS, 2: cls.CLIENT_ERROR, 3: cls.SERVER_ERROR, 4: cls.SERVICE_ERROR}.get(
            code // 1000, cls.UNKNOWN
        )


class Action(StrEnum):
    """What the sender does with a SubmitRsp status."""

    OK = "ok"  # accepted; a delivery report follows
    RETRY = "retry"  # transient: the same submit again, with back-off
    FALLBACK = "fallback"  # this recipient cannot get this MMS: send the fallback SMS
    FAIL = "fail"  # our request or account is wrong: retrying or SMS would not help


# Codes of TS 23.140 and of the sinch/docs status list. Sinch reuses a few
# 3GPP numbers with its own meaning (3001-3003); both readings lead to the
# same action. Codes not listed take their class default (_CLASS_ACTIONS).
STATUS_TABLE: Final[dict[int, tuple[Action, str]]] = {
    1000: (Action.OK, "Success"),
    1100: (Action.OK, "Partial success"),
    2000: (Action.FAIL, "Client error"),
    2001: (Action.FAIL, "Operation restricted"),
    2002: (Action.FALLBACK, "Address error: the MMSC does not serve this number"),
    2003: (Action.FALLBACK, "Address not found"),
    2004: (Action.FALLBACK, "Multimedia content refused"),
    2005: (Action.FAIL, "Message ID not found"),
    2006: (Action.FAIL, "LinkedID not found"),
    2007: (Action.FAIL, "Message format corrupt"),
    2560: (Action.FALLBACK, "Content length exceeded maximum supported request size"),
    3000: (Action.RETRY, "Server error"),
    # Sinch: "number blacklisted, do not retry": an opted-out number gets no SMS either.
    3001: (Action.FAIL, "Not possible / number blacklisted"),
    3002: (Action.FAIL, "Message rejected / charged party not supported"),
    3003: (Action.FAIL, "Multiple addresses not supported / content download failed"),
    3004: (Action.FAIL, "Application addressing not supported"),
    3500: (Action.RETRY, "Timeout (carrier gateway)"),
    3510: (Action.RETRY, "Throughput exceeded"),
    3520: (Action.FAIL, "Provisioning issue"),
    4000: (Action.FALLBACK, "General service error: the carrier rejects the message"),
    4001: (Action.FAIL, "Improper identification"),
    4002: (Action.FAIL, "Unsupported MM7 version"),
    4003: (Action.FALLBACK, "Unsupported operation or format"),
    4004: (Action.FAIL, "Validation error"),
    # TS 23.140: "caused a server failure and should not be resent".
    4005: (Action.FAIL, "Service error"),
    4006: (Action.RETRY, "Service unavailable: carrier capacity reached"),
    4007: (Action.FALLBACK, "Service denied for the recipient"),
    4008: (Action.FAIL, "Application denied"),
}
_CLASS_ACTIONS: Final[dict[StatusClass, Action]] = {
    StatusClass.SUCCESS: Action.OK,
    StatusClass.CLIENT_ERROR: Action.FAIL,
    StatusClass.SERVER_ERROR: Action.RETRY,
    StatusClass.SERVICE_ERROR: Action.FALLBACK,
    StatusClass.UNKNOWN: Action.FAIL,
}


def action_for(code: int) -> Action:
    """The sender's action for a SubmitRsp StatusCode (STATUS_TABLE, else the class default)."""
    known = STATUS_TABLE.get(code)
    return known[0] if known else _CLASS_ACTIONS[StatusClass.of(code)]


class MMStatus(StrEnum):
    """MMStatus of a DeliveryReportReq: TS 23.140 values plus those the sinch/docs list adds."""

    RETRIEVED = "Retrieved"
    REJECTED = "Rejected"
    EXPIRED = "Expired"
    INDETERMINATE = "Indeterminate"
    FORWARDED = "Forwarded"
    DEFERRED = "Deferred"
    UNRECOGNISED = "Unrecognised"
    DELIVERY_CONDITION_NOT_MET = "DeliveryConditionNotMet"
    NOT_SUPPORTED = "NotSupported"
    UNREACHABLE = "Unreachable"


_MM_STATUS_BY_KEY: Final = {s.value.lower(): s for s in MMStatus} | {
    "unrecognized": MMStatus.UNRECOGNISED
}


# ---- results -----------------------------------------------------------------


@record
class SubmitResult:
    status_code: int
    status_text: str
    message_id: str | None = None
    transaction_id: str | None = None
    details: str = ""

    @property
    def action(self) -> Action:
        return action_for(self.status_code)


@record
class DeliveryReport:
    transaction_id: str
    message_id: str
    recipient: str
    sender: str
    mm_status: MMStatus
    mm_status_raw: str  # as sent: an unknown value becomes mm_status Indeterminate
    status_text: str
    date: datetime | None
    ua_prof: str | None
    version: str


@record
class ReceivedSubmit:
    transaction_id: str
    version: str
    vasp_id: str
    vas_id: str
    recipients: list[str]
    sender: str
    subject: str
    service_code: str
    linked_id: str | None
    delivery_report: bool
    smil: str
    parts: list[MessagePart]


# ---- writing -----------------------------------------------------------------

# Characters XML 1.0 cannot carry at all (lxml refuses them): dropped from texts. Written
# as the complement of XML's Char range: the negated range compiles 3 ms slower.
_XML_INVALID: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _default_namespace(ns: str) -> dict[str, str]:
    # lxml takes None as the default namespace's prefix; lxml-stubs do not know it.
    return {None: ns}  # type: ignore[dict-item]


def _envelope(version: str, transaction_id: str) -> tuple[etree._Element, etree._Element]:
    """An envelope with the TransactionID header, and its (empty) Body."""
    ns = NAMESPACES[version]
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap-env": SOAP_ENV})
    header = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header")
    tid = etree.SubElement(header, f"{{{ns}}}TransactionID", nsmap=_default_namespace(ns))
    tid.set(f"{{{SOAP_ENV}}}mustUnderstand", "1")
    tid.text = _clean(transaction_id)
    return envelope, etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")


def _add(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    """A child in the parent's namespace (the default one: no prefixes on MM7 elements)."""
    ns = etree.QName(parent).namespace
    child = etree.SubElement(parent, f"{{{ns}}}{name}" if ns else name)
    if text is not None:
        child.text = _clean(text)
    return child


def _operation(body: etree._Element, name: str, version: str) -> etree._Element:
    ns = NAMESPACES[version]
    element = etree.SubElement(body, f"{{{ns}}}{name}", nsmap=_default_namespace(ns))
    _add(element, "MM7Version", version)
    return element


def _add_status(parent: etree._Element, code: int, text: str, details: str = "") -> None:
    status = _add(parent, "Status")
    _add(status, "StatusCode", str(code))
    _add(status, "StatusText", text)
    if details:
        _add(status, "Details", details)


def _serialize(envelope: etree._Element) -> bytes:
    # The declaration written as the operators' examples write it (lxml uses single quotes).
    xml = etree.tostring(envelope, xml_declaration=False, encoding="UTF-8")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + xml


def international(number: str) -> str:
    """A number as MM7 wants it: digits only, country code first, no '+'."""
    digits = number.strip().removeprefix("+")
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"not an international number: {number!r}")
    return digits


def _sender_address(parent: etree._Element, sender: str) -> None:
    number = international(sender)
    # Short codes have their own element; long numbers are Numbers.
    _add(_add(parent, "SenderAddress"), "ShortCode" if len(number) <= 8 else "Number", number)


def _submit_envelope(
    *,
    version: str,
    transaction_id: str,
    recipient: str,
    sender: str,
    vasp_id: str,
    vas_id: str,
    service_code: str,
    subject: str,
    delivery_report: bool,
    linked_id: str | None,
) -> bytes:
    envelope, body = _envelope(version, transaction_id)
    req = _operation(body, "SubmitReq", version)
    ident = _add(req, "SenderIdentification")
    _add(ident, "VASPID", vasp_id)
    if vas_id:
        _add(ident, "VASID", vas_id)
    _sender_address(ident, sender)
    _add(_add(_add(req, "Recipients"), "To"), "Number", international(recipient))
    # The schema's element order: ServiceCode, LinkedID, ..., DeliveryReport, ..., Subject, Content.
    if service_code:
        _add(req, "ServiceCode", service_code)
    if linked_id:
        _add(req, "LinkedID", linked_id)
    _add(req, "DeliveryReport", "true" if delivery_report else "false")
    if subject:
        _add(req, "Subject", subject)
    content = _add(req, "Content")
    content.set("href", f"cid:{CONTENT_CID}")
    content.set("allowAdaptations", "true")
    return _serialize(envelope)


def _header_value(value: str, what: str) -> str:
    if not value.isascii() or "\r" in value or "\n" in value or not value.strip():
        raise ValueError(f"invalid {what}: {value!r}")
    return value


def _mime_part(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("ascii") + b"\r\n" + payload


def _multipart(boundary: str, parts: list[bytes]) -> bytes:
    # The CRLF before each delimiter belongs to the delimiter (RFC 2046 §5.1.1).
    mark = b"--" + boundary.encode("ascii")
    return b"".join(mark + b"\r\n" + part + b"\r\n" for part in parts) + mark + b"--\r\n"


def _base64(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


PartEncoding = Literal["binary", "base64"]


def _attachment(
    cid: str, content_type: str, filename: str, data: bytes, encoding: PartEncoding, boundary: str
) -> bytes:
    binary = encoding == "binary" and b"--" + boundary.encode("ascii") not in data
    headers = [
        ("Content-Type", _header_value(content_type, "content type")),
        ("Content-ID", f"<{_header_value(cid, 'content id')}>"),
        ("Content-Location", quote(filename, safe="._-~+()")),
        ("Content-Transfer-Encoding", "binary" if binary else "base64"),
    ]
    return _mime_part(headers, data if binary else _base64(data))


def _boundaries(seed: bytes) -> tuple[str, str]:
    # Derived from the content: the same message gives the same body (idempotent retries).
    digest = hashlib.sha256(seed).hexdigest()[:32]
    return f"=_mm7_{digest}", f"=_mm_{digest}"


def _check_parts(parts: list[MessagePart]) -> None:
    seen: set[str] = set()
    for part in parts:
        cid = part.content_id
        if cid in seen or cid in _RESERVED_CIDS or "<" in cid or ">" in cid:
            raise ValueError(f"content id {cid!r} is duplicated, reserved or invalid")
        seen.add(cid)


def build_submit_req(
    message: OutgoingMessage,
    *,
    recipient: str,
    sender: str,
    vasp_id: str,
    vas_id: str,
    service_code: str,
    transaction_id: str,
    version: Version = "6.8.0",
    delivery_report: bool = True,
    linked_id: str | None = None,
    part_encoding: PartEncoding = "binary",
) -> tuple[bytes, str]:
    """The HTTP body of an MM7 SubmitReq and its Content-Type header value.

    The subject goes into the SOAP Subject element as XML-escaped UTF-8; the
    API has already reduced it to characters carriers accept (docs/merge-tags.md#limits).
    Raises ValueError for an invalid number, content id or content type.
    """
    _check_parts(message.parts)
    smil = build_smil(message.slides, {p.content_id: p for p in message.parts})
    soap = _submit_envelope(
        version=version,
        transaction_id=transaction_id,
        recipient=recipient,
        sender=sender,
        vasp_id=vasp_id,
        vas_id=vas_id,
        service_code=service_code,
        subject=message.subject,
        delivery_report=delivery_report,
        linked_id=linked_id,
    )
    seed = hashlib.sha256(soap)
    for part in message.parts:
        seed.update(part.data)
    outer, inner = _boundaries(seed.digest())
    smil_type = "application/smil; charset=utf-8"
    mm_parts = [_attachment(SMIL_CID, smil_type, "mms.smil", smil.encode(), part_encoding, inner)]
    mm_parts += [
        _attachment(p.content_id, p.content_type, p.filename, p.data, part_encoding, inner)
        for p in message.parts
    ]
    content_type = (
        f'multipart/related; type="application/smil"; start="<{SMIL_CID}>"; boundary="{inner}"'
    )
    return soap_with_attachments(soap, content_type, _multipart(inner, mm_parts), outer)


def soap_with_attachments(
    soap: bytes, content_type: str, content: bytes, boundary: str
) -> tuple[bytes, str]:
    """The HTTP body and Content-Type of a SOAP envelope whose Content href names
    `content` (the MM, of `content_type`): multipart/related, the envelope first."""
    mm = _mime_part([("Content-Type", content_type), ("Content-ID", f"<{CONTENT_CID}>")], content)
    envelope_part = _mime_part(
        [
            ("Content-Type", 'text/xml; charset="utf-8"'),
            ("Content-ID", f"<{SOAP_CID}>"),
            ("Content-Transfer-Encoding", "8bit"),
        ],
        soap,
    )
    body = _multipart(boundary, [envelope_part, mm])
    header = f'multipart/related; type="text/xml"; boundary="{boundary}"; start="<{SOAP_CID}>"'
    return body, header


def build_submit_rsp(
    transaction_id: str,
    status_code: int,
    status_text: str,
    message_id: str | None,
    version: Version = "6.8.0",
) -> bytes:
    """A SubmitRsp envelope (text/xml), as an MMSC answers."""
    envelope, body = _envelope(version, transaction_id)
    rsp = _operation(body, "SubmitRsp", version)
    _add_status(rsp, status_code, status_text)
    if message_id:
        _add(rsp, "MessageID", message_id)
    return _serialize(envelope)


def build_fault(
    transaction_id: str,
    status_code: int,
    status_text: str,
    details: str = "",
    version: Version = "6.8.0",
) -> bytes:
    """A SOAP Fault carrying an RSErrorRsp, the way an MMSC refuses a request."""
    envelope, body = _envelope(version, transaction_id)
    fault = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    client = StatusClass.of(status_code) is StatusClass.CLIENT_ERROR
    etree.SubElement(fault, "faultcode").text = "soap-env:Client" if client else "soap-env:Server"
    etree.SubElement(fault, "faultstring").text = _clean(status_text)
    error = _operation(etree.SubElement(fault, "detail"), "RSErrorRsp", version)
    _add_status(error, status_code, status_text, details)
    return _serialize(envelope)


def _timestamp(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def build_delivery_report_req(
    *,
    transaction_id: str,
    message_id: str,
    recipient: str,
    sender: str,
    mm_status: MMStatus,
    date: datetime,
    status_text: str = "",
    ua_prof: str | None = None,
    version: Version = "6.8.0",
) -> tuple[bytes, str]:
    """A DeliveryReportReq as an MMSC posts it, and its Content-Type.

    UACapabilities exists from REL-6 on: with 5.3.0 the handset profile is not sent.
    """
    envelope, body = _envelope(version, transaction_id)
    req = _operation(body, "DeliveryReportReq", version)
    _add(req, "MessageID", message_id)
    _add(_add(req, "Recipient"), "Number", international(recipient))
    _add(_add(req, "Sender"), "Number", international(sender))
    _add(req, "Date", _timestamp(date))
    _add(req, "MMStatus", mm_status.value)
    _add(req, "StatusText", status_text or mm_status.value)
    if ua_prof and version != "5.3.0":
        _add(req, "UACapabilities").set("UAProf", _clean(ua_prof))
    return _serialize(envelope), XML_CONTENT_TYPE


def build_delivery_report_rsp(
    transaction_id: str,
    version: Version = "6.8.0",
    status_code: int = 1000,
    status_text: str = "Success",
) -> bytes:
    """The DeliveryReportRsp the MMSC expects back (StatusCode 1000: received)."""
    envelope, body = _envelope(version, transaction_id)
    rsp = _operation(body, "DeliveryReportRsp", version)
    _add_status(rsp, status_code, status_text)
    return _serialize(envelope)


# ---- reading: XML ------------------------------------------------------------

_VERSION_BY_NAMESPACE: Final = {ns: version for version, ns in NAMESPACES.items()}


def _parse_xml(data: bytes) -> etree._Element:
    try:
        return parse_untrusted(data)
    except UnsafeXmlError as exc:
        raise MM7Error(
            str(exc) if exc.syntax is None else f"invalid XML: {exc.syntax[:200]}"
        ) from None


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _children(element: etree._Element) -> list[etree._Element]:
    return [c for c in element if isinstance(c.tag, str)]


def _child(element: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in _children(element) if _local(c) == name), None)


def _find(element: etree._Element, name: str) -> etree._Element | None:
    """The first descendant called `name` in any namespace (operators nest Status differently)."""
    return next((e for e in element.iter() if isinstance(e.tag, str) and _local(e) == name), None)


def _all_text(element: etree._Element) -> str:
    return "".join(str(t) for t in element.itertext())


def _text(element: etree._Element | None, name: str) -> str | None:
    found = None if element is None else _find(element, name)
    return None if found is None else _all_text(found).strip()


@dataclass(frozen=True)
class _Envelope:
    transaction_id: str | None
    operation: etree._Element
    version: str


def _read_envelope(data: bytes) -> _Envelope:
    root = _parse_xml(data)
    if _local(root) != "Envelope":
        raise MM7Error(f"not a SOAP envelope: <{_local(root)}>")
    header = _child(root, "Header")
    body = _child(root, "Body")
    operations = [] if body is None else _children(body)
    if not operations:
        raise MM7Error("the SOAP envelope has an empty or no Body")
    operation = operations[0]
    version = _text(operation, "MM7Version") or _VERSION_BY_NAMESPACE.get(
        etree.QName(operation).namespace or "", ""
    )
    tid = _text(header, "TransactionID")
    return _Envelope(transaction_id=tid or None, operation=operation, version=version)


def _status_code(element: etree._Element) -> int | None:
    text = _text(element, "StatusCode")
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise MM7Error(f"StatusCode {text[:20]!r} is not a number") from None


def _fault_result(fault: etree._Element, transaction_id: str | None) -> SubmitResult:
    code = _status_code(fault)
    faultcode = (_text(fault, "faultcode") or "").rpartition(":")[2]
    if code is None:
        # No MM7 status: SOAP's own meaning (Server: may succeed later; Client: our fault).
        code = {"Server": 3000, "Client": 2000}.get(faultcode, 4000)
    text = _text(fault, "StatusText") or _text(fault, "faultstring") or "SOAP fault"
    return SubmitResult(
        status_code=code,
        status_text=text,
        transaction_id=transaction_id,
        details=_text(fault, "Details") or "",
    )


# ---- reading: MIME -----------------------------------------------------------


def _mime(body: bytes, content_type: str) -> EmailMessage:
    """The body as a MIME entity, with the HTTP Content-Type as its header."""
    if "\r" in content_type or "\n" in content_type or not content_type.isascii():
        raise MM7Error("invalid Content-Type header")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("ascii")
    message = BytesParser(policy=policy.default).parsebytes(head + body)
    assert isinstance(message, EmailMessage)  # what policy.default builds
    return message


def _raw_header(part: EmailMessage, name: str) -> str:
    """A header as written, unfolded (the parsed form re-quotes parameters)."""
    value = next((str(v) for k, v in part.raw_items() if k.lower() == name.lower()), "")
    return re.sub(r"\r?\n(?=[ \t])", "", value).strip()


def _cid(part: EmailMessage) -> str:
    return str(part.get("Content-ID", "")).strip().removeprefix("<").removesuffix(">")


def _subparts(entity: EmailMessage) -> list[EmailMessage]:
    if not entity.is_multipart():
        raise MM7Error(f"expected a multipart body, got {entity.get_content_type()}")
    parts = [p for p in entity.iter_parts() if isinstance(p, EmailMessage)]
    if not parts:
        raise MM7Error("multipart body without parts")
    return parts


def _start(entity: EmailMessage, parts: list[EmailMessage]) -> EmailMessage:
    """The root part of a multipart/related: the `start` parameter, else the first part."""
    start = str(entity.get_param("start", "") or "").strip().strip("<>")
    return next((p for p in parts if start and _cid(p) == start), parts[0])


def _payload(part: EmailMessage) -> bytes:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        raise MM7Error(f"unreadable part {_cid(part) or part.get_content_type()}")
    return data


def _soap_bytes(body: bytes, content_type: str) -> bytes:
    """The SOAP envelope of a plain or a multipart (SOAP-with-attachments) body."""
    multipart = content_type.lower().lstrip().startswith("multipart/")
    # Operators label bare XML multipart/related too (sinch/docs' report example does).
    if not multipart or body.lstrip(b"\xef\xbb\xbf\xff\xfe \t\r\n").startswith(b"<"):
        return body
    entity = _mime(body, content_type)
    return _payload(_start(entity, _subparts(entity)))


def _message_part(part: EmailMessage) -> MessagePart:
    cid = _cid(part)
    location = str(part.get("Content-Location", "")).strip()
    filename = unquote(location) if location else (part.get_filename() or cid)
    content_type = _raw_header(part, "Content-Type") or part.get_content_type()
    return MessagePart(
        content_id=cid, content_type=content_type, filename=filename, data=_payload(part)
    )


def _presentation(content: EmailMessage) -> tuple[str, list[MessagePart]]:
    """The SMIL text and the other parts of the MM attachment."""
    parts = _subparts(content)
    start = str(content.get_param("start", "") or "").strip().strip("<>")
    smil = next((p for p in parts if start and _cid(p) == start), None)
    smil = smil or next((p for p in parts if p.get_content_type() == "application/smil"), None)
    if smil is None:
        raise MM7Error("the MM has no SMIL part")
    for part in parts:
        if part.is_multipart():
            raise MM7Error("nested multiparts inside the MM are not supported")
    charset = str(smil.get_content_charset() or "utf-8")
    try:
        text = _payload(smil).decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise MM7Error(f"SMIL part is not {charset}: {exc}") from None
    return text, [_message_part(p) for p in parts if p is not smil]


# ---- reading: the operations -------------------------------------------------


def parse_submit_rsp(body: bytes, content_type: str) -> SubmitResult:
    """A SubmitRsp (or an MMSC's refusal: SOAP Fault, RSErrorRsp) as a SubmitResult.

    A well-formed refusal is a result, never an exception; a body that is not
    an MM7 answer at all raises MM7Error.
    """
    envelope = _read_envelope(_soap_bytes(body, content_type))
    operation, tid = envelope.operation, envelope.transaction_id
    name = _local(operation)
    if name == "Fault":
        return _fault_result(operation, tid)
    if name != "SubmitRsp" and not name.endswith("ErrorRsp"):
        raise MM7Error(f"expected SubmitRsp, got <{name}>")
    code = _status_code(operation)
    if code is None:
        raise MM7Error(f"<{name}> without StatusCode")
    return SubmitResult(
        status_code=code,
        status_text=_text(operation, "StatusText") or "",
        message_id=_text(operation, "MessageID") or None,
        transaction_id=tid,
        details=_text(operation, "Details") or "",
    )


def _address(element: etree._Element | None) -> str:
    """A Number/ShortCode/RFC2822Address, international without '+' or '/TYPE=PLMN'."""
    if element is None:
        return ""
    inner = _children(element)
    text = _all_text(inner[0] if inner else element).strip()
    return text.split("/TYPE=", 1)[0].removeprefix("+")


def _date(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def parse_delivery_report(body: bytes, content_type: str) -> DeliveryReport:
    """A DeliveryReportReq posted by the MMSC. MM7Error when it is not one."""
    envelope = _read_envelope(_soap_bytes(body, content_type))
    req = envelope.operation
    if _local(req) != "DeliveryReportReq":
        raise MM7Error(f"expected DeliveryReportReq, got <{_local(req)}>")
    message_id = _text(req, "MessageID")
    raw_status = _text(req, "MMStatus")
    if not message_id or not raw_status:
        raise MM7Error("DeliveryReportReq without MessageID or MMStatus")
    capabilities = _find(req, "UACapabilities")
    ua_prof = None if capabilities is None else capabilities.get("UAProf")
    return DeliveryReport(
        transaction_id=envelope.transaction_id or "",
        message_id=message_id,
        recipient=_address(_find(req, "Recipient")),
        sender=_address(_find(req, "Sender")),
        mm_status=_MM_STATUS_BY_KEY.get(raw_status.lower(), MMStatus.INDETERMINATE),
        mm_status_raw=raw_status,
        status_text=_text(req, "StatusText") or "",
        date=_date(_text(req, "Date")),
        ua_prof=(ua_prof or "").strip() or None,
        version=envelope.version,
    )


def _recipients(req: etree._Element) -> list[str]:
    holder = _find(req, "Recipients")
    if holder is None:
        return []
    kinds = [c for c in _children(holder) if _local(c) in ("To", "Cc", "Bcc")]
    return [_address(address) for kind in kinds for address in _children(kind)]


def parse_submit_req(body: bytes, content_type: str) -> ReceivedSubmit:
    """A SubmitReq as an MMSC receives it: envelope fields, SMIL and parts.

    MM7Error for anything that is not a complete SubmitReq with a SMIL presentation.
    """
    entity = _mime(body, content_type)
    parts = _subparts(entity)
    soap = _start(entity, parts)
    envelope = _read_envelope(_payload(soap))
    req = envelope.operation
    if _local(req) != "SubmitReq":
        raise MM7Error(f"expected SubmitReq, got <{_local(req)}>")
    if not envelope.transaction_id:
        raise MM7Error("no TransactionID in the SOAP header")
    content_ref = _find(req, "Content")
    href = "" if content_ref is None else (content_ref.get("href") or "")
    wanted = href.strip().removeprefix("cid:")
    others = [p for p in parts if p is not soap]
    content = next((p for p in others if wanted and _cid(p) == wanted), None)
    if content is None:
        raise MM7Error(f"the Content href {href!r} names no part")
    smil, message_parts = _presentation(content)
    recipients = _recipients(req)
    if not recipients:
        raise MM7Error("SubmitReq without recipients")
    ident = _find(req, "SenderIdentification")
    return ReceivedSubmit(
        transaction_id=envelope.transaction_id,
        version=envelope.version,
        vasp_id=_text(ident, "VASPID") or "",
        vas_id=_text(ident, "VASID") or "",
        recipients=recipients,
        sender=_address(None if ident is None else _find(ident, "SenderAddress")),
        subject=_all_text(s) if (s := _child(req, "Subject")) is not None else "",
        service_code=_text(req, "ServiceCode") or "",
        linked_id=_text(req, "LinkedID") or None,
        delivery_report=(_text(req, "DeliveryReport") or "").lower() in ("true", "1"),
        smil=smil,
        parts=message_parts,
    )
