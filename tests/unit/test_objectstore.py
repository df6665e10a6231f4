"""The local object store mirrors S3 under its root, never writes outside it, and writes atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from churn_pipeline.services.objectstore import LocalObjectStore, ObjectStoreError, download, parse_s3_uri, upload_tree

ESCAPES = [
    "s3://bucket/../../etc/passwd",
    "s3://bucket/a/../../b",
    "s3://bucket//absolute/key",
    "s3://bucket/./key",
    "s3://../key",
    "s3:///key",
    "s3://bucket",
    "s3://bucket/",
    "s3://Bad_Bucket/key",
    "s3://ab/key",
    "s3://bucket/a\\..\\b",
    "/etc/passwd",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("uri", ESCAPES)
def test_uris_that_could_escape_the_root_are_refused(tmp_path: Path, uri: str) -> None:
    store = LocalObjectStore(tmp_path / "root")
    with pytest.raises(ObjectStoreError) as raised:
        store.write_bytes(uri, b"x")
    assert repr(uri) in str(raised.value) and "\n" not in str(raised.value)
    assert not any(p.is_file() for p in tmp_path.rglob("*")), "nothing may be written anywhere"


@pytest.mark.parametrize("uri, reason", [
    ("s3://customer-churn-pipeline/../../etc/passwd", "unsafe key in "),
    ("s3://customer-churn-pipeline//etc/passwd", "unsafe key in "),
    ("s3://NOT_A_BUCKET/x.csv", "invalid bucket name 'NOT_A_BUCKET' in "),
])
def test_a_refusal_says_why(tmp_path: Path, uri: str, reason: str) -> None:
    with pytest.raises(ObjectStoreError, match="^" + reason):
        LocalObjectStore(tmp_path).read_bytes(uri)


def test_a_symlink_inside_the_store_cannot_lead_outside(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "root")
    (tmp_path / "root" / "s3" / "bucket").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "s3" / "bucket" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ObjectStoreError, match="outside the local store"):
        store.write_bytes("s3://bucket/link/file", b"x")
    assert list((tmp_path / "outside").iterdir()) == []


def test_objects_and_prefixes_round_trip(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    store.write_bytes("s3://bucket/p/data.csv", b"a")
    store.write_bytes("s3://bucket/p/data.csv.bak", b"b")
    store.write_bytes("s3://bucket/p/dir/x.csv", b"c")
    assert (tmp_path / "s3" / "bucket" / "p" / "data.csv").read_bytes() == b"a"
    assert store.list_uris("s3://bucket/p/data.csv") == ["s3://bucket/p/data.csv"]
    assert store.list_uris("s3://bucket/p/dir") == ["s3://bucket/p/dir/x.csv"]
    copied = download(store, "s3://bucket/p/data.csv", tmp_path / "dest")
    assert [p.name for p in copied] == ["data.csv"]
    assert not store.exists("s3://bucket/p/missing")


def test_upload_tree_keeps_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "src" / "a").mkdir(parents=True)
    (tmp_path / "src" / "a" / "f.txt").write_text("1")
    store = LocalObjectStore(tmp_path / "root")
    assert upload_tree(store, tmp_path / "src", "s3://bucket/out") == ["s3://bucket/out/a/f.txt"]


def test_parse_s3_uri() -> None:
    assert parse_s3_uri("s3://my-bucket/a/b.csv") == ("my-bucket", "a/b.csv")
    assert parse_s3_uri("s3://my-bucket/a/prefix/") == ("my-bucket", "a/prefix")


def test_writes_leave_no_partial_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    store = LocalObjectStore(tmp_path)
    store.write_bytes("s3://bucket/k", b"old")

    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store.write_bytes("s3://bucket/k", b"new")
    assert store.read_bytes("s3://bucket/k") == b"old"
    assert [p.name for p in (tmp_path / "s3" / "bucket").iterdir()] == ["k"]


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path):
    """Both stores behind the same protocol: the local folder, and S3 (moto, in process)."""
    if request.param == "local":
        yield LocalObjectStore(tmp_path)
        return
    import boto3
    from moto import mock_aws

    from churn_pipeline.services.objectstore import S3ObjectStore

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        client.create_bucket(Bucket="bucket")
        yield S3ObjectStore(client)


def test_the_tail_of_an_object_is_read_without_the_rest(any_store) -> None:
    any_store.write_bytes("s3://bucket/p/data.parquet", b"0123456789")
    any_store.write_bytes("s3://bucket/p/empty", b"")

    assert any_store.read_tail("s3://bucket/p/data.parquet", 4) == b"6789"
    assert any_store.read_tail("s3://bucket/p/data.parquet", 100) == b"0123456789"  # smaller than asked: all of it
    assert any_store.read_tail("s3://bucket/p/empty", 8) == b""
    with pytest.raises(ObjectStoreError, match="no object at s3://bucket/p/missing"):
        any_store.read_tail("s3://bucket/p/missing", 8)
