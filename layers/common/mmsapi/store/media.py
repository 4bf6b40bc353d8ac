"""The media bucket: originals and renditions of every template, under one prefix each."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from botocore.exceptions import ClientError

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
