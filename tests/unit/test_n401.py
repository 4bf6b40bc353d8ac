"""N401 (an MMS a phone sent) against both dialects' grammars: every field there, origin
MMS_MO, one file per part; a misshapen one is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from mmsapi.models import Dialect
from mmsapi.services.postback import build_postback
from mmsapi.xml.dialect import written

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
FIELDS: dict[str, Any] = {
    "from": "14082257140",
    "to": "28444",
    "keyword": "",
    "tracking-id": "MMS_MO_0123456789abcdef",
    "operator-id": "",
    "timestamp": "2026-11-26T07:27:34+00:00",
    "message-subject": "",
    "content": [],
}


def grammar(dialect: Dialect) -> etree.RelaxNG:
    return etree.RelaxNG(file=str(SCHEMAS / dialect.value / "postback.rng"))


@pytest.mark.parametrize("dialect", list(Dialect))
def test_an_n401_with_nothing_known_is_valid_with_empty_fields(dialect: Dialect) -> None:
    root = etree.fromstring(build_postback({"code": "N401", "fields": FIELDS}, dialect))
    assert grammar(dialect).validate(root), grammar(dialect).error_log
    assert root.findtext(written("origin", dialect)) == "MMS_MO"
    assert root.find(written("content", dialect)) is not None
    assert root.findtext(written("keyword", dialect)) == ""


@pytest.mark.parametrize("dialect", list(Dialect))
@pytest.mark.parametrize("missing", ["keyword", "message-subject", "content", "tracking-id"])
def test_an_n401_without_a_field_is_refused(dialect: Dialect, missing: str) -> None:
    root = etree.fromstring(build_postback({"code": "N401", "fields": FIELDS}, dialect))
    element = root.find(written(missing, dialect))
    assert element is not None
    root.remove(element)
    assert not grammar(dialect).validate(root)


@pytest.mark.parametrize("dialect", list(Dialect))
def test_an_n401_told_as_mt_is_refused(dialect: Dialect) -> None:
    root = etree.fromstring(build_postback({"code": "N401", "fields": FIELDS}, dialect))
    origin = root.find(written("origin", dialect))
    assert origin is not None
    origin.text = "MMS_MT"
    assert not grammar(dialect).validate(root)
