"""Random and mutated XML at the front door: always a well-formed answer, never E503."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from mmsapi.errors import CATALOGUE
from tests.conftest import Client
from tests.lambda_context import FakeLambdaContext, load_handler_module

VALID = (
    "<request><action>saveMMS</action><api-key>qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ</api-key>"
    "<message-subject>Hi {$name|you}</message-subject><name>fuzz</name>"
    "<fallback-sms-text>see</fallback-sms-text><client-reference>r</client-reference>"
    "<slide><message-text>one</message-text><duration>5</duration></slide>"
    "<slide><image><url>http://127.0.0.1:9/x.jpg</url></image></slide>"
    "<slide><vcard><url>http://10.0.0.1/c.vcf</url></vcard><message-text>c</message-text></slide>"
    "</request>"
)
TAGS = [
    "request",
    "REQUEST",
    "action",
    "api-key",
    "API_KEY",
    "slide",
    "SLIDE",
    "name",
    "message-text",
    "TEXT",
    "duration",
    "image",
    "url",
    "mms-id",
    "page-number",
    "x",
]


def check(xml: bytes) -> None:
    root = etree.fromstring(xml)
    assert root.tag in {"response", "RESPONSE"}
    fields = {c.tag.lower().replace("-", ""): c.text or "" for c in root}
    assert fields["status"] in {"Success", "Failure"}
    if fields["status"] == "Failure":
        assert fields["errorcode"] in CATALOGUE
        assert fields["errorcode"] != "E503", fields
        assert fields["errorinfo"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    text = VALID
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        span = draw(st.integers(0, 20))
        choice = draw(st.sampled_from(["delete", "insert", "duplicate", "case"]))
        if choice == "delete":
            text = text[:at] + text[at + span :]
        elif choice == "insert":
            text = text[:at] + draw(st.text(max_size=12)) + text[at:]
        elif choice == "duplicate":
            text = text[:at] + text[at : at + span] * 2 + text[at + span :]
        else:
            text = text[:at] + text[at : at + span].swapcase() + text[at + span :]
    return (
        text.encode("utf-8", "surrogatepass")
        if draw(st.booleans())
        else text.encode("utf-8", "replace")
    )


def elements(depth: int = 3) -> st.SearchStrategy[Any]:
    leaf = st.tuples(st.sampled_from(TAGS), st.text(max_size=30))
    return st.recursive(
        leaf,
        lambda kids: st.tuples(st.sampled_from(TAGS), st.lists(kids, max_size=4)),
        max_leaves=12,
    )


def to_xml(node: Any) -> etree._Element:
    tag, content = node
    element = etree.Element(tag)
    if isinstance(content, str):
        element.text = "".join(ch for ch in content if ch.isprintable())
    else:
        for kid in content:
            element.append(to_xml(kid))
    return element


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(body=st.binary(max_size=600))
def test_random_bytes(client: Client, body: bytes) -> None:
    check(client.post(body))


@FUZZ
@given(body=mutated())
def test_mutated_valid_requests(client: Client, body: bytes) -> None:
    check(client.post(body))


@FUZZ
@given(tree=elements())
def test_random_element_trees(client: Client, tree: Any) -> None:
    check(client.post(etree.tostring(to_xml(("request", [("api-key", client.api_key), tree])))))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=300), encoded=st.booleans(), form=st.booleans())
def test_lambda_handler_always_answers_200_xml(
    client: Client, body: bytes, encoded: bool, form: bool
) -> None:
    # Given any body, raw or base64, possibly as a form post
    handler = load_handler_module("api").handler
    payload = b"xml=" + body if form else body
    event = {
        "version": "2.0",
        "rawPath": "/ep/v1/",
        "body": base64.b64encode(payload).decode() if encoded else payload.decode("latin-1"),
        "isBase64Encoded": encoded,
        "requestContext": {"http": {"method": "POST", "sourceIp": "203.0.113.9"}},
    }
    # When the Lambda handler answers
    result = handler(event, FakeLambdaContext())
    # Then it is HTTP 200 with a well-formed XML answer
    assert result["statusCode"] == 200
    check(result["body"].encode("utf-8"))
