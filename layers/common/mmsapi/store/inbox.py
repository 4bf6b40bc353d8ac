"""Received MMS (MO) in the media bucket: one object per part, under mo/<account>/<mo-id>/.

Each object carries what its download link needs (services/inbound.py): the sha256 of
the message's link secret and the link's expiry, as object metadata, and its file name
as Content-Disposition. The bucket's lifecycle rule removes mo/ objects after
MO_KEEP_DAYS (template.yaml), so storage is bounded whatever nobody downloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from botocore.exceptions import BotoCoreError, ClientError

from mmsapi.errors import DomainError
from mmsapi.settings import get_settings
from mmsapi.store import aws

PREFIX: Final = "mo/"
# Object metadata names (S3 keeps them lower case, as x-amz-meta-*).
LINK_HASH: Final = "link-sha256"
LINK_EXPIRES: Final = "link-expires"


def mo_key(account_id: str, mo_id: str, number: int) -> str:
    return f"{PREFIX}{account_id}/{mo_id}/{number}"


@dataclass(frozen=True)
class StoredPart:
    key: str
    link_hash: str
    expires: int  # epoch seconds


class InboxStore:
    def __init__(self, bucket: str | None = None) -> None:
        self.bucket = bucket or get_settings().media_bucket

    def put(self, part: StoredPart, data: bytes, content_type: str, filename: str) -> None:
        """One part; `filename` must be header-safe (mm7_deliver makes it so)."""
        try:
            aws.s3().put_object(
                Bucket=self.bucket,
                Key=part.key,
                Body=data,
                ContentType=content_type,
                ContentDisposition=f'attachment; filename="{filename}"',
                Metadata={LINK_HASH: part.link_hash, LINK_EXPIRES: str(part.expires)},
            )
        except (ClientError, BotoCoreError) as exc:
            raise DomainError(f"MO part write failed: {exc}") from exc

    def delete(self, keys: list[str]) -> None:
        """Remove parts (those of a message that could not be stored whole)."""
        if not keys:
            return
        try:
            aws.s3().delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
        except (ClientError, BotoCoreError) as exc:
            raise DomainError(f"MO part removal failed: {exc}") from exc

    def link_of(self, key: str) -> StoredPart | None:
        """The link facts of a stored part, or None when there is no such part (any
        refusal: without s3:ListBucket, S3 answers 403 for a missing key)."""
        try:
            head = aws.s3().head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return None
        except BotoCoreError as exc:
            raise DomainError(f"MO part read failed: {exc}") from exc
        meta = head.get("Metadata", {})
        expires = meta.get(LINK_EXPIRES, "")
        if not meta.get(LINK_HASH) or not expires.isdigit():
            return None
        return StoredPart(key=key, link_hash=meta[LINK_HASH], expires=int(expires))

    def presigned_url(self, key: str, seconds: int) -> str:
        return aws.s3().generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds
        )
