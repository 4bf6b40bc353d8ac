"""Chaos (issue 8, item 7): sends and encodings under AWS faults and a misbehaving carrier.

Given a fraction of the functions' AWS calls failing (throttles, 5xx, timeouts, through
botocore's retries: local/faults.py) and an MMSC that refuses, defers (503) and answers
too late for some numbers, the whole flow runs as on AWS: saveMMS and sendSavedMMS at
the API, the encoding state machine with the real transcode/finalize handlers, the send
queue handed to the real DeliverFunction handler (a failed message comes back, its
receive count rising, until the handler gives up), the carrier's reports to the report
service, the outbox relay, and the sweeper past every deadline. Then:

- every send and template ended with its final postback (assert_every_message_ended);
- no tracking-id got two SubmitReq the MMSC took;
- no S3 object under templates/ belongs to no template;
- no template is left `encoding`.

Size: MMS_CHAOS_SENDS, MMS_CHAOS_TEMPLATES, MMS_CHAOS_FAULTS, MMS_CHAOS_SEED (`make test`
runs 60 sends over 4 templates; `make chaos` 1,000 over 20, both with 10% faults).

API answers under faults: "Success"; E626/E618 ("try again later"), which the client
retries; any other documented code, which is the request's answer. E503 is never
acceptable (it means a bug), faults or not.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from pytest_httpserver import HTTPServer

from local.faults import active_plan
from local.mmsc import Outcome, Rule
from local.queues import sqs_event
from local.stack import Stack
from mmsapi import records
from mmsapi.models import SendStatus, Template, TemplateStatus
from mmsapi.services.deliver import deliver
from mmsapi.services.report import mm7_report, sms_report
from mmsapi.services.sweep import sweep
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.media import template_prefix
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.conftest import Carrier
from tests.integration.helpers import answer, bucket_keys, relay_outbox
from tests.integration.test_message_ends import (
    SEND_FINAL_CODES,
    TEMPLATE_FINAL_CODES,
    _scan,
    assert_every_message_ended,
    told,
)
from tests.lambda_context import FakeLambdaContext, load_handler_module
from tests.media import photo_jpeg
from tests.media_av import make_media

SENDS = int(os.environ.get("MMS_CHAOS_SENDS", "60"))
TEMPLATES = int(os.environ.get("MMS_CHAOS_TEMPLATES", "4"))
FAULTS = float(os.environ.get("MMS_CHAOS_FAULTS", "0.1"))
SEED = int(os.environ.get("MMS_CHAOS_SEED", "8"))
DAY = 86_400

# The recipient's 7th digit picks what the MMSC does (1404 60<d> nnnn).
OUTCOMES = {
    "0": Outcome.RETRIEVED,
    "1": Outcome.REFUSE,  # SOAP fault 4007: the API sends the fallback SMS
    "2": Outcome.UNAVAILABLE,  # HTTP 503: the API retries, then ends it E999
    "3": Outcome.TIMEOUT,  # takes it, answers after the API's MM7 timeout
    "4": Outcome.REJECTED,
    "5": Outcome.RETRIEVED,
    "6": Outcome.RETRIEVED,
    "7": Outcome.RETRIEVED,
}
# Answers the client retries, as the documents say to (errors.py: "try again later",
# "please retry"). Any other documented code is the request's answer (counted in the
# figures); E503 is a bug and fails the test.
RETRY_CODES: frozenset[str] = frozenset({"E626", "E618"})


def _number(index: int) -> str:
    return f"140460{index % len(OUTCOMES)}{index:04d}"


def _serve(httpserver: HTTPServer, name: str, data: bytes, content_type: str) -> str:
    httpserver.expect_request(f"/{name}").respond_with_data(data, content_type=content_type)
    return httpserver.url_for(f"/{name}")


def _save_xml(client: Client, index: int, urls: dict[str, str]) -> str:
    """Every template has an image; one in three an audio, one in three a video."""
    media = f"<image><url>{urls['jpg']}</url></image>"
    if index % 3 == 1:
        media += f"<audio><url>{urls['wav']}</url></audio>"
    second = f"<slide><video><url>{urls['mp4']}</url></video></slide>" if index % 3 == 2 else ""
    return (
        f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key>"
        f"<name>chaos {index}</name><message-subject>s{index}</message-subject>"
        f"<slide>{media}<message-text>t{index}</message-text><duration>3</duration></slide>"
        f"{second}</request>"
    )


def _send_xml(client: Client, mms_id: int, to: str) -> str:
    return (
        f"<request><action>sendSavedMMS</action><api-key>{client.api_key}</api-key>"
        f"<mms-id>{mms_id}</mms-id><to>{to}</to><from>28444</from>"
        "<service-id>12345</service-id><fallback-sms-text>Coupon:</fallback-sms-text>"
        "</request>"
    )


def _post(client: Client, xml: str, answers: Counter[str], attempts: int = 3) -> dict[str, str]:
    """One request as a client sends it: retried only on a code that says "try again"."""
    got: dict[str, str] = {}
    for _ in range(attempts):
        got = answer(client.post(xml))
        code = got.get("error-code", got.get("status", ""))
        answers[code if got.get("status") != "Success" else "Success"] += 1
        assert code != "E503", got  # E503 is a bug, faults or not
        if got.get("status") == "Success" or code not in RETRY_CODES:
            return got
    return got


class Drive:
    """The AWS side of the scenario, one pass at a time (time compressed)."""

    def __init__(self, stack: Stack, client: Client, carrier: Carrier) -> None:
        self.stack, self.client, self.carrier = stack, client, carrier
        self.deliver_app = load_handler_module("deliver")
        self.queue_url = stack.physical["SendQueue"]
        self.queue_arn = stack.arns["SendQueue"]
        self.reports_done = 0
        self.sms_done = 0
        self.figures: Counter[str] = Counter()

    def queue_pass(self) -> int:
        """Lambda's event source mapping: receive, invoke, delete what succeeded."""
        handled = 0
        while True:
            got = aws.sqs().receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
            )
            messages = got.get("Messages", [])
            if not messages:
                return handled
            for message in messages:  # BatchSize 1, as the template has it
                event = sqs_event([message], self.queue_arn, self.stack.region)
                result = self.deliver_app.handler(event, FakeLambdaContext())
                self.figures["deliver invocations"] += 1
                if result["batchItemFailures"]:
                    self.figures["deliver retries"] += 1
                    continue
                aws.sqs().delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                handled += 1

    def report_pass(self) -> None:
        """The carrier's reports, each posted up to 4 times while the API fails it."""
        reports = list(self.carrier.reports)
        for path, body, content_type in reports[self.reports_done :]:
            for _ in range(4):
                try:
                    if path.endswith("mm7"):
                        mm7_report(self.client.ctx, body, content_type)
                    else:
                        fields = json.loads(body)
                        sms_report(
                            self.client.ctx,
                            str(fields["message_id"]),
                            fields.get("status") == "delivered",
                        )
                    self.figures["reports"] += 1
                    break
                except Exception:
                    self.figures["report retries"] += 1
        self.reports_done = len(reports)

    def settle(self, now: int) -> None:
        for _ in range(5):  # the schedule runs it again; a faulted run is finished later
            try:
                outcomes = sweep(self.client.ctx, now)
            except Exception:
                self.figures["sweeper runs failed"] += 1
                continue
            self.figures.update({f"swept {k}": v for k, v in outcomes.items()})
            if not outcomes:
                return

    def relay(self) -> None:
        for _ in range(10):
            try:
                if not relay_outbox(self.stack):
                    return
            except (BotoCoreError, ClientError):  # Lambda's stream poller tries again
                self.figures["stream polls failed"] += 1


