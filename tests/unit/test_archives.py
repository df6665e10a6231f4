"""deterministic_tar: the code bundle (sourcedir.tar.gz) and the model archive (model.tar.gz) are gzip
tarballs, as SageMaker's containers read them, whose bytes depend on the files alone: not on when
they were packed, by whom, or when the files were written."""

from __future__ import annotations

import gzip
import io
import os
import pwd
import tarfile
from pathlib import Path

import pytest

from churn_pipeline.services.archives import deterministic_tar

GZIP_MAGIC = b"\x1f\x8b"
SOMEONE = pwd.getpwnam("nobody")  # a named user and group other than root's, on every Debian


def make_tree(folder: Path, written_at: int, owner: pwd.struct_passwd) -> Path:
    """The same files, written at ``written_at`` (seconds since the epoch) and owned by ``owner``
    (where this runs as root, as the machines and CI do; otherwise by whoever runs it)."""
    files = {"code/training.py": b"print('train')\n", "code/churn_common/__init__.py": b"",
             "model.joblib": b"\x00\x01\x02", "schema.json": b'{"target": {}}\n'}
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (written_at, written_at))
        if os.geteuid() == 0:
            os.chown(path, owner.pw_uid, owner.pw_gid)
    return folder


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """Files with a time and a named owner other than root, so that each reset has something to undo."""
    folder = make_tree(tmp_path / "tree", written_at=1_700_000_000, owner=SOMEONE)
    with tarfile.open(fileobj=io.BytesIO(), mode="w") as plain:
        as_found = plain.gettarinfo(str(folder / "schema.json"))
    assert as_found.mtime != 0 and as_found.uid != 0 and as_found.gid != 0 and as_found.uname and as_found.gname
    return folder


def members(archive: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as bundle:
        return bundle.getmembers()


def test_the_archive_is_gzip_with_no_time_in_its_header(tree: Path) -> None:
    archive = deterministic_tar(tree)

    assert archive[:2] == GZIP_MAGIC, "SageMaker's containers expect a .tar.gz"
    header_mtime = int.from_bytes(archive[4:8], "little")  # RFC 1952: MTIME, bytes 4 to 7
    assert header_mtime == 0, "the gzip header would carry the time of packing"
    assert gzip.decompress(archive)[257:262] == b"ustar", "a tar inside"


def test_files_are_at_the_archive_root_without_bytecode_caches(tree: Path) -> None:
    (tree / "code" / "__pycache__").mkdir()
    (tree / "code" / "__pycache__" / "training.cpython-312.pyc").write_bytes(b"machine-specific")

    names = [member.name for member in members(deterministic_tar(tree))]

    assert names == ["code", "code/churn_common", "code/churn_common/__init__.py", "code/training.py",
                     "model.joblib", "schema.json"]


def test_no_member_carries_a_time_or_an_owner(tree: Path) -> None:
    for member in members(deterministic_tar(tree)):
        assert member.mtime == 0, member.name
        assert (member.uid, member.gid) == (0, 0), member.name
        assert (member.uname, member.gname) == ("", ""), member.name


def test_identical_trees_written_at_other_times_by_other_owners_give_identical_bytes(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "first", written_at=1_700_000_000, owner=SOMEONE)
    second = make_tree(tmp_path / "second", written_at=1_800_000_000, owner=pwd.getpwuid(0))

    assert deterministic_tar(first) == deterministic_tar(second)


def test_other_content_gives_other_bytes(tree: Path) -> None:
    before = deterministic_tar(tree)
    (tree / "schema.json").write_bytes(b'{"target": {"column": "Churn"}}\n')

    assert deterministic_tar(tree) != before
