"""S3's URI and bucket-name grammar: pure, so that settings and the layouts can check names without
importing an object store."""

from __future__ import annotations

import re

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ObjectStoreError(ValueError):
    """A URI that cannot be used, or an object that is not there."""


def is_s3_uri(value: str) -> bool:
    return value.startswith("s3://")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key), refusing anything that is not a plain, safe key."""
    if not is_s3_uri(uri):
        raise ObjectStoreError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not BUCKET_NAME.match(bucket) or ".." in bucket:
        raise ObjectStoreError(f"invalid bucket name {bucket!r} in {uri!r}")
    key = key.rstrip("/")
    if not key:
        raise ObjectStoreError(f"no key in {uri!r}: name an object or a prefix below the bucket")
    parts = key.split("/")
    if key.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\\" in key or "\x00" in key:
        raise ObjectStoreError(f"unsafe key in {uri!r}: empty, '.' or '..' segments and backslashes are refused")
    return bucket, key
