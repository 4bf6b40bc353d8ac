"""The SMIL presentation: layout regions, one <par> per slide, cid: references."""

from __future__ import annotations

import pytest
from lxml import etree

from mmsapi.carrier.message import MessagePart, SlidePlan
from mmsapi.carrier.smil import build_smil


def parts(*cids: str) -> dict[str, MessagePart]:
    return {
        cid: MessagePart(
            content_id=cid, content_type="application/octet-stream", filename=cid, data=b"x"
        )
        for cid in cids
    }


def tree(smil: str) -> etree._Element:
    return etree.fromstring(smil.encode())


def attributes(element: etree._Element) -> dict[str, str]:
    return {str(k): str(v) for k, v in element.attrib.items()}


def regions(smil: str) -> dict[str, dict[str, str]]:
    return {r.get("id", ""): attributes(r) for r in tree(smil).iter("region")}


def slide_elements(smil: str) -> list[list[tuple[str, dict[str, str]]]]:
    return [[(str(e.tag), attributes(e)) for e in par] for par in tree(smil).iter("par")]


def test_image_and_text_exactly() -> None:
    # Given a slide with an image and a text
    slides = [SlidePlan(duration=5, image="s1.jpg", text="s1.txt")]

    # When the SMIL is built
    smil = build_smil(slides, parts("s1.jpg", "s1.txt"))

    # Then it is the handset layout: Image on top, Text below, one timed <par>
    assert smil == (
        "<smil>\n"
        "  <head>\n"
        "    <layout>\n"
        '      <root-layout width="100%" height="100%"/>\n'
        '      <region id="Image" top="0%" left="0%" width="100%" height="70%" fit="meet"/>\n'
        '      <region id="Text" top="70%" left="0%" width="100%" height="30%" fit="scroll"/>\n'
        "    </layout>\n"
        "  </head>\n"
        "  <body>\n"
        '    <par dur="5s">\n'
        '      <img src="cid:s1.jpg" region="Image"/>\n'
        '      <text src="cid:s1.txt" region="Text"/>\n'
        "    </par>\n"
        "  </body>\n"
        "</smil>\n"
    )


def test_video_and_text_use_the_image_region() -> None:
    # Given a video slide with a caption
    slides = [SlidePlan(duration=12, video="clip.3gp", text="caption.txt")]

    # When the SMIL is built
    smil = build_smil(slides, parts("clip.3gp", "caption.txt"))

    # Then the video plays in the Image region and the text sits below
    assert slide_elements(smil) == [
        [
            ("video", {"src": "cid:clip.3gp", "region": "Image"}),
            ("text", {"src": "cid:caption.txt", "region": "Text"}),
        ]
    ]
    assert tree(smil).find("body/par").get("dur") == "12s"  # type: ignore[union-attr]


def test_audio_and_image_without_text_fill_the_screen() -> None:
    # Given slides with pictures and sound but no text at all
    slides = [SlidePlan(duration=8, image="a.jpg", audio="a.amr"), SlidePlan(image="b.jpg")]

    # When the SMIL is built
    smil = build_smil(slides, parts("a.jpg", "a.amr", "b.jpg"))

    # Then there is only the Image region, full height, and audio has no region
    assert regions(smil) == {
        "Image": {
            "id": "Image",
            "top": "0%",
            "left": "0%",
            "width": "100%",
            "height": "100%",
            "fit": "meet",
        }
    }
    assert slide_elements(smil) == [
        [("img", {"src": "cid:a.jpg", "region": "Image"}), ("audio", {"src": "cid:a.amr"})],
        [("img", {"src": "cid:b.jpg", "region": "Image"})],
    ]
    assert [p.get("dur") for p in tree(smil).iter("par")] == ["8s", "10s"]


def test_objects_are_refs() -> None:
    # Given a slide with a text and two attachments (vCard, iCal)
    slides = [SlidePlan(text="t.txt", objects=["card.vcf", "event.ics"])]

    # When the SMIL is built
    smil = build_smil(slides, parts("t.txt", "card.vcf", "event.ics"))

    # Then the attachments are <ref> elements, and text alone fills the screen
    assert slide_elements(smil) == [
        [
            ("text", {"src": "cid:t.txt", "region": "Text"}),
            ("ref", {"src": "cid:card.vcf"}),
            ("ref", {"src": "cid:event.ics"}),
        ]
    ]
    assert regions(smil)["Text"]["top"] == "0%"
    assert regions(smil)["Text"]["height"] == "100%"
    assert "Image" not in regions(smil)


def test_output_is_deterministic_and_escaped() -> None:
    # Given a content id with characters XML must escape
    slides = [SlidePlan(image='a&b"<c>.jpg')]
    given = parts('a&b"<c>.jpg')

    # When the SMIL is built twice
    first, second = build_smil(slides, given), build_smil(slides, given)

    # Then both are identical, well-formed, and keep the id
    assert first == second
    assert tree(first).find("body/par/img").get("src") == 'cid:a&b"<c>.jpg'  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("slides", "message"),
    [
        ([], "at least one slide"),
        ([SlidePlan(image="gone.jpg")], "slide 1 refers to missing parts: gone.jpg"),
    ],
)
def test_refuses_empty_or_dangling(slides: list[SlidePlan], message: str) -> None:
    # Given no slides, or a slide naming a part that does not exist
    # When / Then building fails with a clear reason
    with pytest.raises(ValueError, match=message):
        build_smil(slides, parts("other.jpg"))
