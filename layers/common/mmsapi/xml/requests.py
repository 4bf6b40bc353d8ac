"""Read a parsed request document into the request models (dialect-free)."""

from __future__ import annotations

from mmsapi.media.types import MediaKind
from mmsapi.models import Dialect, MediaRef, SaveRequest, SendRequest, SlideSpec
from mmsapi.xml.parse import Node

# Slide child element (canonical name) -> media kind. `message-text` holding a
# <url> is a text/plain file rather than inline text.
SLIDE_MEDIA: dict[str, MediaKind] = {
    "image": MediaKind.IMAGE,
    "audio": MediaKind.AUDIO,
    "video": MediaKind.VIDEO,
    "vcard": MediaKind.VCARD,
    "ical": MediaKind.ICAL,
    "pdf": MediaKind.PDF,
    "passbook": MediaKind.PASSBOOK,
}


def _url_of(element: Node) -> str:
    url = element.value("url")
    return url if url is not None else element.text


def read_slide(number: int, slide: Node) -> SlideSpec:
    spec = SlideSpec(number=number)
    for child in slide.children:
        if child.name in SLIDE_MEDIA:
            spec.media.append(MediaRef(kind=SLIDE_MEDIA[child.name], url=_url_of(child)))
            template_id = child.value("template-id")
            if template_id is not None:
                spec.template_ids.append(template_id)
        elif child.name == "message-text":
            if child.first("url") is not None:
                spec.media.append(MediaRef(kind=MediaKind.TEXT, url=_url_of(child)))
            elif spec.text is None:
                # Line breaks are part of the text; only the ends are trimmed.
                spec.text = child.raw_text.strip("\r\n")
        elif child.name == "duration" and spec.duration is None:
            spec.duration = child.text
        elif child.name == "template-id":
            spec.template_ids.append(child.text)
    return spec


def read_save(root: Node) -> SaveRequest:
    return SaveRequest(
        name=root.value("name"),
        subject=root.value("message-subject"),
        fallback_sms_text=root.value("fallback-sms-text"),
        disable_fallback_sms=root.value("disable-fallback-sms"),
        disable_fallback_sms_link=root.value("disable-fallback-sms-link"),
        client_reference=root.value("client-reference"),
        slides=[read_slide(i, s) for i, s in enumerate(root.all("slide"), start=1)],
    )


def read_send(root: Node, dialect: Dialect) -> SendRequest:
    data = root.first("data")
    return SendRequest(
        to=root.value("to"),
        sender=root.value("from"),
        service_id=root.value("service-id"),
        # Legacy clients send OPERATORID or SPID out of habit: ignored (docs/legacy-1.3.md).
        operator_id=root.value("operator-id") if dialect is Dialect.CURRENT else None,
        mms_id=root.value("mms-id"),
        fallback_sms_text=root.value("fallback-sms-text"),
        custom_subject=root.value("custom-subject"),
        custom_texts=[(c.value("slide"), c.value("value")) for c in root.all("custom-text")],
        # Merge tag names are matched case-insensitively: keep them lower case.
        data={child.tag.lower(): child.text for child in data.children} if data else {},
        ddm_force=root.value("ddm-force"),
        ddm_text=root.value("ddm-message-text"),
        ddm_subject=root.value("ddm-message-subject"),
        ddm_timeout=root.value("ddm-message-timeout"),
        client_reference=root.value("client-reference"),
    )
