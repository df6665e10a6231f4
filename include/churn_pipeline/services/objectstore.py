"""One object-store abstraction over S3 URIs: Amazon S3 itself, or a folder that mirrors it.

The local store maps ``s3://bucket/key`` to ``<root>/s3/bucket/key``. It refuses any URI that
could escape its root, and every write is atomic (a temporary file renamed into place), so a reader
never sees half a file. A prefix means the object with exactly that key or the objects below
``<prefix>/``, which is what SageMaker stages for an ``S3Prefix`` input in practice; a sibling that
merely shares the leading characters (``data.csv.bak`` for ``data.csv``) is not included.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from churn_pipeline.domain.s3_uris import ObjectStoreError, parse_s3_uri


def _relative(key: str, prefix: str) -> str:
    return Path(key).name if key == prefix else key[len(prefix) + 1:]


class ObjectStore(Protocol):
    def read_bytes(self, uri: str) -> bytes: ...
    def read_head(self, uri: str, size: int) -> bytes: ...
    def read_tail(self, uri: str, size: int) -> bytes: ...
    def sizes(self, prefix_uri: str) -> dict[str, int]: ...
    def write_bytes(self, uri: str, data: bytes) -> None: ...
    def exists(self, uri: str) -> bool: ...
    def list_uris(self, prefix_uri: str) -> list[str]: ...
    def upload_file(self, path: Path, uri: str) -> None: ...
    def fetch(self, uri: str, target: Path) -> None: ...
    def delete(self, uri: str) -> None: ...


def download(store: ObjectStore, prefix_uri: str, destination: Path) -> list[Path]:
    """Copy an object, or every object below a prefix, into ``destination`` as SageMaker stages inputs."""
    _, prefix = parse_s3_uri(prefix_uri)
    copied = []
    for uri in store.list_uris(prefix_uri):
        _, key = parse_s3_uri(uri)
        target = Path(destination) / _relative(key, prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        store.fetch(uri, target)
        copied.append(target)
    return copied


def upload_tree(store: ObjectStore, folder: Path, prefix_uri: str) -> list[str]:
    """Upload every file below ``folder`` to ``prefix_uri``, keeping relative paths; returns the URIs."""
    uploaded = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            uri = f"{prefix_uri.rstrip('/')}/{path.relative_to(folder).as_posix()}"
            store.upload_file(path, uri)
            uploaded.append(uri)
    return uploaded


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_copy(source: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class LocalObjectStore:
    """S3 URIs mapped onto ``<root>/s3/<bucket>/<key>``."""

    def __init__(self, root: Path):
        self.root = Path(root).absolute()
        self.objects_root = self.root / "s3"

    def path_for(self, uri: str) -> Path:
        bucket, key = parse_s3_uri(uri)
        path = (self.objects_root / bucket / key).resolve()
        if not path.is_relative_to(self.objects_root.resolve()):
            raise ObjectStoreError(f"{uri!r} resolves outside the local store {self.objects_root}")
        return path

    def read_bytes(self, uri: str) -> bytes:
        path = self.path_for(uri)
        if not path.is_file():
            raise ObjectStoreError(f"no object at {uri} (local store: {path})")
        return path.read_bytes()

    def read_head(self, uri: str, size: int) -> bytes:
        """The object's first ``size`` bytes (fewer when it is shorter), reading no more."""
        path = self.path_for(uri)
        if not path.is_file():
            raise ObjectStoreError(f"no object at {uri} (local store: {path})")
        with path.open("rb") as handle:
            return handle.read(size)

    def read_tail(self, uri: str, size: int) -> bytes:
        """The object's last ``size`` bytes (all of it when smaller): a Parquet footer without the data."""
        path = self.path_for(uri)
        if not path.is_file():
            raise ObjectStoreError(f"no object at {uri} (local store: {path})")
        with path.open("rb") as stream:
            end = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, end - size))
            return stream.read()

    def sizes(self, prefix_uri: str) -> dict[str, int]:
        """Each object's size in bytes under the prefix (as ``list_uris`` lists them), reading none."""
        return {uri: self.path_for(uri).stat().st_size for uri in self.list_uris(prefix_uri)}

    def write_bytes(self, uri: str, data: bytes) -> None:
        atomic_write(self.path_for(uri), data)

    def exists(self, uri: str) -> bool:
        return bool(self.list_uris(uri))

    def list_uris(self, prefix_uri: str) -> list[str]:
        bucket, key = parse_s3_uri(prefix_uri)
        path = self.path_for(prefix_uri)
        if path.is_file():
            return [f"s3://{bucket}/{key}"]
        if not path.is_dir():
            return []
        return [f"s3://{bucket}/{key}/{item.relative_to(path).as_posix()}"
                for item in sorted(path.rglob("*")) if item.is_file() and not item.name.endswith(".partial")]

    def upload_file(self, path: Path, uri: str) -> None:
        atomic_copy(Path(path), self.path_for(uri))

    def delete(self, uri: str) -> None:
        self.path_for(uri).unlink(missing_ok=True)

    def fetch(self, uri: str, target: Path) -> None:
        shutil.copyfile(self.path_for(uri), target)


class S3ObjectStore:
    """Amazon S3 through a boto3 client (from the Airflow AWS connection)."""

    def __init__(self, client: Any):
        self.client = client

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = parse_s3_uri(uri)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise ObjectStoreError(f"no object at {uri}") from None

    def read_head(self, uri: str, size: int) -> bytes:
        """The object's first ``size`` bytes through a ranged GET: a large input is not downloaded."""
        return self._ranged_get(uri, f"bytes=0-{size - 1}")

    def read_tail(self, uri: str, size: int) -> bytes:
        """The object's last ``size`` bytes (all of it when smaller), in one ranged GET."""
        return self._ranged_get(uri, f"bytes=-{size}")

    def _ranged_get(self, uri: str, byte_range: str) -> bytes:
        bucket, key = parse_s3_uri(uri)
        try:
            return self.client.get_object(Bucket=bucket, Key=key, Range=byte_range)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise ObjectStoreError(f"no object at {uri}") from None
        except self.client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidRange":  # S3's answer for an empty object
                return b""
            raise

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = parse_s3_uri(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)  # S3 puts are atomic

    def exists(self, uri: str) -> bool:
        return bool(self.list_uris(uri))

    def list_uris(self, prefix_uri: str) -> list[str]:
        return sorted(self.sizes(prefix_uri))

    def sizes(self, prefix_uri: str) -> dict[str, int]:
        """Each object's size in bytes under the prefix, from the listing itself (nothing is read)."""
        bucket, key = parse_s3_uri(prefix_uri)
        paginator = self.client.get_paginator("list_objects_v2")
        found = {}
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                if item["Key"] == key or item["Key"].startswith(f"{key}/"):
                    found[f"s3://{bucket}/{item['Key']}"] = int(item["Size"])
        return dict(sorted(found.items()))

    def upload_file(self, path: Path, uri: str) -> None:
        bucket, key = parse_s3_uri(uri)
        self.client.upload_file(str(path), bucket, key)

    def delete(self, uri: str) -> None:
        bucket, key = parse_s3_uri(uri)
        self.client.delete_object(Bucket=bucket, Key=key)

    def fetch(self, uri: str, target: Path) -> None:
        bucket, key = parse_s3_uri(uri)
        self.client.download_file(bucket, key, str(target))
