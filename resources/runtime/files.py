"""Every file the studio writes goes through here: a unique temp name in the target's folder, renamed over the
target only when complete. A crash leaves no half-written file and two concurrent writers never share a temp
file; the reader sees the old file or the new one, never a mix."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yield a private temp path beside `path`; on a clean exit it replaces `path`, on an error it is removed.
    `suffix` ends the temp name, for writers that pick a format by extension (e.g. ".npy")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path | str, data: bytes) -> Path:
    """`data` to `path`, fsynced before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_text_atomic(path: Path | str, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def copy_atomic(src: Path | str, dst: Path | str) -> Path:
    """A copy of `src` at `dst`, fsynced before the rename."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    return Path(dst)
