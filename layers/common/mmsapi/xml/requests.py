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
                # Inner line breaks are part of the text; the white space around it
                # (a pretty-printed document's indentation) is not (docs/actions.md).
                spec.text = child.raw_text.strip()
        elif child.name == "duration" and spec.duration is None:
            spec.duration = child.text
        elif child.name == "template-id":
            spec.template_ids.append(child.text)
    return spec


def _given(root: Node, name: str) -> str | None:
    """An optional field's value; empty (`<operator-id/>`) is "not given" (docs/actions.md)."""
    return root.value(name) or None


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
        # Legacy clients' SPID (or OPERATORID) is kept unchecked for the postbacks'
        # SPID; the current dialect's is checked (E650/E651, services/send.py).
        operator_id=_given(root, "operator-id"),
        mms_id=root.value("mms-id"),
        fallback_sms_text=root.value("fallback-sms-text"),
        custom_subject=_given(root, "custom-subject"),
        custom_texts=[(c.value("slide"), c.value("value")) for c in root.all("custom-text")],
        # Merge tag names are matched case-insensitively: keep them lower case.
        data={child.tag.lower(): child.text for child in data.children} if data else {},
        ddm_force=_given(root, "ddm-force"),
        ddm_text=_given(root, "ddm-message-text"),
        ddm_subject=_given(root, "ddm-message-subject"),
        ddm_timeout=_given(root, "ddm-message-timeout"),
        client_reference=_given(root, "client-reference"),
    )
