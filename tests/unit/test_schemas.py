"""The current-dialect schemas (schemas/current/): what they accept and what they refuse.

Answers and postbacks are made by the production code (render, the postback builders)
and must validate; a misspelt or missing element must not. The request examples of
the documents validate against the request grammars. (tests/schema_check.py also
validates every answer and postback of the whole suite as it is made.)
"""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

import pytest
from lxml import etree

from mmsapi import records
from mmsapi.errors import CATALOGUE, ApiError
from mmsapi.models import Dialect, Send, Template, TemplateStatus
from mmsapi.services import deliver, report, sweep
from mmsapi.services.announce import (
    FAILURE_CODES,
    SEND_FAILURE_CODES,
    failure_postback,
    ready_postback,
    send_postback,
)
from mmsapi.services.ddm import DDM_DETAILS
from mmsapi.services.postback import build_postback
from mmsapi.services.send import STATUS_DETAILS
from mmsapi.store.outbox import Postback
from mmsapi.tracking import tracking_id
from mmsapi.xml.render import Field, failure, response
from tests.schema_check import HARNESS, SCHEMAS, Harness, problems, schema_path, validate

CURRENT = SCHEMAS / "current"
ANSWER = CURRENT / "answer.rng"
POSTBACK = CURRENT / "postback.rng"
ACTIONS = ("saveMMS", "sendSavedMMS", "sendMMS", "deleteMMSID", "getMMSTemplates")
# Grammars without a start of their own (included by the others).
LIBRARIES = {"common.rng", "request-fields.rng"}


def send(**changes: object) -> Send:
    values: dict[str, object] = {
        "send_id": 597879,
        "account_id": "demo",
        "mms_id": 35674,
        "to": "14044790000",
        "sender": "28444",
        "requested_from": "28444",
        "service_id": "12345",
        "client_reference": "order-17",
    }
    return records.load(Send, {**values, **changes})


def template(**changes: object) -> Template:
    values: dict[str, object] = {
        "mms_id": 35674,
        "account_id": "demo",
        "name": "FuelTheFire",
        "status": TemplateStatus.READY,
        "slides": [],
    }
    return records.load(Template, {**values, **changes})


def current(postback: Postback) -> bytes:
    return build_postback(postback.detail, Dialect.CURRENT)


# ---- the grammars ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path", sorted(p for p in CURRENT.glob("*.rng") if p.name not in LIBRARIES), ids=str
)
def test_every_grammar_compiles(path: Path) -> None:
    assert isinstance(etree.RelaxNG(etree.parse(str(path))), etree.RelaxNG)


def test_there_is_a_request_grammar_per_action_and_the_harness_finds_answers_and_postbacks() -> (
    None
):
    assert all((CURRENT / f"{action}.rng").is_file() for action in ACTIONS)
    assert schema_path(Dialect.CURRENT, "answer") == ANSWER
    assert schema_path(Dialect.CURRENT, "postback") == POSTBACK


# ---- answers --------------------------------------------------------------------

SEND_ANSWER: list[Field] = [
    ("mms-id", "35674"),
    ("tracking-id", tracking_id(597879)),
    ("to", "14044790000"),
    ("from", "28444"),
    ("status-details", STATUS_DETAILS),
]
TEMPLATES_ANSWER: list[Field] = [
    ("start-date", "2024-01-01 00:00:00"),
    ("page-number", "1"),
    ("items-per-page", "100"),
    ("total-results", "2"),
    *[
        (
            "mms-template",
            [
                ("mms-id", str(mms_id)),
                ("mms-name", "FuelTheFire"),
                ("mms-subject", subject),
                ("date-created", "2024-03-05 10:11:12"),
                ("total-slides", "2"),
                ("mms-size", "48213"),
            ],
        )
        for mms_id, subject in ((35675, "The subject"), (35674, ""))
    ],
]


