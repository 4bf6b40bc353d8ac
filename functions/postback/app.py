"""PostbackFunction: SQS batches of bus events -> customers' postback URLs.

Each record body is an EventBridge event (id, detail-type, source, detail).
Failed records are reported in batchItemFailures, so only they are retried.
The records of a batch are delivered concurrently (one thread each, urllib3
blocks: mmsapi/batch.py): a batch of slow receivers then takes one postback timeout, not ten,
which keeps it inside the function's timeout. Each event is counted by its code
on its first receipt (metric Postbacks: the E999 alarm).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mmsapi.batch import BatchResponse, SqsRecord, process_batch
from mmsapi.observability import logger, message_context, metrics, postback_ids, tallied, tracer
from mmsapi.services.postback import count_postback, handle_event
from mmsapi.store.accounts import AccountStore
from mmsapi.store.postback_attempts import PostbackAttemptsStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

accounts = AccountStore()  # no cache: each event reads its account as it is now
attempts = PostbackAttemptsStore()


def record_handler(record: SqsRecord) -> None:
    event: dict[str, Any] = json.loads(record.body)
    detail = event.get("detail")
    ids = postback_ids(detail) if isinstance(detail, dict) else {}
    attempt = record.receive_count
    # Each record is a thread of its own: its ids stay on its lines.
    with message_context(action="postback", **ids):
        if attempt == 1:
            count_postback(event)  # once per event, not once per retry of its delivery
        handle_event(event, accounts, None, attempt, attempts)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> BatchResponse:
    # A batch that fails whole fails the invocation, as Powertools' batch utility did.
    with tallied():  # the batch's counts: one metric document per code
        return process_batch(event, record_handler, concurrent=True, raise_if_all_fail=True)
