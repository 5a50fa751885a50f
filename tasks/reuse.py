"""A task run that reused a stored artifact ends "Cached", as in Prefect's own cache, so a retried or rerun flow
shows (and tests count) which finished tasks did no work again."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from prefect import Task
from prefect.states import Completed

from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore

CACHED = "Cached"


def reuse_shows_cached(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a task body: when it returns an artifact committed before the call began (an earlier run, a retried
    run, another process), the task run ends in a Completed state named "Cached" instead of "Completed"."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.time()
        ref = fn(*args, **kwargs)
        if isinstance(ref, ArtifactRef):
            try:
                created = float(ArtifactStore.from_settings().sidecar(ref).get("created", t0))
            except Exception:  # noqa: BLE001 - an unreadable sidecar only costs the label
                created = t0
            if created < t0:
                return Completed(name=CACHED, data=ref, message=f"reused {ref.stage} {ref.short} from the store")
        return ref

    return wrapper


def shows_cached(task: Task) -> Task:
    """The same task (name, tags, options), whose runs end "Cached" when they reuse a stored artifact.
    Use it through `.submit(...).result()`: a direct call would hand back the State itself."""
    new = task.with_options()
    new.fn = reuse_shows_cached(task.fn)
    return new