@pytest.mark.parametrize(
    "fields",
    [
        [("mms-id", "35674")],  # saveMMS, deleteMMSID
        [("mms-id", str(2**63 - 1))],
        SEND_ANSWER,  # sendSavedMMS, sendMMS
        TEMPLATES_ANSWER,  # getMMSTemplates
        [
            ("start-date", ""),
            ("page-number", "3"),
            ("items-per-page", "1000"),
            ("total-results", "0"),
        ],
    ],
    ids=["saved", "largest-id", "sent", "templates", "templates-empty-page"],
)
def test_success_answers_validate(fields: list[Field]) -> None:
    validate(response(fields, Dialect.CURRENT), ANSWER)


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_failure_of_the_catalogue_validates_with_and_without_to(code: str) -> None:
    error = ApiError(code, x=3)
    validate(failure(error, Dialect.CURRENT), ANSWER)
    validate(failure(error, Dialect.CURRENT, to="14044790000"), ANSWER)
    validate(failure(error, Dialect.CURRENT, to=""), ANSWER)


SPEC_ANSWERS = {
    # 000: saveMMS success and failure.
    "saveMMS-success": """<response>
    <status>Success</status>
    <mms-id>35674</mms-id>
</response>""",
    "saveMMS-failure": """<response>
    <status>Failure</status>
    <error-code>E111</error-code>
    <error-info>Invalid shortcode</error-info>
</response>""",
    # 002 and 003: sendSavedMMS success and failure.
    "sendSavedMMS-success": """<response>
    <status>Success</status>
    <mms-id>35674</mms-id>
    <tracking-id>TU1TXzU5Nzg3OQ==</tracking-id>
    <to>14044790000</to>
    <from>28444</from>
    <status-details>MMS request accepted and queued for delivery</status-details>
</response>""",
    "sendSavedMMS-failure": """<response>
    <status>Failure</status>
    <error-code>E713</error-code>
    <to>14044790000</to>
    <error-info>There is billing problem on your account</error-info>
</response>""",
}


# The documents' billing failure: a code this deployment never answers (it bills
# nothing), so not in the catalogue nor the grammars' error-code enumeration.
NEVER_ANSWERED = "E713"


@pytest.mark.parametrize("name", sorted(SPEC_ANSWERS))
def test_the_answer_examples_of_the_documents_validate(name: str) -> None:
    document = SPEC_ANSWERS[name]
    if NEVER_ANSWERED in document:
        # It is refused for its code alone: with a catalogue code it validates
        assert NEVER_ANSWERED not in CATALOGUE
        _messages(document.encode(), ANSWER)
        document = document.replace(NEVER_ANSWERED, "E104")
    validate(document.encode(), ANSWER)


def _messages(document: bytes, path: Path) -> str:
    found = problems(document, path)
    assert found, "expected the schema to refuse the document"
    return "\n".join(found)


@pytest.mark.parametrize(
    ("document", "wrong"),
    [
        # misspelt elements
        ("<response><status>Success</status><mms_id>35674</mms_id></response>", "mms_id"),
        ("<response><status>Success</status><mmsid>35674</mmsid></response>", "mmsid"),
        (
            "<response><status>Success</status><mms-id>35674</mms-id>"
            "<trackingid>TU1TXzU5Nzg3OQ==</trackingid><to>14044790000</to><from>28444</from>"
            "<status-details>MMS request accepted and queued for delivery</status-details>"
            "</response>",
            "trackingid",
        ),
        ("<Response><status>Success</status><mms-id>1</mms-id></Response>", "Response"),
        # an element left out
        (
            "<response><status>Success</status><mms-id>35674</mms-id><to>14044790000</to>"
            "<from>28444</from><status-details>MMS request accepted and queued for delivery"
            "</status-details></response>",
            "tracking-id",
        ),
        ("<response><status>Failure</status><error-code>E104</error-code></response>", "info"),
        ("<response><status>Success</status></response>", "mms-id"),
        # an element too many, a wrong value, a wrong order
        (
            "<response><status>Success</status><mms-id>1</mms-id><mms-id>2</mms-id></response>",
            "mms-id",
        ),
        ("<response><status>OK</status><mms-id>35674</mms-id></response>", "status"),
        ("<response><status>Success</status><mms-id>0</mms-id></response>", "mms-id"),
        ("<response><status>Success</status><mms-id>+35674</mms-id></response>", "mms-id"),
        (
            "<response><status>Failure</status><error-info>x</error-info>"
            "<error-code>E104</error-code></response>",
            "error",
        ),
    ],
    ids=[
        "mms_id",
        "mmsid",
        "trackingid",
        "root-case",
        "no-tracking-id",
        "no-error-info",
        "no-mms-id",
        "mms-id-twice",
        "status-value",
        "mms-id-zero",
        "mms-id-sign",
        "failure-order",
    ],
)
def test_answers_with_a_misspelt_missing_or_extra_element_are_refused(
    document: str, wrong: str
) -> None:
    messages = _messages(document.encode(), ANSWER)
    assert "schemas/current/answer.rng, line " in messages


