"""Archives the jobs read and write: the code bundle a job runs (``sourcedir.tar.gz``) and the model
archive the training emulation packs (``model.tar.gz``), byte-identical for identical files."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path


def deterministic_tar(folder: Path) -> bytes:
    """A gzip tarball of ``folder``'s files at the archive root, byte-identical for identical files.

    Every member's time and owner are reset, and the gzip header's own time is 0 (``mtime=0``), so
    equal trees give equal bytes wherever and whenever they are packed. Bytecode caches are left
    out: they differ between machines and no container needs them.
    """
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=6, mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(folder.rglob("*")):
            if "__pycache__" in path.relative_to(folder).parts:
                continue
            info = archive.gettarinfo(str(path), arcname=path.relative_to(folder).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_file():
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)
    return buffer.getvalue()
