"""Idempotent requests: a saveMMS, sendSavedMMS or sendMMS repeated with the same
client-reference and content gets the first answer and does no new work."""

from __future__ import annotations

import math
import re
import threading
import time
from typing import Any

import pytest

from local.stack import Stack
from mmsapi.budget import Budget
from mmsapi.models import Send
from mmsapi.services import api
from mmsapi.services import send as send_module
from mmsapi.services.deliver import deliver
from mmsapi.services.send import send_saved
from mmsapi.settings import get_settings
from mmsapi.tracking import parse_tracking_id
from tests.conftest import Client
from tests.integration.conftest import DELIVERED_TO, Carrier
from tests.integration.helpers import answer, drain, relay_outbox

SAVE = (
    "<request><action>saveMMS</action><api-key>{key}</api-key><name>n</name>"
    "<message-subject>Hi</message-subject>{ref}"
    "<slide><message-text>{text}</message-text></slide></request>"
)
SEND = (
    "<request><action>sendSavedMMS</action><api-key>{key}</api-key><mms-id>{mms_id}</mms-id>"
    "<to>{to}</to><from>28444</from><service-id>12345</service-id>"
    "<fallback-sms-text>{text}</fallback-sms-text>{ref}</request>"
)


def ref(reference: str) -> str:
    return f"<client-reference>{reference}</client-reference>" if reference else ""


def save(client: Client, reference: str = "", text: str = "Hello") -> dict[str, str]:
    return answer(client.post(SAVE.format(key=client.api_key, ref=ref(reference), text=text)))


def send(client: Client, mms_id: str, reference: str = "", text: str = "see") -> dict[str, str]:
    body = SEND.format(
        key=client.api_key, mms_id=mms_id, to=DELIVERED_TO, text=text, ref=ref(reference)
    )
    return answer(client.post(body))


def queued_sends(stack: Stack) -> list[int]:
    """The send ids waiting in the send queue (taken out of it)."""
    relay_outbox(stack)  # accepted sends reach the queue through the outbox
    return [int(body["send_id"]) for body in drain(stack.physical["SendQueue"])]


def test_a_send_retried_after_a_timeout_is_submitted_once(
    client: Client, stack: Stack, carrier: Carrier
) -> None:
    # Given a saved template, and a sendSavedMMS whose answer the client never got
    mms_id = save(client)["mms-id"]
    first = send(client, mms_id, reference="order-1")
    assert first["status"] == "Success", first
    # When the client sends the same request again
    again = send(client, mms_id, reference="order-1")
    # Then it gets the first answer, the same tracking-id
    assert again == first
    # And one send was queued, delivered with one SubmitReq
    queued = queued_sends(stack)
    assert queued == [parse_tracking_id(first["tracking-id"])]
    for send_id in queued:
        assert deliver(client.ctx, send_id) == "sent as MMS"
    assert len(carrier.mmsc.received()) == 1


def test_a_concurrent_duplicate_waits_for_the_first_answer_and_sends_once(
    client: Client, stack: Stack, carrier: Carrier, monkeypatch: pytest.MonkeyPatch
) -> None:
    mms_id = save(client)["mms-id"]
    answers: list[dict[str, str]] = []
    # Given a send that takes a while, so that the duplicate arrives while it runs
    runs: list[int] = []

    def slow_send(*args: Any, **kwargs: Any) -> Send:
        runs.append(1)
        time.sleep(0.3)
        return send_saved(*args, **kwargs)

    monkeypatch.setattr(send_module, "send_saved", slow_send)
    start = threading.Barrier(2)

    def post() -> None:
        start.wait()
        answers.append(send(client, mms_id, reference="order-2"))

    # When two functions get the same request at the same moment
    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then both answer the same success, and one send goes to the carrier
    assert len(answers) == 2
    assert answers[0] == answers[1]
    assert answers[0]["status"] == "Success", answers
    assert len(runs) == 1  # the duplicate did no work: it waited for the first's answer
    queued = queued_sends(stack)
    assert len(queued) == 1
    deliver(client.ctx, queued[0])
    assert len(carrier.mmsc.received()) == 1


