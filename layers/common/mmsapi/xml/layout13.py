"""The older request layout that the Skycore 1.3 edition still took (docs/legacy-1.3.md).

    <REQUEST>…<SUBJECT>…</SUBJECT>
      <CONTENT><NAME>…</NAME>
        <SEQUENCE><SLIDE duration="5"><IMAGE><URL>…</URL></IMAGE><TEXT>…</TEXT></SLIDE>…</SEQUENCE>
      </CONTENT></REQUEST>

is read as the flat layout: <CONTENT> is replaced, where it stands, by its NAME and
the SLIDEs of its SEQUENCEs, so both layouts become the same typed request and meet
the same checks and error codes. A SLIDE's `duration` attribute becomes a DURATION
after its children: a DURATION element, when both are given, wins.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmsapi.xml.parse import Node


def _slide(slide: Node) -> Node:
    duration = slide.attributes.get("duration")
    if duration is None:
        return slide
    element = replace(slide, name="duration", raw_text=duration, children=[], attributes={})
    return replace(slide, children=[*slide.children, element])


def flatten(root: Node) -> Node:
    """A legacy request's root with the 1.3 <CONTENT> layout read as the flat one."""
    children: list[Node] = []
    for child in root.children:
        if child.name == "slide":
            children.append(_slide(child))
        elif child.name != "content":
            children.append(child)
        else:
            for part in child.children:
                if part.name == "name":
                    children.append(part)
                elif part.name == "sequence":
                    children.extend(_slide(s) for s in part.all("slide"))
    return replace(root, children=children)
