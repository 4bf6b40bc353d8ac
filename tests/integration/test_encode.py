"""The encoding pipeline's service side: starting it from saveMMS, and finalizing."""

from __future__ import annotations

import json
from typing import Any

from pytest_httpserver import HTTPServer

from local.stack import Stack
from mmsapi.media.types import MediaKind
from mmsapi.models import Template, TemplateStatus
from mmsapi.services.encode import encoding_input, execution_name, finalize
from mmsapi.store import aws
from tests.conftest import Client
from tests.integration.helpers import answer, postback_events
from tests.media import photo_jpeg, tone_wav


def save_with_audio(client: Client, httpserver: HTTPServer, reference: str = "") -> Template:
    httpserver.expect_request("/a.wav").respond_with_data(tone_wav(), content_type="audio/wav")
    httpserver.expect_request("/v.mp4").respond_with_data(b"\x00" * 64, content_type="video/mp4")
    httpserver.expect_request("/i.jpg").respond_with_data(photo_jpeg(), content_type="image/jpeg")
    ref = f"<client-reference>{reference}</client-reference>" if reference else ""
    got = answer(
        client.post(
            f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>av</name>"
            f"<message-subject>s</message-subject>{ref}"
            f"<slide><image><url>{httpserver.url_for('/i.jpg')}</url></image>"
            f"<audio><url>{httpserver.url_for('/a.wav')}</url></audio><duration>5</duration></slide>"
            f"<slide><video><url>{httpserver.url_for('/v.mp4')}</url></video></slide></request>"
        )
    )
    assert got["status"] == "Success", got
    template = client.ctx.templates.get(int(got["mms-id"]))
    assert template is not None
    return template


def result(item: dict[str, Any], duration: float, profiles: list[str]) -> dict[str, Any]:
    renditions = [
        {
            "key": f"k/{p}",
            "content_type": "video/mp4",
            "profile": p,
            "codec": "h264",
            "bytes": 1000,
            "width": 320,
            "height": 240,
        }
        for p in profiles
    ]
    return {"ok": True, "item": item, "duration_seconds": duration, "renditions": renditions}


def test_save_with_audio_and_video_starts_one_named_execution(
    client: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given a template with audio on slide 1 and video on slide 2
    template = save_with_audio(client, httpserver)
    # Then it is locked, and one execution named after it carries both items
    assert template.status is TemplateStatus.ENCODING
    executions = aws.stepfunctions().list_executions(
        stateMachineArn=stack.physical["EncodeStateMachine"]
    )["executions"]
    assert [e["name"] for e in executions] == [execution_name(template.mms_id)]
    described = aws.stepfunctions().describe_execution(executionArn=executions[0]["executionArn"])
    payload = json.loads(described["input"])
    assert [(i["slide"], i["kind"]) for i in payload["items"]] == [(1, "audio"), (2, "video")]
    # And starting it again (a retried save) does not start a second one
    client.ctx.workflow.start(execution_name(template.mms_id), payload)
    again = aws.stepfunctions().list_executions(
        stateMachineArn=stack.physical["EncodeStateMachine"]
    )
    assert len(again["executions"]) == 1


def test_finalize_success_records_renditions_durations_and_announces_n003(
    client: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given an encoding template and the results of both items
    template = save_with_audio(client, httpserver, reference="camp-1")
    items = encoding_input(template, client.account)["items"]
    event = {
        "mms_id": template.mms_id,
        "account_id": template.account_id,
        "items": items,
        "results": [result(items[0], 2.02, ["mp3", "amr"]), result(items[1], 12.4, ["mp4", "3gp"])],
    }
    # When it is finalized
    assert finalize(client.ctx, event)["status"] == "ready"
    # Then the slides last as long as their media and the renditions are recorded
    done = client.ctx.templates.get(template.mms_id)
    assert done is not None
    assert done.status is TemplateStatus.READY
    assert [s.duration for s in done.slides] == [2, 13]  # 2.02 s rounds down: within 0.05 s
    audio = done.slides[0].media_of(MediaKind.AUDIO)
    assert audio is not None
    assert [r.profile for r in audio.renditions] == ["mp3", "amr"]
    assert audio.rendition_key == "k/mp3"
    assert done.size_bytes == template.size_bytes + 4000
    # And N003 with the client reference is announced, once, even if finalize runs again
    finalize(client.ctx, event)
    codes = [e["detail"] for e in postback_events(stack)]
    assert codes == [
        {
            "code": "N003",
            "account_id": template.account_id,
            "fields": {"mms-id": str(template.mms_id), "client-reference": "camp-1"},
        }
    ]


def test_finalize_failure_names_the_first_failed_file(
    client: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    # Given the video failed and the audio crashed in the state machine
    template = save_with_audio(client, httpserver)
    items = encoding_input(template, client.account)["items"]
    event = {
        "mms_id": template.mms_id,
        "account_id": template.account_id,
        "items": items,
        "results": [
            {"ok": False, "item": items[0], "error": "States.TaskFailed"},
            {"ok": False, "item": items[1], "error": "no video stream"},
        ],
    }
    # When it is finalized
    assert finalize(client.ctx, event)["status"] == "failed"
    # Then the template is unusable, with E002 naming the audio URL of slide 1
    done = client.ctx.templates.get(template.mms_id)
    assert done is not None
    assert (done.status, done.failure_code) == (TemplateStatus.FAILED, "E002")
    [event_sent] = postback_events(stack)
    assert event_sent["detail"]["code"] == "E002"
    assert event_sent["detail"]["fields"]["audio-name"] == httpserver.url_for("/a.wav")


def test_finalize_of_a_deleted_template_does_nothing(
    client: Client, stack: Stack, httpserver: HTTPServer
) -> None:
    template = save_with_audio(client, httpserver)
    answer(
        client.post(
            f"<request><action>deleteMMSID</action><api-key>{client.api_key}</api-key>"
            f"<mms-id>{template.mms_id}</mms-id></request>"
        )
    )
    event = {"mms_id": template.mms_id, "account_id": template.account_id, "results": []}
    assert finalize(client.ctx, event)["status"] == "gone"
    assert postback_events(stack) == []
