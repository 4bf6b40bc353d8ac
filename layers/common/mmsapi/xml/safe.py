"""Hardened parsing of untrusted XML bytes: the one parser every reader uses.

No DTD, no entities, no network, no huge trees: a document with a DOCTYPE or an
ENTITY declaration is refused outright, which stops XXE and billion-laughs
before libxml2 sees them. Callers map UnsafeXmlError to their own error (E108 for
API requests, MM7Error for carrier messages).
"""

from __future__ import annotations

import re
from typing import Final

from lxml import etree

DTD_REFUSED: Final = "DTDs and entities are not accepted"

_DOCTYPE: Final = re.compile(rb"<!\s*(doctype|entity)", re.IGNORECASE)
_PARSER: Final = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


class UnsafeXmlError(ValueError):
    """Bytes that parse_untrusted refused.

    `syntax` is the parser's message when the bytes are not well-formed XML;
    None when they declare a DTD or entities (str() is then DTD_REFUSED).
    """

    def __init__(self, syntax: str | None = None) -> None:
        super().__init__(DTD_REFUSED if syntax is None else syntax)
        self.syntax = syntax


def parse_untrusted(data: bytes) -> etree._Element:
    """The root element of `data`. Raises UnsafeXmlError for a DTD, an entity or bad XML."""
    if _DOCTYPE.search(data) or _DOCTYPE.search(data.replace(b"\x00", b"")):
        raise UnsafeXmlError
    try:
        root = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise UnsafeXmlError(str(exc)) from None
    if root is None or root.getroottree().docinfo.internalDTD is not None:
        raise UnsafeXmlError
    return root