def test_a_refusal_names_the_schema_and_the_line_of_the_element_at_fault() -> None:
    document = b"<response><status>Success</status><mms_id>35674</mms_id></response>"
    messages = _messages(document, ANSWER)
    # re-indented: line 1 <response>, 2 <status>, 3 <mms_id>
    assert "schemas/current/answer.rng, line 3:" in messages
    assert "    3   <mms_id>35674</mms_id>" in messages


# ---- postbacks ------------------------------------------------------------------


def _send_postbacks() -> dict[str, Postback]:
    """One postback of every (code, status) the production code tells about a send."""
    made: dict[str, Postback] = {
        "N101-MMS": send_postback(send(), "N101", deliver.SENT, sent_as="MMS"),
        "N101-SMS": send_postback(
            send(), "N101", deliver.SENT, sent_as="SMS", details="handset cannot take MMS"
        ),
        "E101": send_postback(send(), "E101", deliver.FAILED, details=deliver.NOT_PROVISIONED),
        "E999": send_postback(send(), "E999", deliver.FAILED, details="delivery was interrupted"),
        "E999-no-reference": send_postback(
            send(client_reference=""), "E999", sweep.FAILED, details=sweep.TOO_LONG
        ),
        "N102-handset": send_postback(
            send(operator_id="310410"),
            report.DELIVERED.code,
            report.DELIVERED.status,
            handset="Apple iPhone",
        ),
        "N102": send_postback(send(), report.DELIVERED.code, report.DELIVERED.status),
        "N202": send_postback(send(), report.SMS_DELIVERED.code, report.SMS_DELIVERED.status),
        "E202": send_postback(send(), report.SMS_FAILED.code, report.SMS_FAILED.status),
        "E102-expired-sweep": send_postback(send(), "E102", sweep.EXPIRED, details="no report"),
        "E202-expired-sweep": send_postback(send(), "E202", sweep.EXPIRED, details="no report"),
        "N501": send_postback(send(), "N501", "Message Sent", sent_as="MMS", details=DDM_DETAILS),
        "N502": send_postback(
            send(), "N502", "Message Sent/Delivered", details=DDM_DETAILS, handset="Pixel 8"
        ),
        "E501": send_postback(send(), "E501", "Message Failed", details=DDM_DETAILS),
        "E502": send_postback(send(), "E502", "Message Sent/Failed", details=DDM_DETAILS),
        "E012-template-gone": send_postback(
            send(), "E012", sweep.FAILED, details=sweep.TEMPLATE_GONE
        ),
        "E013-template-gone": send_postback(
            send(), "E013", sweep.FAILED, details=sweep.TEMPLATE_GONE
        ),
    }
    for outcome in report.MM7_OUTCOMES.values():
        failed = outcome.code != report.DELIVERED.code  # E102 tells the carrier's reason
        made[f"{outcome.code}-{outcome.status}"] = send_postback(
            send(), outcome.code, outcome.status, details="Rejected" if failed else None
        )
    return made


def _template_postbacks() -> dict[str, Postback]:
    url = "http://www.yoursite.com/audio/1.mp3"
    addressing = {"tracking-id": tracking_id(597879), "to": "14044790000", "from": "28444"}
    made = {
        "N003": ready_postback(template()),
        "N003-reference": ready_postback(template(client_reference="batch 7")),
    }
    for kind, (code, _) in FAILURE_CODES.items():
        made[code] = failure_postback(template(), kind, url)
    for kind, code in SEND_FAILURE_CODES.items():  # sendMMS encodes audio and video only
        made[code] = failure_postback(template(), kind, url, dict(addressing))
    return made


ALL_POSTBACKS = {**_send_postbacks(), **_template_postbacks()}


@pytest.mark.parametrize("name", sorted(ALL_POSTBACKS))
def test_every_postback_the_code_makes_validates(name: str) -> None:
    validate(current(ALL_POSTBACKS[name]), POSTBACK)