def test_the_same_reference_with_other_content_is_a_new_send(client: Client, stack: Stack) -> None:
    mms_id = save(client)["mms-id"]
    first = send(client, mms_id, reference="order-3", text="see")
    other = send(client, mms_id, reference="order-3", text="look")
    assert other["status"] == first["status"] == "Success"
    assert other["tracking-id"] != first["tracking-id"]
    assert len(queued_sends(stack)) == 2


def test_without_a_reference_nothing_is_deduplicated(client: Client, stack: Stack) -> None:
    mms_id = save(client)["mms-id"]
    first, second = send(client, mms_id), send(client, mms_id)
    assert first["tracking-id"] != second["tracking-id"]
    assert save(client)["mms-id"] != save(client)["mms-id"]
    assert len(queued_sends(stack)) == 2


def test_a_repeated_save_keeps_one_template_and_other_accounts_are_apart(
    client: Client, stack: Stack
) -> None:
    first = save(client, reference="tpl-1")
    assert save(client, reference="tpl-1") == first
    assert save(client, reference="tpl-1", text="Other") != first
    listed = client.post(
        f"<request><action>getMMSTemplates</action><api-key>{client.api_key}</api-key></request>"
    )
    assert answer(listed)["total-results"] == "2"


def test_a_refused_request_is_not_remembered(client: Client, stack: Stack) -> None:
    # Given a send refused (no such template)
    refused = send(client, "999999", reference="order-4")
    assert refused["error-code"] == "E241"
    # Then the same request is checked again, not answered from memory
    again = send(client, "999999", reference="order-4")
    assert again == refused
    mms_id = save(client)["mms-id"]
    assert send(client, mms_id, reference="order-4")["status"] == "Success"


def test_a_repeat_after_the_window_is_a_new_request(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMS_IDEMPOTENCY_SECONDS", "1")
    get_settings.cache_clear()
    mms_id = save(client)["mms-id"]
    first = send(client, mms_id, reference="order-5")
    assert send(client, mms_id, reference="order-5") == first
    time.sleep(2.1)  # the record's expiry is in whole seconds
    later = send(client, mms_id, reference="order-5")
    assert later["status"] == "Success"
    assert later["tracking-id"] != first["tracking-id"]
    assert len(queued_sends(stack)) == 2


def test_a_duplicate_that_outwaits_its_budget_is_told_when_to_retry(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    mms_id = save(client)["mms-id"]
    release = threading.Event()
    runs: list[int] = []

    def stuck_send(*args: Any, **kwargs: Any) -> Send:
        runs.append(1)
        release.wait(10)  # the first function is still working (or dying)
        return send_saved(*args, **kwargs)

    monkeypatch.setattr(send_module, "send_saved", stuck_send)
    first: list[dict[str, str]] = []
    body = SEND.format(
        key=client.api_key, mms_id=mms_id, to=DELIVERED_TO, text="see", ref=ref("order-6")
    ).encode()
    worker = threading.Thread(target=lambda: first.append(send(client, mms_id, "order-6")))
    worker.start()
    while not runs:
        time.sleep(0.01)
    # When the duplicate's whole budget passes while the first still holds the claim
    started = time.monotonic()
    duplicate = answer(api.handle(client.ctx, body, {}, client.source_ip, Budget.of(0.5)))
    waited = time.monotonic() - started
    # Then it is told to come back later (E106, in whole seconds), never E503
    # (the first's claim ends by this one's deadline plus the claim's margin)
    margin = get_settings().request_safety_margin
    try:
        assert duplicate["error-code"] == "E106", duplicate
        info = re.fullmatch(
            r"Time interval between each API call should be at least (\d+) seconds\.",
            duplicate["error-info"],
        )
        assert info is not None, duplicate
        assert math.ceil(margin) <= int(info[1]) <= math.ceil(margin + 0.5)
        assert waited < 1.5
    finally:
        release.set()
    # And once the first answers, the same request gets the first answer, with no new work
    release.set()
    worker.join()
    assert first[0]["status"] == "Success", first
    assert send(client, mms_id, reference="order-6") == first[0]
    assert len(runs) == 1
    assert len(queued_sends(stack)) == 1