def _wait_encoded(client: Client, mms_ids: list[int], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        templates = [client.ctx.templates.get(mms_id) for mms_id in mms_ids]
        if all(t is None or t.status is not TemplateStatus.ENCODING for t in templates):
            return
        time.sleep(0.5)


def _orphans(stack: Stack, client: Client) -> list[str]:
    """Keys under templates/ that belong to nothing: not an original or rendition of an
    existing template, nor in its per-handset cache (rendition_cache.adapted_prefix)."""
    owned: set[str] = set()
    caches: list[str] = []
    for item in _scan(client.ctx.templates.table):
        template = records.from_json(Template, item["doc"]["S"])
        caches.append(template_prefix(template.account_id, template.mms_id) + "adapted/")
        for slide in template.slides:
            for media in slide.media:
                owned.update(k for k in (media.original_key, media.rendition_key) if k)
                owned.update(r.key for r in media.renditions)
    return [
        key
        for key in bucket_keys(stack)
        if key.startswith("templates/") and key not in owned and not key.startswith(tuple(caches))
    ]


def test_an_mm7_answer_that_never_comes_is_not_submitted_twice(
    client: Client, carrier: Carrier, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an MMSC that takes the message but answers after the API's MM7 timeout
    carrier.mmsc.rules = [Rule(match=".*", outcome=Outcome.TIMEOUT)]
    carrier.mmsc.hang_seconds = 1.0
    monkeypatch.setenv("MMS_MM7_TIMEOUT", "0.3")
    get_settings.cache_clear()
    mms_id = int(_post(client, _save_xml(client, 0, _image_only(httpserver)), Counter())["mms-id"])
    sent = _post(client, _send_xml(client, mms_id, _number(3)), Counter())
    send_id = parse_tracking_id(sent["tracking-id"])
    assert send_id is not None
    # When it is delivered, and its queue message comes again
    assert deliver(client.ctx, send_id) == "sent as MMS"
    assert deliver(client.ctx, send_id) == "not queued"
    # Then the MMSC got it once, and the send waits for its report (or its report wait)
    assert len(carrier.mmsc.submissions()) == 1
    send = client.ctx.sends.get(send_id)
    assert send is not None
    assert send.status is SendStatus.SENT


def _image_only(httpserver: HTTPServer) -> dict[str, str]:
    return {"jpg": _serve(httpserver, "p.jpg", photo_jpeg(), "image/jpeg")}


@pytest.mark.state_machines_execute
@pytest.mark.aws_faults(FAULTS, SEED)
def test_every_message_ends_under_aws_and_carrier_faults(
    client: Client,
    carrier: Carrier,
    functions_bridged: Stack,
    httpserver: HTTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = functions_bridged
    plan = active_plan()
    assert plan is not None
    # Given an MMSC that refuses, defers and answers late by number, and an MM7 timeout of 0.5 s
    carrier.mmsc.rules = [Rule(match=f"^140460{d}", outcome=o) for d, o in OUTCOMES.items()]
    carrier.mmsc.hang_seconds = 1.0
    monkeypatch.setenv("MMS_MM7_TIMEOUT", "0.5")
    get_settings.cache_clear()
    drive = Drive(stack, client, carrier)
    # Time is compressed: a failed queue message comes back at the next pass.
    monkeypatch.setattr(drive.deliver_app, "retry_delay", lambda attempt: 0)
    urls = {
        "jpg": _serve(httpserver, "p.jpg", photo_jpeg(), "image/jpeg"),
        "wav": _serve(
            httpserver, "a.wav", make_media(tmp_path, "tone.wav").read_bytes(), "audio/wav"
        ),
        "mp4": _serve(
            httpserver, "v.mp4", make_media(tmp_path, "h264_aac.mp4").read_bytes(), "video/mp4"
        ),
    }
    answers: Counter[str] = Counter()
    started = time.monotonic()

    # When the templates are saved and encode
    mms_ids = []
    for index in range(TEMPLATES):
        got = _post(client, _save_xml(client, index, urls), answers)
        if got.get("status") == "Success":
            mms_ids.append(int(got["mms-id"]))
    _wait_encoded(client, mms_ids, seconds=60 + 10 * TEMPLATES)
    # And every send is asked for, delivered, reported, relayed, past every deadline
    for index in range(SENDS):
        mms_id = mms_ids[index % len(mms_ids)]
        _post(client, _send_xml(client, mms_id, _number(index)), answers)
    for _ in range(get_settings().send_max_attempts + 1):
        drive.relay()  # accepted sends reach the send queue through the outbox relay
        drive.queue_pass()
    time.sleep(carrier.mmsc.report_delay + 0.5)  # the last reports arrive
    drive.report_pass()
    now = int(time.time())
    for later in (DAY, 7 * DAY, 30 * DAY):  # the sweeper, past every deadline
        drive.relay()
        drive.queue_pass()
        drive.report_pass()
        drive.settle(now + later)
        drive.relay()

    # Then (figures first, asserted below) no tracking-id got two SubmitReq the MMSC took
    by_transaction = Counter(s.submit.transaction_id for s in carrier.mmsc.submissions())
    duplicates = {t: n for t, n in by_transaction.items() if n > 1}
    # And no object is left without its template, and no template is still encoding
    orphans = _orphans(stack, client)
    stuck = [
        item
        for item in _scan(client.ctx.templates.table)
        if records.from_json(Template, item["doc"]["S"]).status is TemplateStatus.ENCODING
    ]
    sends = _scan(client.ctx.sends.table)
    # And no message was told two different ends
    ends: dict[str, list[str]] = {}
    for detail in told(stack).values():
        if detail["code"] in SEND_FINAL_CODES | TEMPLATE_FINAL_CODES:
            fields = detail.get("fields", {})
            message = fields.get("tracking-id") or f"mms-{fields.get('mms-id')}"
            ends.setdefault(str(message), []).append(detail["code"])
    doubled = {message: codes for message, codes in ends.items() if len(codes) > 1}
    figures: dict[str, Any] = {
        "inputs": f"{SENDS} sends over {TEMPLATES} templates, {FAULTS:.0%} AWS faults",
        "api answers": dict(answers),
        "faults": plan.figures(),
        "messages": {"templates": len(mms_ids), "sends": len(sends)},
        "final postbacks": sum(
            d["code"] in SEND_FINAL_CODES | TEMPLATE_FINAL_CODES for d in told(stack).values()
        ),
        "mm7 submissions": len(carrier.mmsc.submissions()),
        "duplicates": len(duplicates),
        "messages told two ends": len(doubled),
        "orphans": len(orphans),
        "stuck": len(stuck),
        "drive": dict(drive.figures),
        "seconds": round(time.monotonic() - started, 1),
    }
    print("\nchaos figures:", json.dumps(figures, indent=1))
    assert plan.total() > 0
    # The run is not degenerate: most sends went to the carrier before any deadline
    # (10% of AWS calls fail, the MMSC refuses some numbers: about three in four go)
    assert len(carrier.mmsc.submissions()) >= SENDS // 2, figures
    # Every message ended with its final postback
    assert_every_message_ended(client.ctx, stack)
    assert not duplicates, duplicates
    assert not doubled, doubled
    assert not orphans, orphans[:20]
    assert not stuck