def test_the_postback_examples_cover_every_code_of_the_documents() -> None:
    codes = {postback.detail["code"] for postback in ALL_POSTBACKS.values()}
    documented = {"N003", "E002", "E003", "E004", "E012", "E013", "N101", "N102", "E101"}
    documented |= {"E102", "N202", "E202", "N501", "N502", "E501", "E502", "E999"}
    assert codes == documented


SPEC_POSTBACKS = {
    # the examples of the postback pages of the public documents (docs/postbacks.md)
    "N003": "<postback><origin>MMS_MT</origin><code>N003</code><mms-id>35674</mms-id></postback>",
    "E002": (
        "<postback><origin>MMS_MT</origin><code>E002</code><mms-id>35674</mms-id>"
        "<audio-name>http://www.yoursite.com/audio/1.mp3</audio-name></postback>"
    ),
    "N101": (
        "<postback><origin>MMS_MT</origin><code>N101</code><sent-as>MMS</sent-as>"
        "<status>Message Sent</status><mms-id>35674</mms-id><from>28444</from>"
        "<to>14044790000</to><tracking-id>TU1TXzU5Nzg3OQ==</tracking-id>"
        "<operator-id></operator-id><timestamp>2014-06-07T07:27:29-05:00</timestamp>"
        "</postback>"
    ),
}


@pytest.mark.parametrize("name", sorted(SPEC_POSTBACKS))
def test_the_postback_examples_of_the_documents_validate(name: str) -> None:
    validate(SPEC_POSTBACKS[name].encode(), POSTBACK)


N102 = (
    "<postback><origin>MMS_MT</origin><code>N102</code>"
    "<status>Message Sent/Delivered</status><mms-id>35674</mms-id><from>28444</from>"
    "<to>14044790000</to><tracking-id>TU1TXzU5Nzg3OQ==</tracking-id>"
    "<operator-id>310410</operator-id><timestamp>2014-06-07T07:27:29-05:00</timestamp>"
    "<handset>Apple iPhone</handset></postback>"
)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "<tracking-id>TU1TXzU5Nzg3OQ==</tracking-id>",
            "<trackingid>TU1TXzU5Nzg3OQ==</trackingid>",
        ),
        ("<mms-id>35674</mms-id>", "<mms_id>35674</mms_id>"),
        ("<timestamp>2014-06-07T07:27:29-05:00</timestamp>", ""),
        ("<origin>MMS_MT</origin>", ""),
        ("Message Sent/Delivered", "Message Failed"),  # not the status of N102
        ("<code>N102</code>", "<code>N202</code>"),  # N202 has no handset
        ("<code>N102</code>", "<code>N999</code>"),
        ("2014-06-07T07:27:29-05:00", "2014-06-07 07:27:29"),
        ("<to>14044790000</to>", "<to>+1 404 479 0000</to>"),
        ("<handset>Apple iPhone</handset>", "<handset>Apple iPhone</handset><carrier>x</carrier>"),
    ],
    ids=[
        "trackingid",
        "mms_id",
        "no-timestamp",
        "no-origin",
        "wrong-status",
        "handset-on-N202",
        "unknown-code",
        "timestamp-format",
        "to-format",
        "extra-element",
    ],
)
def test_postbacks_with_a_misspelt_missing_or_extra_element_are_refused(old: str, new: str) -> None:
    validate(N102.encode(), POSTBACK)  # the document changed below is valid
    assert old in N102
    messages = _messages(N102.replace(old, new).encode(), POSTBACK)
    assert "schemas/current/postback.rng, line " in messages


def test_a_client_reference_longer_than_64_characters_is_refused() -> None:
    document = SPEC_POSTBACKS["N003"].replace(
        "</postback>", f"<client-reference>{'r' * 65}</client-reference></postback>"
    )
    _messages(document.encode(), POSTBACK)
    validate(document.replace("r" * 65, "r" * 64).encode(), POSTBACK)


RNG = "http://relaxng.org/ns/structure/1.0"


def grammar_texts(path: Path, xpath: str) -> list[str]:
    found = etree.parse(str(path)).xpath(xpath, namespaces={"rng": RNG})
    assert isinstance(found, list)
    return [str(text) for text in found]


def without(postback: Postback, name: str) -> bytes:
    """The current-dialect postback with its element `name` taken out."""
    root = etree.fromstring(current(postback))
    [element] = [e for e in root if e.tag == name]
    root.remove(element)
    return bytes(etree.tostring(root))


