"""The media bucket: originals and renditions of every template, under one prefix each."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from botocore.exceptions import BotoCoreError, ClientError

from mmsapi.errors import DomainError
from mmsapi.settings import get_settings
from mmsapi.store import aws


def template_prefix(account_id: str, mms_id: int) -> str:
    return f"templates/{account_id}/{mms_id}/"


class MediaStore:
    def __init__(self, bucket: str | None = None) -> None:
        self.bucket = bucket or get_settings().media_bucket

    def put(self, key: str, body: bytes | IO[bytes], content_type: str) -> None:
        try:
            if isinstance(body, bytes):
                aws.s3().put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
                )
            else:
                aws.s3().upload_fileobj(
                    body, self.bucket, key, ExtraArgs={"ContentType": content_type}
                )
        except ClientError as exc:
            raise DomainError(f"media write failed: {exc}") from exc

    def put_parts(
        self,
        key: str,
        parts: Iterable[bytes],
        content_type: str,
        *,
        complete: Callable[[Callable[[], None]], None] = lambda finish: finish(),
    ) -> int:
        """Store a file part by part (a multipart upload), holding one part at a time;
        returns its size. Parts but the last must be 5 MiB at least (S3's rule).

        `complete` is handed the call that makes the object appear: a caller may run
        it under a lock, or refuse by raising. On any failure (a part that could not
        be read included) the upload is aborted: no object, no parts left behind.
        """
        s3 = aws.s3()
        try:
            upload_id = s3.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type
            )["UploadId"]
        except ClientError as exc:
            raise DomainError(f"media write failed: {exc}") from exc
        try:
            done: list[dict[str, int | str]] = []
            total = 0
            for number, part in enumerate(parts, start=1):
                answer = s3.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part
                )
                done.append({"PartNumber": number, "ETag": answer["ETag"]})
                total += len(part)
                del part  # not held while the next part is read

            def finish() -> None:
                s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": done},  # type: ignore[typeddict-item]
                )

            complete(finish)
        except BaseException as exc:
            with contextlib.suppress(ClientError, BotoCoreError):
                s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            if isinstance(exc, ClientError):
                raise DomainError(f"media write failed: {exc}") from exc
            raise
        return total

    def get(self, key: str) -> bytes:
        try:
            return aws.s3().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            raise DomainError(f"media read failed: {exc}") from exc

    def download(self, key: str, path: Path) -> None:
        try:
            aws.s3().download_file(self.bucket, key, str(path))
        except ClientError as exc:
            raise DomainError(f"media read failed: {exc}") from exc

    def upload(self, path: Path, key: str, content_type: str) -> None:
        with path.open("rb") as body:
            self.put(key, body, content_type)

    def presigned_url(self, key: str, seconds: int, download_name: str | None = None) -> str:
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if download_name:
            params["ResponseContentDisposition"] = f'attachment; filename="{download_name}"'
        return aws.s3().generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        for page in (
            aws.s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        ):
            found.extend(obj["Key"] for obj in page.get("Contents", []))
        return found

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under a prefix; returns how many were deleted."""
        try:
            keys = self.keys(prefix)
            for start in range(0, len(keys), 1000):
                batch = keys[start : start + 1000]
                aws.s3().delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
        except ClientError as exc:
            raise DomainError(f"media delete failed: {exc}") from exc
        return len(keys)

    def delete_keys(self, keys: list[str]) -> None:
        if not keys:
            return
        try:
            aws.s3().delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
            )
        except ClientError as exc:
            raise DomainError(f"media delete failed: {exc}") from exc
