"""Idempotent requests: a repeated saveMMS, sendSavedMMS or sendMMS gets the first answer.

A request is a repeat when the same account sends the same action with the same
client-reference and the same content (the request as parsed, in the same dialect;
the api-key is not part of it) within `idempotency_seconds` (24 h by default). It is
answered with the first request's answer and does no new work: one template, one send,
one SubmitReq. The same client-reference with other content is a new request. Without
a client-reference nothing is remembered (and this costs nothing).

Powertools' idempotency utility keeps the records (DynamoDBPersistenceLayer): a
conditional PutItem claims the key, an UpdateItem stores the answer, a refusal (an
ApiError) deletes the claim so that a corrected retry runs again. A duplicate that
arrives while the first is still running waits for the first's answer and gives it
(polling the record within the request's budget), so a client that retries early is
never sent twice. A first request whose function died leaves a claim that expires with
that function's Lambda deadline; a retry after it runs the request again. A duplicate
whose whole budget passes while the claim stands is answered E106 "at least X seconds"
(docs/accounts.md#repeated-requests), X being when that claim has surely ended: the
first started before this one, so its deadline is no later than this one's.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from mmsapi import records
from mmsapi.budget import Budget
from mmsapi.errors import ApiError
from mmsapi.models import Account
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.xml.parse import Document
from mmsapi.xml.render import Field
from mmsapi.xml.requests import read_save, read_send

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

IDEMPOTENT_ACTIONS: Final = frozenset({"saveMMS", "sendSavedMMS", "sendMMS"})
KEY_PREFIX: Final = "mmsapi"
# A duplicate polls the first request's record this often while it runs.
POLL_SECONDS: Final = (0.05, 0.1, 0.2, 0.4)


def content_hash(action: str, doc: Document) -> str:
    """The request's content as parsed (its dialect included), hashed."""
    content: dict[str, Any] = {"dialect": doc.dialect.value}
    if action in {"saveMMS", "sendMMS"}:
        content["save"] = records.dump(read_save(doc.root))
    if action in {"sendSavedMMS", "sendMMS"}:
        content["send"] = records.dump(read_send(doc.root, doc.dialect))
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class _Deadline:
    """What Powertools asks of a Lambda context: the time left (the claim expires then)."""

    def __init__(self, budget: Budget) -> None:
        self._budget = budget

    def get_remaining_time_in_millis(self) -> int:
        margin = get_settings().request_safety_margin
        return int((self._budget.remaining() + margin) * 1000)


_layers: dict[str, tuple[object, DynamoDBPersistenceLayer]] = {}


def _layer() -> DynamoDBPersistenceLayer:
    """One persistence layer per table and client (each one registers a handler on its
    client: building one per request would pile them up)."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    table = get_settings().idempotency_table
    client = aws.dynamodb()
    found = _layers.get(table)
    if found is None or found[0] is not client:
        layer = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)
        _layers[table] = found = (client, layer)
    return found[1]


def run_once(
    account: Account, action: str, doc: Document, work: Callable[[], list[Field]]
) -> list[Field]:
    """`work()`'s answer, or the answer of the same request made before (see above)."""
    reference = (doc.root.value("client-reference") or "").strip()
    if action not in IDEMPOTENT_ACTIONS or not reference:
        return work()
    try:
        digest = content_hash(action, doc)
    except ApiError:
        return work()  # a request that cannot be read is refused by work() alike
    return _remembered(
        {
            "account": account.account_id,
            "action": action,
            "client_reference": reference,
            "content": digest,
        },
        work,
    )


def _remembered(key: dict[str, str], work: Callable[[], list[Field]]) -> list[Field]:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
    )

    budget = Budget.current()
    config = IdempotencyConfig(expires_after_seconds=get_settings().idempotency_seconds)
    config.register_lambda_context(_Deadline(budget))  # type: ignore[arg-type]

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="request",
        config=config,
        persistence_store=_layer(),
        key_prefix=KEY_PREFIX,
    )
    def once(request: dict[str, str]) -> list[list[Any]]:
        return [list(field) for field in work()]

    for attempt in range(10_000):
        try:
            answer: list[list[Any]] = once(request=key)
            return [(str(name), value) for name, value in answer]
        except IdempotencyAlreadyInProgressError:
            pause = POLL_SECONDS[min(attempt, len(POLL_SECONDS) - 1)]
            if budget.remaining() < pause:
                break
            time.sleep(pause)
    # The first request outlived this one's whole budget: it has not answered yet. By this
    # one's deadline (plus the margin Powertools gives a claim) it has answered or died.
    wait = budget.remaining() + get_settings().request_safety_margin
    raise ApiError("E106", x=str(max(1, math.ceil(wait))))