@pytest.mark.parametrize("name", ["N101-SMS", "E101", "E999", "E102-Message Sent/Rejected"])
def test_a_fallback_or_failure_without_its_reason_is_refused(name: str) -> None:
    # Given a postback the code always gives a reason (deliver, report, sweep)
    postback = ALL_POSTBACKS[name]
    validate(current(postback), POSTBACK)
    # When its status-details is taken out, Then the grammar refuses it
    _messages(without(postback, "status-details"), POSTBACK)


def test_an_mms_sent_as_mms_needs_no_reason() -> None:
    validate(current(ALL_POSTBACKS["N101-MMS"]), POSTBACK)
    assert b"status-details" not in current(ALL_POSTBACKS["N101-MMS"])


def test_empty_client_reference_and_file_name_are_refused() -> None:
    # Given valid postbacks with a client reference and a failed file's name
    with_reference = current(ALL_POSTBACKS["N003-reference"])
    failed = current(ALL_POSTBACKS["E002"])
    validate(with_reference, POSTBACK)
    validate(failed, POSTBACK)
    # When the values are empty, Then the grammar refuses them
    for document, name in ((with_reference, "client-reference"), (failed, "audio-name")):
        root = etree.fromstring(document)
        [element] = [e for e in root if e.tag == name]
        element.text = None
        _messages(bytes(etree.tostring(root)), POSTBACK)


def test_the_tracking_id_pattern_is_exactly_what_tracking_writes() -> None:
    # Given the grammar's pattern (XSD regexes are anchored, as fullmatch)
    pattern = grammar_texts(
        CURRENT / "common.rng", "//rng:define[@name='tracking-id.type']//rng:param/text()"
    )[0]
    # Then every id tracking.py writes matches: 1 to 19 digits
    for send_id in (1, 9, 10, 99, 100, 597879, 1234567, 10**17, 2**63 - 1):
        assert re.fullmatch(pattern, tracking_id(send_id)), send_id
    # And base64 of anything but MMS_<digits> does not
    for raw in ("MMS_", "MMS_1a", "MMS_12:", "MMS_-1", "MMS_1 ", "SMS_12", "MMS_" + "1" * 20):
        assert not re.fullmatch(pattern, base64.b64encode(raw.encode()).decode()), raw
    assert not re.fullmatch(pattern, tracking_id(597879).rstrip("="))


def error_code_define() -> str:
    """The grammars' error-code.type, generated from the catalogue (python -m
    tests.unit.test_schemas writes it into both dialects' common.rng)."""
    values = "\n".join(f'      <value type="string">{code}</value>' for code in CATALOGUE)
    return f'  <define name="error-code.type">\n    <choice>\n{values}\n    </choice>\n  </define>'


ERROR_CODE_DEFINE = re.compile(r'  <define name="error-code.type">.*?</define>', re.S)


@pytest.mark.parametrize("dialect", list(Dialect), ids=lambda d: d.value)
def test_the_error_code_enumeration_is_the_catalogue(dialect: Dialect) -> None:
    path = SCHEMAS / dialect.value / "common.rng"
    values = grammar_texts(path, "//rng:define[@name='error-code.type']//rng:value/text()")
    assert values == list(CATALOGUE), f"regenerate: python -m tests.unit.test_schemas ({path})"
    assert ERROR_CODE_DEFINE.search(path.read_text())


def test_an_answer_with_a_code_outside_the_catalogue_is_refused() -> None:
    document = failure(ApiError("E104"), Dialect.CURRENT)
    assert b"<error-code>E104</error-code>" in document
    # Given a code of the right shape that the catalogue does not have
    assert "E000" not in CATALOGUE
    _messages(document.replace(b"<error-code>E104<", b"<error-code>E000<"), ANSWER)


# ---- requests -------------------------------------------------------------------

