"""The SMIL presentation of an MMS: the layout handsets use to show its slides.

The shape is the OMA MMS conformance one that every handset renders: no
namespace, no DOCTYPE, a root-layout and at most two regions, "Image" on top
(images and video) and "Text" below, then one <par dur="Ns"> per slide whose
elements point at the message parts with src="cid:...". Audio plays without a
region; objects (vCard, iCal, PDF, Passbook) are <ref> elements, which handsets
list as attachments. A region no slide uses is left out, so a text-only or
image-only message fills the screen.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from mmsapi.carrier.message import MessagePart, SlidePlan

IMAGE_REGION: Final = "Image"
TEXT_REGION: Final = "Text"
# Share of the screen for the picture when a message has both regions.
_IMAGE_SHARE: Final = 70


def _regions(slides: list[SlidePlan]) -> tuple[bool, bool]:
    has_image = any(s.image or s.video for s in slides)
    has_text = any(s.text for s in slides)
    return has_image, has_text


def _layout(head: etree._Element, has_image: bool, has_text: bool) -> None:
    layout = etree.SubElement(head, "layout")
    etree.SubElement(layout, "root-layout", width="100%", height="100%")
    image_height = _IMAGE_SHARE if has_text else 100
    if has_image:
        etree.SubElement(
            layout,
            "region",
            id=IMAGE_REGION,
            top="0%",
            left="0%",
            width="100%",
            height=f"{image_height}%",
            fit="meet",
        )
    if has_text:
        top = image_height if has_image else 0
        etree.SubElement(
            layout,
            "region",
            id=TEXT_REGION,
            top=f"{top}%",
            left="0%",
            width="100%",
            height=f"{100 - top}%",
            fit="scroll",
        )


def _media(par: etree._Element, tag: str, cid: str, region: str | None = None) -> None:
    element = etree.SubElement(par, tag, src=f"cid:{cid}")
    if region is not None:
        element.set("region", region)


def _slide(body: etree._Element, slide: SlidePlan) -> None:
    par = etree.SubElement(body, "par", dur=f"{max(slide.duration, 1)}s")
    # Visual first, then text, then sound, then attachments: the order handsets lay out.
    if slide.image:
        _media(par, "img", slide.image, IMAGE_REGION)
    if slide.video:
        _media(par, "video", slide.video, IMAGE_REGION)
    if slide.text:
        _media(par, "text", slide.text, TEXT_REGION)
    if slide.audio:
        _media(par, "audio", slide.audio)
    for cid in slide.objects:
        _media(par, "ref", cid)


def _check_references(slides: list[SlidePlan], parts: dict[str, MessagePart]) -> None:
    for number, slide in enumerate(slides, start=1):
        cids = [slide.image, slide.video, slide.text, slide.audio, *slide.objects]
        missing = [cid for cid in cids if cid and cid not in parts]
        if missing:
            raise ValueError(f"slide {number} refers to missing parts: {', '.join(missing)}")


def build_smil(slides: list[SlidePlan], parts: dict[str, MessagePart]) -> str:
    """The SMIL document of the slides; `parts` (by content id) must hold every part they use.

    Deterministic: the same slides give the same text, byte for byte.
    """
    if not slides:
        raise ValueError("a presentation needs at least one slide")
    _check_references(slides, parts)
    smil = etree.Element("smil")
    head = etree.SubElement(smil, "head")
    _layout(head, *_regions(slides))
    body = etree.SubElement(smil, "body")
    for slide in slides:
        _slide(body, slide)
    return etree.tostring(smil, encoding="unicode", pretty_print=True)
