"""The send actions' error codes in the legacy dialect (uppercase names, smaller
mandatory set: SERVICEID and FALLBACKSMSTEXT may come from the account and template)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import Client
from tests.integration.helpers import answer
from tests.media import tone_wav

US = "14044790000"


def legacy_saved(client: Client, extra: str = "") -> str:
    got = answer(
        client.post(
            f"<REQUEST><ACTION>saveMMS</ACTION><API_KEY>{client.api_key}</API_KEY><NAME>n</NAME>"
            f"<SUBJECT>s</SUBJECT>{extra}<SLIDE><TEXT>one</TEXT></SLIDE></REQUEST>"
        )
    )
    assert got["STATUS"] == "Success", got
    return got["MMSID"]


def legacy_send(
    client: Client, fields: Mapping[str, str | None], action: str = "sendSavedMMS", extra: str = ""
) -> dict[str, str]:
    body = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items() if v is not None)
    return answer(
        client.post(
            f"<REQUEST><ACTION>{action}</ACTION><API_KEY>{client.api_key}"
            f"</API_KEY>{body}{extra}</REQUEST>"
        )
    )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"TO": "12"}, "E110"),
        ({"FROM": "11111"}, "E111"),
        ({"SERVICEID": "999"}, "E627"),
        ({"MMSID": None}, "E620"),
        ({"MMSID": "123456789"}, "E241"),
        ({"FALLBACKSMSTEXT": None}, "E622"),
    ],
)
def test_legacy_send_codes(client: Client, changes: dict[str, str | None], code: str) -> None:
    fields: dict[str, str | None] = {
        "MMSID": legacy_saved(client),
        "TO": US,
        "FROM": "28444",
        "FALLBACKSMSTEXT": "see",
    }
    fields.update(changes)
    got = legacy_send(client, fields)
    assert (got["STATUS"], got["ERRORCODE"]) == ("Failure", code), got
    assert list(got) == ["STATUS", "ERRORCODE", "TO", "ERRORINFO"]


def test_legacy_blocked_number_is_e114(client: Client) -> None:
    client.account.blocked_numbers = [US]
    client.ctx.accounts.put(client.account)
    got = legacy_send(
        client, {"MMSID": legacy_saved(client), "TO": US, "FROM": "28444", "FALLBACKSMSTEXT": "see"}
    )
    assert got["ERRORCODE"] == "E114"


def test_legacy_encoding_template_is_e626(client: Client, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a.wav").respond_with_data(tone_wav(), content_type="audio/wav")
    mms_id = legacy_saved(client, "")
    audio = answer(
        client.post(
            f"<REQUEST><ACTION>saveMMS</ACTION><API_KEY>{client.api_key}</API_KEY><NAME>a</NAME>"
            f"<SUBJECT>s</SUBJECT><SLIDE><AUDIO><URL>{httpserver.url_for('/a.wav')}</URL></AUDIO>"
            "</SLIDE></REQUEST>"
        )
    )
    assert mms_id != audio["MMSID"]
    got = legacy_send(
        client, {"MMSID": audio["MMSID"], "TO": US, "FROM": "28444", "FALLBACKSMSTEXT": "see"}
    )
    assert got["ERRORCODE"] == "E626"


def test_legacy_operator_id_is_not_checked(client: Client) -> None:
    # Legacy clients send OPERATORID out of habit (docs/actions.md): it is ignored, so the
    # operator codes E650/E651 exist in the current dialect only.
    got = legacy_send(
        client,
        {
            "MMSID": legacy_saved(client),
            "TO": US,
            "FROM": "28444",
            "FALLBACKSMSTEXT": "see",
            "OPERATORID": "not-a-number",
        },
    )
    assert got["STATUS"] == "Success", got


def test_legacy_send_mms_codes(client: Client) -> None:
    base = {"TO": US, "FROM": "28444", "NAME": "x", "SUBJECT": "s"}
    slide = "<SLIDE><TEXT>hi</TEXT></SLIDE>"
    assert (
        legacy_send(client, {**base, "FALLBACKSMSTEXT": "f", "TO": "1"}, "sendMMS", slide)[
            "ERRORCODE"
        ]
        == "E110"
    )
    assert legacy_send(client, base, "sendMMS", slide)["ERRORCODE"] == "E622"
    ok = legacy_send(client, {**base, "FALLBACKSMSTEXT": "f"}, "sendMMS", slide)
    assert ok["STATUS"] == "Success", ok
    assert list(ok) == ["STATUS", "TO", "MMSID", "TRACKINGID", "STATUSDETAILS"]