# The well-formed current-dialect request examples of the documents, as written there.
# (002's sendSavedMMS example is not well formed: <lastname>Smith</firstname>.)
SPEC_REQUESTS = {
    "000-saveMMS": """<request>
    <action>saveMMS</action>
    <api-key>qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ</api-key>
    <message-subject>The subject</message-subject>
    <name>FuelTheFire</name>
    <slide>
        <image><url>http://www.yoursite.com/images/1.jpg</url></image>
        <audio><url>http://www.yoursite.com/audio/1.mp3</url></audio>
        <message-text>Here is some text</message-text>
        <duration>5</duration>
    </slide>
    <slide>
        <message-text>My Contact</message-text>
        <vcard><url>http://www.yoursite.com/2.vcf</url></vcard>
        <duration>10</duration>
    </slide>
</request>""",
    "003-sendSavedMMS": """<request>
    <action>sendSavedMMS</action>
    <api-key>qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ</api-key>
    <to>14044790000</to>
    <from>28444</from>
    <service-id>12345</service-id>
    <mms-id>35674</mms-id>
    <custom-text>
        <value>My custom text in first slide</value>
        <slide>1</slide>
    </custom-text>
    <custom-subject>My custom subject</custom-subject>
</request>""",
}
# 002's example with its one tag mismatch mended.
SPEC_REQUESTS["002-sendSavedMMS-mended"] = """<request>
    <action>sendSavedMMS</action>
    <api-key>qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ</api-key>
    <to>14044790000</to>
    <from>28444</from>
    <service-id>12345</service-id>
    <mms-id>35674</mms-id>
    <ddm-message-subject>We are detecting your handset</ddm-message-subject>
    <ddm-message-text>DDM_TEXT</ddm-message-text>
    <ddm-message-timeout>10</ddm-message-timeout>
    <custom-text>
        <value>My custom text in first slide</value>
        <slide>1</slide>
    </custom-text>
    <custom-subject>My custom subject</custom-subject>
    <data>
        <firstname>Bill</firstname>
        <lastname>Smith</lastname>
        <accountnumber>XYZ23456</accountnumber>
        <pin>13579</pin>
    </data>
</request>""".replace(
    "DDM_TEXT",
    "This message is free of charge and will allow us to deliver your content nice and smooth",
)
OTHER_REQUESTS = {
    "sendMMS": """<request><action>sendMMS</action><api-key>k</api-key><to>14044790000</to>
    <from>28444</from><service-id>12345</service-id><name>n</name>
    <fallback-sms-text>See {$firstname|you}</fallback-sms-text><operator-id>310410</operator-id>
    <client-reference>order-17</client-reference>
    <slide><video><url>https://example.com/v.mp4</url></video><message-text>t</message-text></slide>
    <slide><message-text><url>https://example.com/t.txt</url></message-text></slide>
    <data><firstname>Bill</firstname></data></request>""",
    "deleteMMSID": "<request><mms-id>35674</mms-id><action>deleteMMSID</action>"
    "<api-key>k</api-key></request>",
    "getMMSTemplates": "<request><action>getMMSTemplates</action><api-key>k</api-key>"
    "<start-date>2024-01-01 00:00:00</start-date><page-number/><items-per-page>10"
    "</items-per-page></request>",
    "getMMSTemplates-bare": "<request><action>getMMSTemplates</action><api-key>k</api-key>"
    "</request>",
}


def _action(document: str) -> str:
    return str(etree.fromstring(document.encode()).findtext("action"))


@pytest.mark.parametrize("name", sorted(SPEC_REQUESTS) + sorted(OTHER_REQUESTS))
def test_request_examples_validate_against_their_action_and_any_request(name: str) -> None:
    document = {**SPEC_REQUESTS, **OTHER_REQUESTS}[name]
    validate(document.encode(), CURRENT / f"{_action(document)}.rng")
    validate(document.encode(), CURRENT / "request.rng")


SAVE = SPEC_REQUESTS["000-saveMMS"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (  # image and video on one slide: E227
            "<audio><url>http://www.yoursite.com/audio/1.mp3</url></audio>",
            "<video><url>http://www.yoursite.com/video/1.mp4</url></video>",
        ),
        ("<duration>5</duration>", "<duration>31</duration>"),  # E230
        ("<name>FuelTheFire</name>", ""),  # E311
        ("<message-subject>The subject</message-subject>", ""),  # E622
        (  # the legacy spelling is not the current dialect
            "<api-key>qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ</api-key>",
            "<api_key>qTFkykO9JTfahCOqJ0V2Wf5Cg1t8iWlZ</api_key>",
        ),
        ("</vcard>", "</vcard><pdf><url>http://www.yoursite.com/2.pdf</url></pdf>"),  # E223
        ("http://www.yoursite.com/2.vcf", "ftp://www.yoursite.com/2.vcf"),
        ("<action>saveMMS</action>", "<action>saveMMS</action><campaignref>1</campaignref>"),
    ],
    ids=[
        "image-and-video",
        "duration",
        "no-name",
        "no-subject-nor-fallback",
        "api_key",
        "two-objects",
        "ftp-url",
        "unknown-element",
    ],
)
def test_a_saveMMS_request_breaking_a_documented_rule_does_not_validate(old: str, new: str) -> None:
    assert old in SAVE
    _messages(SAVE.replace(old, new).encode(), CURRENT / "saveMMS.rng")


