"""The handset cache: the handset profile of each number, learnt from delivery reports.

One item per number. An entry lives a year from its last refresh (DynamoDB TTL on
expires_at); TTL deletes lazily, so an expired entry still present is not returned.
A report that tells what the entry already says is not written again before
REFRESH_AFTER (`learn`): most reports repeat the handset's UAProf, and a read costs
a tenth of a write.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsapi.errors import DomainError
from mmsapi.records import record
from mmsapi.settings import get_settings
from mmsapi.store import aws, dynamo

LIFETIME: Final = timedelta(days=365)
# An entry seen again is refreshed at most this often (it still lives LIFETIME from then).
REFRESH_AFTER: Final = timedelta(days=30)


@record
class HandsetEntry:
    number: str
    profile_id: str
    ua_prof: str  # the UAProf URL the profile was chosen from; "" when none was given
    learned_from: str  # what told it, e.g. "ddm" or "delivery-report"
    updated_at: datetime
    expires_at: int  # epoch seconds


class HandsetCache:
    def __init__(self, table: str | None = None) -> None:
        self.table = table or get_settings().handsets_table

    def get(self, number: str, *, now: datetime | None = None) -> HandsetEntry | None:
        try:
            found = aws.dynamodb().get_item(TableName=self.table, Key={"number": {"S": number}})
        except ClientError as exc:
            raise DomainError(f"handset read failed: {exc}") from exc
        item = found.get("Item")
        if item is None:
            return None
        entry = _entry(item)
        moment = now or datetime.now(UTC)
        return entry if entry.expires_at > moment.timestamp() else None

    def learn(
        self,
        number: str,
        profile_id: str,
        ua_prof: str | None,
        learned_from: str,
        *,
        now: datetime | None = None,
    ) -> HandsetEntry:
        """What a report tells of a number's handset: written (put) when it is another
        profile or UAProf than the entry's, or the entry is REFRESH_AFTER old; else the
        entry as it is (one eventually consistent read, half a read unit)."""
        moment = now or datetime.now(UTC)
        known = self.get(number, now=moment)
        if (
            known is not None
            and (known.profile_id, known.ua_prof) == (profile_id, ua_prof or "")
            and moment - known.updated_at < REFRESH_AFTER
        ):
            return known
        return self.put(number, profile_id, ua_prof, learned_from, now=moment)

    def put(
        self,
        number: str,
        profile_id: str,
        ua_prof: str | None,
        learned_from: str,
        *,
        now: datetime | None = None,
    ) -> HandsetEntry:
        """Record (or refresh) the handset of a number for another year."""
        moment = now or datetime.now(UTC)
        entry = HandsetEntry(
            number=number,
            profile_id=profile_id,
            ua_prof=ua_prof or "",
            learned_from=learned_from,
            updated_at=moment,
            expires_at=int((moment + LIFETIME).timestamp()),
        )
        dynamo.put_item(self.table, _item(entry), what="handset")
        return entry


def _item(entry: HandsetEntry) -> dict[str, Any]:
    return {
        "number": {"S": entry.number},
        "profile_id": {"S": entry.profile_id},
        "ua_prof": {"S": entry.ua_prof},
        "learned_from": {"S": entry.learned_from},
        "updated_at": {"S": entry.updated_at.isoformat()},
        "expires_at": {"N": str(entry.expires_at)},
    }


def _entry(item: dict[str, Any]) -> HandsetEntry:
    return HandsetEntry(
        number=item["number"]["S"],
        profile_id=item["profile_id"]["S"],
        ua_prof=item.get("ua_prof", {}).get("S", ""),
        learned_from=item.get("learned_from", {}).get("S", ""),
        updated_at=datetime.fromisoformat(item["updated_at"]["S"]),
        expires_at=int(item["expires_at"]["N"]),
    )
