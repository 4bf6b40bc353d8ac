"""The front door reads at most MAX_ELEMENTS elements: the cost of a request is bounded."""

from __future__ import annotations

import pytest

from mmsapi.errors import ApiError
from mmsapi.xml.parse import MAX_ELEMENTS, parse_document


def test_a_request_of_many_elements_is_refused_before_it_is_read() -> None:
    # Given a request of 200,000 empty elements (800 KB)
    body = b"<request><action>deleteMMSID</action>" + b"<x/>" * 200_000 + b"</request>"
    # When it is parsed, Then it is E100, naming the limit
    with pytest.raises(ApiError) as refused:
        parse_document(body)
    assert refused.value.code == "E100"
    assert str(MAX_ELEMENTS) in refused.value.info


def test_ten_thousand_slides_are_still_read() -> None:
    body = b"<request>" + b"<slide><message-text>x</message-text></slide>" * 10_000 + b"</request>"
    assert len(parse_document(body).root.all("slide")) == 10_000
