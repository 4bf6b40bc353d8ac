"""When each message must have reached its end: the `settle_by` of every non-final record.

A send (waiting, queued, submitting, discovering, sent) and a template (encoding) carry
`settle_by`, the epoch second after which no legitimate step can still be running
for them, and `sweep_shard`, the partition of the sparse index `by-settle-by` that
the sweeper reads (services/sweep.py). A final record has neither, so the index holds
only what is still under way. The partition is sharded so that a busy sending stack
does not write one hot GSI partition (GSI throttling slows the base table too).

The index key is not the deadline itself. A send's real deadline (`due`, a plain
attribute) moves at every step, and a KEYS_ONLY index is written twice whenever its
key moves: about 8 index writes per send. So a young send is indexed at its *first
look* (`index_key`): created_at + FIRST_LOOK_SECONDS, the shortest budget any status
has, which every later deadline is past. Its steps keep that key (no index write) and
its end removes it: 2 index writes per send. The sweeper that finds a send at its first
look before it is due moves the key to `due` (one more write, only for sends that take
longer than FIRST_LOOK_SECONDS); from then on each step moves the key to its deadline,
as before. The key is never after `due`, so no send is settled late.

A sent send waits for its delivery report: carriers may never send one (a report lost,
a handset that never comes back), so after settings.report_wait_days it is ended as
expired (E102, or E202 for a fallback SMS). The carrier messages lookup item lives
longer (carrier_message_days), so a report can still find its send, and is then
ignored because the send is final.
"""

from __future__ import annotations

from typing import Final

from mmsapi.models import Send, SendStatus, Template, TemplateStatus
from mmsapi.settings import get_settings

SETTLE_INDEX: Final = "by-settle-by"
SHARDS: Final = 8
# Room beyond the longest legitimate time: clocks, queue lag, a cold start.
MARGIN_SECONDS: Final = 600
# statemachine/encode.asl.json's TimeoutSeconds (8 items, 4 at a time, each up to 4
# attempts of the 300 s TranscodeFunction: about 2,430 s).
ENCODE_TIMEOUT_SECONDS: Final = 3600
DAY_SECONDS: Final = 86_400
SEND_FINAL: Final = frozenset({SendStatus.DELIVERED, SendStatus.FAILED})


def queued_seconds() -> int:
    """Every attempt of the send queue: its doubling waits, each attempt's claim."""
    settings = get_settings()
    waits = sum(
        int(min(12 * 3600, settings.send_retry_seconds * 2 ** (attempt - 1)))
        for attempt in range(1, settings.send_max_attempts + 1)
    )
    return waits + settings.send_max_attempts * settings.send_claim_seconds


def send_budget(send: Send) -> int | None:
    """Seconds a send may stay in its status from now; None once it is final."""
    match send.status:
        case SendStatus.WAITING:
            return ENCODE_TIMEOUT_SECONDS + MARGIN_SECONDS
        case SendStatus.QUEUED:
            return queued_seconds() + MARGIN_SECONDS
        case SendStatus.SUBMITTING:
            return get_settings().send_claim_seconds + MARGIN_SECONDS
        case SendStatus.DISCOVERING:
            # The DDM's timeout message, and its send queue retries if it fails.
            minutes = send.ddm.timeout_minutes if send.ddm else 0
            return minutes * 60 + queued_seconds() + MARGIN_SECONDS
        case SendStatus.SENT:
            return report_wait_seconds()
    return None


def first_look_seconds() -> int:
    """The shortest budget a send can be given (SUBMITTING's): the index key of a young
    send, created_at + this, is never after any deadline it has while it is young."""
    return get_settings().send_claim_seconds + MARGIN_SECONDS


def index_key(created: int, now: int, due: int) -> int:
    """The `settle_by` index key of a send under way at `now` (epoch seconds): its first
    look while it is young (the key its earlier writes had: no index write), else its
    deadline. Never after `due`."""
    first_look = created + first_look_seconds()
    return min(first_look, due) if now < first_look else due


def report_wait_seconds() -> int:
    """How long a sent send waits for its delivery report before it expires."""
    return get_settings().report_wait_days * DAY_SECONDS


def template_budget(template: Template) -> int | None:
    if template.status is TemplateStatus.ENCODING:
        return ENCODE_TIMEOUT_SECONDS + MARGIN_SECONDS
    return None


def shard(identifier: int) -> str:
    return str(identifier % SHARDS)


def shards() -> list[str]:
    return [str(n) for n in range(SHARDS)]
