"""Functions that test subprocesses run (spawned children import them by module name, so they cannot live in
a test module, which pytest imports under a name of its own)."""

from __future__ import annotations

from studio.resources.runtime.artifacts import ArtifactStore, Recipe


def write_thirty_versions(root: str, i: int, q) -> None:
    store = ArtifactStore(root)
    r = Recipe(stage="race", backend="t", params={"k": 1})
    refs = [store.put_bytes(r, f"writer-{i}-{n}".encode() * 1000, "text/plain", ".txt") for n in range(30)]
    q.put(len(refs))
