"""STOP, START and HELP from phones, for MMS MO and SMS MO alike (docs/inbound.md#opt-out-and-help).

The first word of the subject, else of the text, is compared (as inbox keywords are, in
the form of mmsapi/keywords.py) with the account's opt-out, opt-in and help keywords
(account.opt_out). A match:

1. is recorded with its time, number, keyword, source and message id, and (STOP) the
   number opted out or (START) opted back in, in one transaction (store/opt_outs.py);
   a message received again is recorded once;
2. is answered with the account's reply text by SMS, from the shortcode the phone
   wrote to (carrier/sms.py); the reply's id is noted on the record, so a message
   received again is not answered twice, and the reply is claimed first (a conditional
   write), so the same message delivered twice at once is answered once. A gateway
   that refuses the number for good (SmsRefused) is noted too; one that is down
   raises CarrierUnavailable (the claim given back): the MO is then received again
   (MMSC resend, Lambda retry) and the reply tried again.

The keyword is also told to the account, in the MO's postback (N401/N402 `keyword`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from mmsapi.keywords import first_word, keyword_form
from mmsapi.models import Account
from mmsapi.observability import count, logger
from mmsapi.services.context import Context
from mmsapi.store.opt_outs import Action, KeywordEvent, OptOutStore

MAX_REPLY_CHARS: Final = 480  # three SMS segments; End User Messaging takes up to 1600


def inbox_keyword(texts: tuple[str, ...], keywords: list[str]) -> str:
    """The account's inbox keyword that the first word of the first text (else the next) is."""
    known = {keyword_form(k): k for k in keywords}
    for text in texts:
        word = first_word(text)
        if word in known:
            return known[word]
    return ""


@dataclass(frozen=True)
class Received:
    """What a keyword reply needs of a received message."""

    source: str  # "sms" or "mms"
    event_id: str  # the MO's derived id (unique per message, the same when sent again)
    message_id: str  # as the carrier named it (End User Messaging's id; MMS: the mo-id)
    sender: str  # the phone, digits
    shortcode: str  # the account's code it was sent to
    texts: tuple[str, ...]  # where the keyword may be: the subject, then the text
    received_at: datetime | None = None  # as the carrier stamped it (SNS, MM7 TimeStamp)


def action_of(account: Account, texts: tuple[str, ...]) -> tuple[Action, str] | None:
    """The action and keyword the first word of the first non-empty text asks for."""
    settings = account.opt_out
    table = (
        (Action.OPT_OUT, settings.opt_out_keywords),
        (Action.OPT_IN, settings.opt_in_keywords),
        (Action.HELP, settings.help_keywords),
    )
    for text in texts:
        word = first_word(text)
        for action, words in table:
            if word and word in {keyword_form(w) for w in words}:
                return action, word
    return None


def reply_text(account: Account, action: Action) -> str:
    settings = account.opt_out
    template = {
        Action.OPT_OUT: settings.opt_out_text,
        Action.OPT_IN: settings.opt_in_text,
        Action.HELP: settings.help_text,
    }[action]
    return template.replace("{account}", account.name)[:MAX_REPLY_CHARS]


def handle_keyword(ctx: Context, account: Account, message: Received) -> str:
    """Record and answer a STOP/START/HELP; the keyword matched, or "" for none."""
    found = action_of(account, message.texts)
    if found is None:
        return ""
    action, keyword = found
    store = OptOutStore()
    event = KeywordEvent(
        account_id=account.account_id,
        number=message.sender,
        action=action,
        keyword=keyword,
        source=message.source,
        shortcode=message.shortcode,
        message_id=message.message_id,
        event_id=message.event_id,
        at=datetime.now(UTC).isoformat(timespec="microseconds"),  # processed; orders the record
        received_at=_iso(message.received_at),
    )
    if not store.record(event):  # received again: recorded then; answered then?
        stored = store.event(account.account_id, event.entry)
        if stored is None or stored.reply_id:
            return keyword
        event = stored
    if not store.claim_reply(event):  # the same message, delivered twice at once, replies now
        return keyword
    from mmsapi.carrier.sms import SmsRefused  # the SMS gateway only when a keyword needs it

    logger.info("keyword received", extra={"keyword_action": action.value, "via": message.source})
    count("KeywordsReceived", action=action.value)
    text = reply_text(account, action)
    try:
        reply_id = ctx.sms.send(message.sender, message.shortcode, text) if text else "no text"
    except SmsRefused as exc:  # final: this number cannot take it; noted, never retried
        logger.warning("keyword reply refused", extra={"reason": str(exc)[:200]})
        reply_id = f"refused: {exc}"[:200]
    except BaseException:
        store.release_reply(event)  # the message received again replies (Lambda, MMSC retry)
        raise
    store.replied(event, reply_id)
    return keyword


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
