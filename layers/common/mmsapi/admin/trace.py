"""`mmsapi-admin trace TRACKING-ID`: the timeline of one send, from its stored record.

Every change of a send is stored with the send (Send.history, appended by
store/sends.py in the same write): accepted, claimed, submitted (carrier message id),
fallback SMS, reported, failed, each with the postback it queued, and the rendition
(handset profile and parts) an MMS went out as. Each postback's delivery attempts are
PostbackFunction's (store/postback_attempts.py: the last attempt's number, outcome and
time); each attempt is also a log line carrying the tracking_id and the postback id
printed here (X-MMS-Postback-Id). The query printed last finds them, and every other
function's lines of the send, in CloudWatch Logs Insights.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from mmsapi.models import Send, SendStatus, SendStep
from mmsapi.services.accounts import InvalidInputError
from mmsapi.store.accounts import AccountStore
from mmsapi.store.outbox import OutboxStore, send_postback_id
from mmsapi.store.postback_attempts import Attempts, PostbackAttemptsStore
from mmsapi.store.sends import SendStore
from mmsapi.store.templates import TemplateStore
from mmsapi.tracking import parse_tracking_id, tracking_id

# What each status means in a timeline.
STEP_WORDS: Final[dict[SendStatus, str]] = {
    SendStatus.WAITING: "accepted, waiting for its MMS to finish encoding",
    SendStatus.QUEUED: "queued for delivery",
    SendStatus.SUBMITTING: "claimed by a delivery worker, adapting and submitting",
    SendStatus.DISCOVERING: "Device Discovery Message sent, waiting for its report",
    SendStatus.SENT: "sent",
    SendStatus.DELIVERED: "delivered (the carrier's report)",
    SendStatus.FAILED: "failed",
}


def send_id_of(raw: str) -> int:
    send_id = parse_tracking_id(raw.strip())
    if send_id is None:
        raise InvalidInputError(f"tracking-id {raw[:60]!r}: not a tracking-id (base64 of MMS_n)")
    return send_id


def describe(step: SendStep, first: bool) -> str:
    words = STEP_WORDS[step.status]
    if first and step.status is SendStatus.QUEUED:
        words = "accepted, queued for delivery"
    if step.status is SendStatus.SENT:
        words = "fallback SMS sent" if step.sent_as == "SMS" else f"sent as {step.sent_as or 'MMS'}"
    details = [
        f"carrier message id {step.carrier_message_id}"
        if step.carrier_message_id and step.status is SendStatus.SENT
        else "",
        f"handset {step.handset}" if step.handset and step.status is SendStatus.DELIVERED else "",
    ]
    line = "; ".join([words, *filter(None, details)])
    return f"{line:70} postback {step.postback}" if step.postback else line


def delivery(postback_id: str, pending: bool, tried: Attempts | None) -> str:
    """Where one postback is: in the outbox, published, or its last delivery attempt."""
    if pending:
        return "still in the outbox"
    if tried is None:
        return "published, no delivery attempt yet"
    when = datetime.fromtimestamp(tried.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
    plural = "s" if tried.attempts > 1 else ""
    return f"{tried.outcome}, {tried.attempts} attempt{plural} (last {when})"


def timeline(
    send: Send,
    accounts: AccountStore,
    outbox: OutboxStore,
    attempts: PostbackAttemptsStore | None = None,
) -> str:
    template = TemplateStore().get(send.mms_id)
    account = accounts.get(send.account_id)
    about = [
        ("tracking-id", f"{tracking_id(send.send_id)}   (send {send.send_id})"),
        ("account", f"{send.account_id} ({account.name if account else 'deleted'})"),
        (
            "mms-id",
            f"{send.mms_id} ({template.name}, {template.status.value})"
            if template
            else f"{send.mms_id} (deleted)",
        ),
        ("to", f"{send.to} from {send.sender} (asked for {send.requested_from or '-'})"),
        ("service-id", f"{send.service_id}   operator-id {send.operator_id or '-'}"),
        ("client-reference", send.client_reference or "(none)"),
        ("status now", send.status.value + (f" (as {send.sent_as})" if send.sent_as else "")),
    ]
    lines = [f"{label + ':':18} {value}" for label, value in about]
    lines.append("timeline (UTC):")
    for number, step in enumerate(send.history):
        when = step.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]  # to the millisecond
        lines.append(f"  {when}  {describe(step, number == 0)}")
        if step.rendition and step.sent_as == "MMS":
            lines.append(f"{'':27}adapted for {step.rendition}")
    if not send.history:
        lines.append("  (stored before sends kept their history)")
    codes = list(dict.fromkeys(step.postback for step in send.history if step.postback))
    ids = {code: send_postback_id(send.send_id, code) for code in codes}
    tried = (attempts or PostbackAttemptsStore()).get_many(list(ids.values()))
    for code, postback_id in ids.items():
        where = delivery(postback_id, outbox.pending(postback_id), tried.get(postback_id))
        lines.append(f"postback {code}: id {postback_id}, {where}")
    lines.append(
        "every log line of this send, postback attempts included (CloudWatch Logs Insights):"
    )
    lines.append(f"  {logs_query(tracking_id(send.send_id))}")
    return "\n".join(lines)


def logs_query(tracking: str) -> str:
    """The Logs Insights query over the functions' log groups for one tracking-id."""
    return (
        "fields @timestamp, function_name, action, message, code, attempt, status"
        f' | filter tracking_id = "{tracking}" | sort @timestamp asc'
    )


def trace(raw_tracking_id: str, accounts: AccountStore) -> str | None:
    """The printed timeline of the send, or None if there is no such send."""
    send = SendStore().get(send_id_of(raw_tracking_id))
    return timeline(send, accounts, OutboxStore()) if send else None
