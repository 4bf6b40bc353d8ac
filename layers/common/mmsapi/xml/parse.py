"""The safe XML front door: body extraction, hardened parsing, a dialect-free tree.

No DTD, no entities, no network, no huge trees (mmsapi/xml/safe.py): a document
with a DOCTYPE is refused outright (E108), which stops XXE and billion-laughs
before libxml2 sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from lxml import etree

from mmsapi.errors import ApiError
from mmsapi.models import Dialect
from mmsapi.xml.dialect import canonical, key, root_dialect
from mmsapi.xml.layout13 import flatten
from mmsapi.xml.safe import DTD_REFUSED, UnsafeXmlError, parse_untrusted

_FORM_FIELDS = ("xml", "xmldata")
# A request has tens of elements; this bounds the cost of reading one (a body of
# `<x/>`s is 250,000 elements per MiB).
MAX_ELEMENTS = 50_000
# Attributes are ignored but these (1.3's <SLIDE duration="5">): no other is stored.
KEPT_ATTRIBUTES = frozenset({"duration"})


@dataclass
class Node:
    """An element with its canonical name; order of children is kept."""

    name: str
    raw_text: str = ""
    children: list[Node] = field(default_factory=list)
    tag: str = ""  # as written, for free-form names (merge tag data)
    # The attributes the API reads (KEPT_ATTRIBUTES), by canonical name.
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.raw_text.strip()

    def first(self, name: str) -> Node | None:
        return next((c for c in self.children if c.name == name), None)

    def all(self, name: str) -> list[Node]:
        return [c for c in self.children if c.name == name]

    def value(self, name: str) -> str | None:
        """The stripped text of the first child called `name`, or None if absent."""
        child = self.first(name)
        return None if child is None else child.text


@dataclass
class Document:
    dialect: Dialect
    root: Node

    @property
    def action(self) -> str:
        return self.root.value("action") or ""


def _looks_like_xml(body: bytes) -> bool:
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return head == b"<" or body.startswith((b"\xff\xfe", b"\xfe\xff"))


def extract_document(body: bytes, query: dict[str, str] | None = None) -> bytes:
    """The XML document of a request: the raw body, or a form/query field `xml`/`XMLDATA`."""
    if body and _looks_like_xml(body):
        return body
    fields: dict[str, list[str]] = {}
    if body:
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            fields = {}
    for name, value in (query or {}).items():
        fields.setdefault(name, [value])
    for name, values in fields.items():
        if key(name) in _FORM_FIELDS and values and values[0].strip():
            return values[0].encode("utf-8")
    raise ApiError("E100", detail="no XML document in the request")


def _attributes(element: etree._Element) -> dict[str, str]:
    kept: dict[str, str] = {}
    for written, value in element.attrib.items():
        name = canonical(etree.QName(written).localname)
        if name in KEPT_ATTRIBUTES and name not in kept:
            kept[name] = str(value)
    return kept


def _to_node(element: etree._Element) -> Node:
    tag = etree.QName(element).localname
    kids = [c for c in element if isinstance(c.tag, str)]
    attributes = _attributes(element) if element.attrib else {}
    if kids:
        children = [_to_node(c) for c in kids]
        return Node(canonical(tag), element.text or "", children, tag, attributes)
    text = "".join(str(t) for t in element.itertext())
    return Node(canonical(tag), text, tag=tag, attributes=attributes)


def parse_document(document: bytes) -> Document:
    """Parse a request document. Raises ApiError E108 (bad XML) or E100 (not a request)."""
    try:
        root = parse_untrusted(document)
    except UnsafeXmlError as exc:
        detail = DTD_REFUSED if exc.syntax is None else _short(exc.syntax)
        raise ApiError("E108", detail=detail) from None
    local = etree.QName(root).localname
    if key(local) != "request":
        raise ApiError("E100", detail="the root element must be <request>")
    # Counting in C is cheap; building a Node per element is not (~10 µs each).
    if sum(1 for _ in root.iter()) > MAX_ELEMENTS:
        raise ApiError("E100", detail=f"more than {MAX_ELEMENTS} elements")
    dialect = root_dialect(local)
    node = _to_node(root)
    # 1.3 clients may still send slides under <CONTENT><SEQUENCE> (xml/layout13.py).
    return Document(dialect, flatten(node) if dialect is Dialect.LEGACY else node)


def sniff_dialect(document: bytes) -> Dialect:
    """Best guess of the dialect of an unparseable document, for its error answer."""
    match = re.search(rb"<\s*([A-Za-z_][\w.-]*)", document[:4096])
    if match and match.group(1).decode("ascii", "replace") == "REQUEST":
        return Dialect.LEGACY
    return Dialect.CURRENT


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
