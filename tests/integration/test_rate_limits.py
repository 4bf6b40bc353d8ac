"""Rate limits per account, shared by several warm functions: E113 (throughput per action
per second), E106 (minimum interval), E120 (daily quota), in both dialects.

Each "function" is a thread with its own RateLimiter (its own leases), as separate warm
Lambdas are; they share only the limits table. Clocks are given, so that which second
(or day) a request falls in is decided by the test, not by the machine's speed.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from mmsapi import records
from mmsapi.errors import DomainError
from mmsapi.models import Account, RateLimits
from mmsapi.services.limits import RateLimiter, own_limiter
from mmsapi.settings import get_settings
from mmsapi.store import aws
from mmsapi.store.limits import LimitStore, day_key
from tests.conftest import Client
from tests.integration.helpers import answer

CURRENT = "<request><action>getMMSTemplates</action><api-key>{key}</api-key></request>"
LEGACY = "<REQUEST><ACTION>getMMSTemplates</ACTION><API_KEY>{key}</API_KEY></REQUEST>"
# 2026-11-26 10:00:00 UTC, on a 10-second block's start
T0 = 1_795_687_200.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def set_limits(client: Client, **limits: object) -> None:
    def edit(account: Account) -> Account:
        account.rate_limits = records.load(RateLimits, limits)
        return account

    client.ctx.accounts.change(client.account.account_id, edit)


def outcome(xml: bytes) -> tuple[str, str]:
    """(status or error code, error info) of an answer in either dialect."""
    got = {k.lower().replace("_", "-"): v for k, v in answer(xml).items()}
    code = got.get("error-code") or got.get("errorcode") or got["status"]
    return code, got.get("error-info") or got.get("errorinfo") or ""


def in_functions(functions: int, at: float, work: Callable[[int, Clock], None]) -> None:
    """Run work(n, its clock) in `functions` threads at once, each one a warm function
    with its own limiter and clock, every clock at `at` to begin with."""
    start = threading.Barrier(functions)
    clocks = [Clock(at) for _ in range(functions)]

    def run(n: int) -> None:
        with own_limiter(RateLimiter(clock=clocks[n])):
            start.wait()
            work(n, clocks[n])

    threads = [threading.Thread(target=run, args=(n,)) for n in range(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.parametrize("template", [CURRENT, LEGACY], ids=["current", "legacy"])
def test_throughput_is_shared_by_all_functions_and_answered_e113(
    client: Client, template: str
) -> None:
    # Given 5 getMMSTemplates per second, and 4 functions taking 4 requests each in one second
    set_limits(client, throughput={"getMMSTemplates": 5})
    got: list[tuple[str, str]] = []

    def work(n: int, clock: Clock) -> None:
        for _ in range(4):
            got.append(outcome(client.post(template.format(key=client.api_key))))

    # When they all run in the same second
    in_functions(4, T0 + 0.2, work)
    # Then exactly 5 are answered, the 11 others are E113 naming the action and its limit
    codes = Counter(code for code, _ in got)
    assert codes == {"Success": 5, "E113": 11}
    info = {i for code, i in got if code == "E113"}
    assert info == {
        "Exceeded the allowed throughput for this API action. (getMMSTemplates: 5 per second)"
    }
    # And the next second has 5 more, less at most half of the limit that the functions
    # which stopped had reserved for it (the documented tolerance)
    in_functions(2, T0 + 1.2, work)
    later = Counter(code for code, _ in got[16:])
    assert 5 - 5 // 2 <= later["Success"] <= 5
    assert later["Success"] + later["E113"] == 8


def test_throughput_holds_with_functions_racing_over_many_seconds(client: Client) -> None:
    # Given 7 per second, and 5 functions sending as fast as they can over 6 seconds
    set_limits(client, throughput={"getMMSTemplates": 7})
    accepted: Counter[int] = Counter()
    refused: Counter[int] = Counter()
    codes: set[str] = set()

    def work(n: int, clock: Clock) -> None:
        for step in range(60):
            clock.now = T0 + step / 10 + n / 1000  # each tenth of a second, 5 requests
            code, _ = outcome(client.post(CURRENT.format(key=client.api_key)))
            (accepted if code == "Success" else refused)[int(clock.now)] += 1
            codes.add(code)

    in_functions(5, T0, work)
    assert codes == {"Success", "E113"}
    # Then no second ever had more than 7, and leases left over by one function did not
    # starve the others: each second served at least 7 - 4 (tolerance: tokens leased by
    # other functions and not spent yet, at most a quarter of the limit each).
    assert set(accepted) == set(range(T0_SECOND, T0_SECOND + 6))
    assert max(accepted.values()) <= 7
    assert min(accepted.values()) >= 3, accepted
    assert sum(refused.values()) > 0


T0_SECOND = int(T0)


@pytest.mark.parametrize("template", [CURRENT, LEGACY], ids=["current", "legacy"])
def test_calls_closer_than_the_minimum_interval_are_e106_across_functions(
    client: Client, template: str
) -> None:
    set_limits(client, min_interval_seconds=2)
    clock = Clock()
    first, second = RateLimiter(clock=clock), RateLimiter(clock=clock)
    body = template.format(key=client.api_key)
    # Given a call answered by one function
    with own_limiter(first):
        assert outcome(client.post(body))[0] == "Success"
    # When another function is called 1.5 s later, then 2 s later
    clock.now += 1.5
    with own_limiter(second):
        too_soon = outcome(client.post(body))
        clock.now += 0.5
        in_time = outcome(client.post(body))
    # Then the first is E106 with the interval, the second is answered
    assert too_soon == (
        "E106",
        "Time interval between each API call should be at least 2 seconds.",
    )
    assert in_time[0] == "Success"
    # And the first function, which saw neither, refuses a call 1 s after the last one
    clock.now += 1
    with own_limiter(first):
        assert outcome(client.post(body))[0] == "E106"


def test_minimum_interval_holds_for_racing_functions(client: Client) -> None:
    # Given 1 s between calls, and 4 functions calling at once, 3 times, 0.5 s apart
    set_limits(client, min_interval_seconds=1)
    got: list[tuple[float, str]] = []

    def work(n: int, clock: Clock) -> None:
        for step in range(6):
            clock.now = T0 + step / 2
            code, _ = outcome(client.post(CURRENT.format(key=client.api_key)))
            got.append((clock.now, code))

    in_functions(4, T0, work)
    # Then the answered calls are at least 1 s apart: one per whole second here
    answered = sorted(at for at, code in got if code == "Success")
    assert all(b - a >= 1 for a, b in itertools.pairwise(answered)), answered
    assert {code for _, code in got} == {"Success", "E106"}
    assert len(answered) >= 2


@pytest.mark.parametrize("template", [CURRENT, LEGACY], ids=["current", "legacy"])
def test_daily_quota_is_shared_and_starts_again_at_midnight_utc(
    client: Client, template: str
) -> None:
    # Given 6 requests per day, and 3 functions taking 4 requests each
    set_limits(client, daily_quota=6)
    got: list[tuple[str, str]] = []

    def work(n: int, clock: Clock) -> None:
        for _ in range(4):
            got.append(outcome(client.post(template.format(key=client.api_key))))

    in_functions(3, T0 + 3600 * 13, work)  # 23:00 UTC
    # Then 6 are answered and 6 are E120, which says what was hit and when it ends
    assert Counter(code for code, _ in got) == {"Success": 6, "E120": 6}
    assert {i for code, i in got if code == "E120"} == {
        "Account has reached the API request limit. "
        "(6 requests per day, counted again from 00:00 UTC)"
    }
    # When midnight UTC passes, the quota is whole again
    got.clear()
    in_functions(2, T0 + 3600 * 14 + 1, work)
    assert Counter(code for code, _ in got) == {"Success": 6, "E120": 2}


def test_far_from_the_limits_a_request_costs_well_below_one_call(client: Client) -> None:
    # Given the default limits, and one warm function serving 10 requests a second
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    with own_limiter(limiter):
        for step in range(300):
            clock.now = T0 + step / 10
            assert outcome(client.post(CURRENT.format(key=client.api_key)))[0] == "Success"
    # Then the limits cost under a tenth of a call per request
    assert limiter.calls / 300 < 0.1, limiter.calls


def test_one_request_per_second_costs_one_call_per_block_not_per_request(
    client: Client,
) -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    with own_limiter(limiter):
        for step in range(60):
            clock.now = T0 + step
            assert outcome(client.post(CURRENT.format(key=client.api_key)))[0] == "Success"
    assert limiter.calls / 60 <= 0.25, limiter.calls


def test_a_changed_limit_counts_from_the_next_request(client: Client) -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    body = CURRENT.format(key=client.api_key)
    with own_limiter(limiter):
        clock.now = T0 + 0.1
        assert outcome(client.post(body))[0] == "Success"
        set_limits(client, throughput={"getMMSTemplates": 1})
        assert outcome(client.post(body))[0] == "E113"


def test_counters_out_of_reach_serve_the_request_uncounted(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a limits table that cannot be reached
    def unreachable(self: LimitStore, claims: object) -> None:
        raise DomainError("rate limit claim failed: throttled")

    monkeypatch.setattr(LimitStore, "claim", unreachable)
    set_limits(client, daily_quota=1)
    # Then requests are served (the limits fail open), not answered E503
    with own_limiter(RateLimiter(clock=Clock())):
        codes = [outcome(client.post(CURRENT.format(key=client.api_key)))[0] for _ in range(3)]
    assert codes == ["Success"] * 3


def test_the_last_token_of_the_day_is_served_when_claims_go_together(client: Client) -> None:
    # Given a minimum interval (so that every claim is a transaction, all or nothing),
    # and a day's quota of 5000 with one request left of it
    set_limits(client, min_interval_seconds=0.001, daily_quota=5000)
    day = datetime.fromtimestamp(T0, UTC).date().isoformat()
    aws.dynamodb().put_item(
        TableName=get_settings().limits_table,
        Item={"key": {"S": day_key(client.account.account_id, day)}, "n": {"N": "4999"}},
    )
    clock = Clock()
    codes = []
    with own_limiter(RateLimiter(clock=clock)):
        for step in range(5):
            clock.now = T0 + step / 10
            codes.append(outcome(client.post(CURRENT.format(key=client.api_key)))[0])
    # Then the last request of the quota is served (a batch that did not fit is not
    # taken for the end of the day), and nothing more
    assert codes.count("Success") == 1
    assert codes.count("E120") == 4


def test_tokens_asked_ahead_and_not_granted_do_not_block_a_third_function(
    client: Client,
) -> None:
    # Given 100 per second, and two functions that burst in second 0 (so that they
    # reserve the rest of the block, within half of the limit) and then go idle
    set_limits(client, throughput={"getMMSTemplates": 100})
    body = CURRENT.format(key=client.api_key)

    def burst(n: int, clock: Clock) -> None:
        for step in range(40):
            clock.now = T0 + step / 100
            client.post(body)
        clock.now = T0 + 0.9
        client.post(body)  # a lease run out within the second: the next one reserves

    in_functions(2, T0, burst)
    # When a third function serves 30 requests in second 1
    clock = Clock(T0 + 1.1)
    with own_limiter(RateLimiter(clock=clock)):
        codes = Counter(outcome(client.post(body))[0] for _ in range(30))
    # Then all are answered: at most half of the limit is held by the idle functions
    assert codes == {"Success": 30}, codes


def test_a_third_function_gets_what_the_reservations_left(client: Client) -> None:
    # Given 100 per second, reservations for second 1 asked past half of the limit
    set_limits(client, throughput={"getMMSTemplates": 100})
    key = f"rate#{client.account.account_id}#getMMSTemplates#{T0_SECOND // 10}"
    aws.dynamodb().put_item(
        TableName=get_settings().limits_table,
        Item={"key": {"S": key}, "r1": {"N": "85"}},
    )
    # When a function serves 60 requests in second 1
    clock = Clock(T0 + 1.1)
    with own_limiter(RateLimiter(clock=clock)):
        got = Counter(
            outcome(client.post(CURRENT.format(key=client.api_key)))[0] for _ in range(60)
        )
    # Then it gets the 50 the reservations (at most half) left, and no more
    assert got == {"Success": 50, "E113": 10}, got


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
        ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem"),
    ],
    ids=["connection", "timeout", "throttled"],
)
def test_a_table_out_of_reach_fails_open_whatever_botocore_raises(
    client: Client, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    # Given a limits table that DynamoDB's client cannot reach
    def unreachable(**_: object) -> None:
        raise error

    set_limits(client, daily_quota=1)
    monkeypatch.setattr(aws.dynamodb(), "update_item", unreachable)
    monkeypatch.setattr(aws.dynamodb(), "transact_write_items", unreachable)
    # Then requests are served uncounted (with a warning), not answered E503
    with own_limiter(RateLimiter(clock=Clock())):
        codes = [outcome(client.post(CURRENT.format(key=client.api_key)))[0] for _ in range(2)]
    assert codes == ["Success", "Success"]


def _conflict(operation: str) -> ClientError:
    if operation == "UpdateItem":
        return ClientError(
            {"Error": {"Code": "TransactionConflictException", "Message": "conflict"}},
            operation,
        )
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
        },
        operation,
    )


@pytest.mark.parametrize("operation", ["UpdateItem", "TransactWriteItems"])
def test_a_conflict_on_the_last_call_stamp_is_e106(
    client: Client, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    body = CURRENT.format(key=client.api_key)
    clock = Clock(T0)
    with own_limiter(RateLimiter(clock=clock)):
        # Given a function holding leases (8 calls in 80 ms: batches of 1, 2, 4, 8)
        for step in range(8):
            clock.now = T0 + step / 100
            assert outcome(client.post(body))[0] == "Success"
        # and a minimum interval: the next call stamps the last-call time alone
        # (UpdateItem), or with a lease when one is due too, in the next 10-second block
        # (TransactWriteItems)
        set_limits(client, min_interval_seconds=0.5)
        clock.now = T0 + 0.6 if operation == "UpdateItem" else T0 + 10.6

        def conflicted(**_: object) -> None:
            raise _conflict(operation)

        name = "update_item" if operation == "UpdateItem" else "transact_write_items"
        monkeypatch.setattr(aws.dynamodb(), name, conflicted)
        # When that write meets another call's write on the stamp, Then the call is
        # E106 (another call of the account at the same instant), not served uncounted
        assert outcome(client.post(body)) == (
            "E106",
            "Time interval between each API call should be at least 0.5 seconds.",
        )


def test_a_retried_request_gets_its_first_answer_within_the_minimum_interval(
    client: Client,
) -> None:
    # Given a minimum interval of 5 s
    set_limits(client, min_interval_seconds=5)
    save = (
        f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key><name>n</name>"
        "<message-subject>Hi</message-subject><client-reference>r-2</client-reference>"
        "<slide><message-text>Hello</message-text></slide></request>"
    )
    clock = Clock(T0 + 0.1)
    with own_limiter(RateLimiter(clock=clock)):
        first = answer(client.post(save))
        clock.now += 1
        # When the client retries the same request 1 s later
        again = answer(client.post(save))
        # Then it gets the first answer (one template), not E106
        assert first["status"] == "Success", first
        assert again == first
        # And another request that soon is still E106
        assert outcome(client.post(CURRENT.format(key=client.api_key)))[0] == "E106"


def test_a_function_that_goes_cold_holds_a_few_seconds_of_the_daily_quota(
    client: Client,
) -> None:
    # Given a quota of 10 million (leases up to 10000 each before), and a function that
    # serves 20 requests a second for 30 s, then goes cold
    set_limits(client, daily_quota=10_000_000)
    clock = Clock()
    with own_limiter(RateLimiter(clock=clock)):
        for step in range(600):
            clock.now = T0 + step / 20
            assert outcome(client.post(CURRENT.format(key=client.api_key)))[0] == "Success"
    day = datetime.fromtimestamp(T0, UTC).date().isoformat()
    item = aws.dynamodb().get_item(
        TableName=get_settings().limits_table,
        Key={"key": {"S": day_key(client.account.account_id, day)}},
    )["Item"]
    # Then what it leased and did not spend is at most 10 s of its requests (and leases
    # still cost well under one call per request)
    assert int(item["n"]["N"]) - 600 <= 10 * 20


def test_a_request_refused_by_a_limit_runs_when_retried_later(client: Client) -> None:
    # Given one saveMMS per second, used up by a first request
    set_limits(client, throughput={"saveMMS": 1})

    def save(reference: str) -> dict[str, str]:
        return answer(
            client.post(
                f"<request><action>saveMMS</action><api-key>{client.api_key}</api-key>"
                f"<name>n</name><message-subject>Hi</message-subject><client-reference>"
                f"{reference}</client-reference><slide><message-text>Hello</message-text>"
                "</slide></request>"
            )
        )

    clock = Clock(T0 + 0.1)
    with own_limiter(RateLimiter(clock=clock)):
        assert save("r-3")["status"] == "Success"
        # When another request is refused E113, then retried the next second
        assert save("r-4").get("error-code") == "E113"
        clock.now += 1
        retried = save("r-4")
    # Then the retry runs (the refusal left no idempotency record behind)
    assert retried["status"] == "Success", retried
    assert retried["mms-id"] != save("r-3")["mms-id"]