# ---- the harness ----------------------------------------------------------------


def test_the_harness_records_an_answer_that_does_not_validate_and_counts_the_others() -> None:
    harness = Harness()
    harness.check("response", Dialect.CURRENT, response([("mms-id", "1")], Dialect.CURRENT))
    bad = b"<response><status>Success</status><mms_id>1</mms_id></response>"
    harness.check("response", Dialect.CURRENT, bad)
    harness.check("something-else", Dialect.CURRENT, b"<something-else/>")
    failures = harness.take_failures()
    assert len(failures) == 2
    assert "current-dialect answer does not match its schema" in failures[0]
    assert "schemas/current/answer.rng, line 3:" in failures[0]
    # A document with no schema fails its test too, outside schema_exempt tests
    assert "could not be validated: no current schema for <something-else>" in failures[1]
    assert harness.take_failures() == []
    summary = harness.summary()
    assert summary is not None
    assert summary.startswith("Schemas: 2 answers and 0 postbacks validated (current 2, legacy 0)")
    assert summary.endswith("1 unvalidated (1 outside schema_exempt tests)")
    assert harness.unchecked == 1


def test_a_postback_detail_build_postback_refuses_fails_the_test_unless_exempt() -> None:
    # Given a detail without a code (build_postback raises MalformedEventError)
    harness = Harness()
    harness.render_postback({"fields": {"mms-id": "1"}})
    # Then it is a failure of the test that made it, in each dialect, not a count alone
    failures = harness.take_failures()
    assert len(failures) == len(Dialect)
    assert all("MalformedEventError" in f for f in failures)
    assert harness.unchecked == len(Dialect)
    # And in a schema_exempt test it is counted only
    exempt = Harness(exempt=True)
    exempt.render_postback({"fields": {}})
    assert exempt.take_failures() == []
    assert (exempt.unchecked, exempt.counts["unvalidated"]) == (0, len(Dialect))


def test_the_harness_is_installed_for_the_session() -> None:
    """render() is wrapped, so answers made here are counted as they are made."""
    before = HARNESS.counts["answer current"]
    response([("mms-id", "35674")], Dialect.CURRENT)
    assert HARNESS.counts["answer current"] == before + 1


def test_the_harness_reads_the_dialect_of_a_document_received_over_http_from_its_root() -> None:
    harness = Harness()
    harness.check_wire(b"not XML at all")
    harness.check_wire(b"<html><body>a hosted page</body></html>")
    assert sum(harness.counts.values()) == 0
    harness.check_wire(SPEC_POSTBACKS["N003"].encode())
    harness.check_wire(b"<postback><origin>MMS_MT</origin><code>N003</code></postback>")
    harness.check_wire(SPEC_ANSWERS["saveMMS-success"].encode())
    assert harness.counts["postback current"] == 2
    assert harness.counts["answer current"] == 1
    [failure] = harness.take_failures()
    assert "current-dialect postback does not match its schema" in failure
    legacy = b"<RESPONSE><STATUS>Success</STATUS><MMSID>35674</MMSID></RESPONSE>"
    harness.check_wire(legacy)
    counted = harness.counts["answer legacy"] + harness.counts["unvalidated"]
    assert counted == 1  # validated once schemas/legacy/answer.rng exists, else unvalidated


if __name__ == "__main__":  # write the catalogue's codes into both dialects' grammars
    for folder in ("current", "legacy"):
        target = SCHEMAS / folder / "common.rng"
        text = target.read_text(encoding="utf-8")
        target.write_text(ERROR_CODE_DEFINE.sub(error_code_define(), text), encoding="utf-8")
        sys.stdout.write(f"wrote {target}\n")
