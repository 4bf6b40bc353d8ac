"""The encoding pipeline's work: start it, transcode one media item, finalize a template.

saveMMS starts one execution per template with audio or video; the state
machine maps `transcode_item` over its media and hands every result to
`finalize`, which makes the template ready (N003) or failed (E002/E003).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from mmsapi import records
from mmsapi.media.transcode import TranscodeError, transcode_audio, transcode_video
from mmsapi.media.types import STORED_EXTENSION, TIMED_KINDS, MediaKind
from mmsapi.models import Account, Rendition, SendStatus, Template, TemplateStatus
from mmsapi.observability import logger, tag, template_ids
from mmsapi.services.announce import (
    FAILURE_CODES,
    SEND_FAILURE_CODES,
    failure_postback,
    ready_postback,
    send_postback,
)
from mmsapi.services.context import Context
from mmsapi.store.media import MediaStore, template_prefix
from mmsapi.tracking import tracking_id


def execution_name(mms_id: int) -> str:
    return f"encode-{mms_id}"


def encoding_input(template: Template, account: Account) -> dict[str, Any]:
    limits = account.limits
    items = []
    for number, slide in enumerate(template.slides, start=1):
        for media in slide.media:
            if media.kind not in TIMED_KINDS:
                continue
            budget = (
                limits.video_budget_bytes
                if media.kind is MediaKind.VIDEO
                else limits.audio_budget_bytes
            )
            items.append(
                {
                    "slide": number,
                    "kind": media.kind.value,
                    "source_url": media.source_url,
                    "original_key": media.original_key,
                    "content_type": media.content_type,
                    "budget_bytes": budget,
                    "max_seconds": limits.max_media_seconds,
                }
            )
    given: dict[str, Any] = {
        "mms_id": template.mms_id,
        "account_id": template.account_id,
        "items": items,
    }
    if template.single_send_id is not None:
        # A sendMMS send waits on this: it must end even if the template is deleted.
        given["single_send_id"] = template.single_send_id
    return given


def start_encoding(ctx: Context, template: Template, account: Account) -> None:
    ctx.workflow.start(execution_name(template.mms_id), encoding_input(template, account))


def transcode_item(media: MediaStore, event: dict[str, Any]) -> dict[str, Any]:
    """Encode one media item into its renditions. A bad file is a result, not an error:
    only unexpected failures raise (and are retried by the state machine)."""
    item = event["item"]
    kind = MediaKind(item["kind"])
    prefix = f"{template_prefix(event['account_id'], int(event['mms_id']))}slide-{item['slide']}/"
    with tempfile.TemporaryDirectory(prefix="transcode-") as tmp:
        workdir = Path(tmp)
        source = workdir / ("source." + STORED_EXTENSION.get(item["content_type"], "bin"))
        media.download(item["original_key"], source)
        encode = transcode_video if kind is MediaKind.VIDEO else transcode_audio
        try:
            duration, renditions = encode(
                source,
                workdir,
                budget_bytes=int(item["budget_bytes"]),
                max_seconds=float(item["max_seconds"]),
            )
        except TranscodeError as exc:
            logger.warning("transcoding failed", extra={"item": item, "reason": str(exc)})
            return {"ok": False, "item": item, "error": str(exc)}
        stored = []
        for rendition in renditions:
            key = f"{prefix}{kind.value}/{rendition.profile}{rendition.path.suffix}"
            media.upload(rendition.path, key, rendition.content_type)
            stored.append(
                records.dump(
                    Rendition(
                        key=key,
                        content_type=rendition.content_type,
                        profile=rendition.profile,
                        codec=rendition.codec,
                        bytes=rendition.bytes,
                        width=rendition.width,
                        height=rendition.height,
                    )
                )
            )
    return {"ok": True, "item": item, "duration_seconds": duration, "renditions": stored}


def _failure(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    failed = [r for r in results if not r.get("ok")]
    return min(failed, key=lambda r: int(r["item"]["slide"])) if failed else None


def finalize(ctx: Context, event: dict[str, Any]) -> dict[str, Any]:
    """Record renditions and real durations; mark ready or failed; announce it once."""
    mms_id = int(event["mms_id"])
    template = ctx.templates.get(mms_id)
    if template is not None:
        tag(**template_ids(template))
    if template is None or template.status is TemplateStatus.DELETING:
        # Deleted while encoding: the renditions uploaded since are removed too.
        ctx.media.delete_prefix(template_prefix(str(event["account_id"]), mms_id))
        _fail_orphaned_send(ctx, event)
        return {"mms_id": mms_id, "status": "gone"}
    if "error" in event and template.status is TemplateStatus.ENCODING:
        # The state machine's Catch: the pipeline itself failed (not one file).
        return _fail_minimal(ctx, template, f"encoding failed: {event['error']}")
    if template.status is not TemplateStatus.ENCODING:
        # Finalized by an earlier attempt: only a sendMMS send may still wait for it.
        release_waiting_send(ctx, template)
        return {"mms_id": mms_id, "status": template.status.value}
    results: list[dict[str, Any]] = event.get("results", [])
    failure = _failure(results)
    if failure is None:
        _apply(template, results)
        template.status = TemplateStatus.READY
    else:
        kind = MediaKind(failure["item"]["kind"])
        template.status = TemplateStatus.FAILED
        template.failure_code = FAILURE_CODES[kind][0]
    template.size_bytes += sum(
        r["bytes"] for result in results if result.get("ok") for r in result["renditions"]
    )
    postback = None  # a sendMMS template is not announced: its send is
    if template.single_send_id is None:
        postback = (
            ready_postback(template)
            if failure is None
            else failure_postback(template, kind, failure["item"]["source_url"])
        )
    if not ctx.templates.fits(template):
        # Its results would make an item DynamoDB refuses: fail it as it was stored.
        stored = ctx.templates.get(mms_id)
        if stored is None or stored.status is not TemplateStatus.ENCODING:
            return {"mms_id": mms_id, "status": "changed"}
        return _fail_minimal(ctx, stored, "the encoding results are too large to store")
    if not ctx.templates.replace(template, expected=TemplateStatus.ENCODING, postback=postback):
        return {"mms_id": mms_id, "status": "changed"}
    if template.single_send_id is not None:
        release_waiting_send(ctx, template)
    logger.info("encoding finalized", extra={"status": template.status.value})
    return {"mms_id": mms_id, "status": template.status.value}


def _fail_minimal(ctx: Context, template: Template, reason: str) -> dict[str, Any]:
    """End a template that cannot be finalized: failed as it was stored (nothing added),
    E002/E003 (its sendMMS send E012/E013)."""
    logger.warning("template failed", extra={"mms_id": template.mms_id, "reason": reason})
    kind, url = unfinished_media(template)
    template.status = TemplateStatus.FAILED
    template.failure_code = FAILURE_CODES[kind][0]
    postback = None
    if template.single_send_id is None:
        postback = failure_postback(template, kind, url)
    if not ctx.templates.replace(template, expected=TemplateStatus.ENCODING, postback=postback):
        return {"mms_id": template.mms_id, "status": "changed"}
    release_waiting_send(ctx, template)
    return {"mms_id": template.mms_id, "status": template.status.value}


def unfinished_media(template: Template | None) -> tuple[MediaKind, str]:
    """The first audio or video of a template with no rendition yet (what failed)."""
    for slide in template.slides if template else []:
        for media in slide.media:
            if media.kind in TIMED_KINDS and not media.renditions:
                return media.kind, media.source_url
    return MediaKind.VIDEO, ""


def _fail_orphaned_send(ctx: Context, event: dict[str, Any]) -> None:
    """sendMMS whose template was deleted while encoding: its send ends (E012/E013)."""
    if event.get("single_send_id") is None:
        return
    send = ctx.sends.get(int(event["single_send_id"]))
    if send is None or send.status is not SendStatus.WAITING:
        return
    kinds = {MediaKind(item["kind"]) for item in event.get("items", [])}
    kind = MediaKind.AUDIO if kinds == {MediaKind.AUDIO} else MediaKind.VIDEO
    send.status = SendStatus.FAILED
    details = "the MMS was deleted before its encoding finished"
    code = SEND_FAILURE_CODES[kind]
    postback = send_postback(send, code, "Message Failed", details=details)
    ctx.sends.save(send, expected=SendStatus.WAITING, postback=postback)


def release_waiting_send(ctx: Context, template: Template) -> None:
    """sendMMS: queue the send that waited for this template's encoding, or fail it
    (E012/E013). Safe to call again: only a send still waiting is released."""
    if template.single_send_id is None or template.status is TemplateStatus.ENCODING:
        return
    send = ctx.sends.get(template.single_send_id)
    if send is None or send.status is not SendStatus.WAITING:
        return
    if template.status is TemplateStatus.READY:
        send.status = SendStatus.QUEUED
        if ctx.sends.save(send, expected=SendStatus.WAITING):
            ctx.send_queue.enqueue(send.send_id)
        return
    send.status = SendStatus.FAILED
    kind, url = _failed_item(template)
    fields = {"tracking-id": tracking_id(send.send_id), "to": send.to, "from": send.sender}
    postback = failure_postback(template, kind, url, fields)
    ctx.sends.save(send, expected=SendStatus.WAITING, postback=postback)


def _failed_item(template: Template) -> tuple[MediaKind, str]:
    """The kind and URL of the file whose encoding failed (recorded by failure_code)."""
    wanted = next(
        (k for k, (code, _) in FAILURE_CODES.items() if code == template.failure_code),
        MediaKind.VIDEO,
    )
    for slide in template.slides:
        media = slide.media_of(wanted)
        if media is not None and not media.renditions:
            return wanted, media.source_url
    return wanted, ""


def _apply(template: Template, results: list[dict[str, Any]]) -> None:
    for result in results:
        item = result["item"]
        slide = template.slides[int(item["slide"]) - 1]
        media = slide.media_of(MediaKind(item["kind"]))
        if media is None:
            continue
        media.renditions = [records.load(Rendition, r) for r in result["renditions"]]
        first = media.renditions[0]
        media.rendition_key, media.rendition_type = first.key, first.content_type
        media.rendition_bytes = first.bytes
        media.width, media.height = first.width, first.height
        media.duration_seconds = float(result["duration_seconds"])
        # The slide plays as long as its media (docs/actions.md#slides), whole seconds, at least 1.
        slide.duration = max(1, math.ceil(media.duration_seconds - 0.05))
