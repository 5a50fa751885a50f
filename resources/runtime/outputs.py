"""Output folders of shorts: unique default names and one run at a time per folder.

A default folder is `<slug>-<hash>`: the slug (python-slugify, which transliterates non-Latin text through
text-unidecode: "Кот видит море" → "kot-vidit-more") keeps it readable, the first 8 hex digits of the request's
SHA-256 keep two requests that share a 40-character prefix — or have no Latin transliteration at all — apart.

`hold_output_folder` takes an OS lock on `<folder>/.studio-run.lock` (freed by the kernel if the holder dies):
a second run into the same folder is refused at once with a clear message instead of interleaving writes.
It is re-entrant within a process, so the CLI can hold it around the flow that takes it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

from studio.configs.errors import StudioError
from studio.resources.runtime.servers import os_lock

LOCK_NAME = ".studio-run.lock"


class OutputFolderError(StudioError):
    pass


def folder_name(request: str, max_slug: int = 40) -> str:
    """`<readable slug>-<8 hex of the request's hash>`, or `short-<hash>` when nothing transliterates."""
    from slugify import slugify

    text = " ".join(request.split())
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    slug = slugify(text, max_length=max_slug, word_boundary=True) or "short"
    return f"{slug}-{digest}"


# Folders this process holds (resolved path → depth), like residency's per-process manager lock.
_HELD: dict[str, int] = {}
_GUARD = threading.Lock()


@contextlib.contextmanager
def hold_output_folder(folder: Path) -> Iterator[Path]:
    """Create `folder` and hold its run lock for the block; refuse at once if another process holds it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputFolderError(f"cannot create the output folder {folder}: {e.strerror or e}. Free disk space, "
                              "fix its permissions or pass another --out.") from None
    key = str(folder.resolve())

    def busy() -> Exception:
        return OutputFolderError(f"another run is writing into {folder} right now; wait for it to finish or pass "
                                 "another --out")

    with contextlib.ExitStack() as lock:
        with _GUARD:
            if key not in _HELD:  # the first holder in this process takes the OS lock; no wait: refuse at once
                lock.enter_context(os_lock(folder / LOCK_NAME, 0.0, busy))
            _HELD[key] = _HELD.get(key, 0) + 1
        try:
            yield folder
        finally:
            with _GUARD:
                _HELD[key] -= 1
                if _HELD[key] == 0:
                    del _HELD[key]
