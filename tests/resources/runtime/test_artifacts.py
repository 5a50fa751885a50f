"""Artifact store: recipe addressing, atomic commits, hash verification, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest
from support.workers import write_thirty_versions

from studio.resources.runtime.artifacts import ArtifactStore, Recipe, StoreError


def _recipe(**params) -> Recipe:
    return Recipe(stage="unit", backend="test", model="m@1", params=params)


def test_recipe_key_is_stable_and_sensitive():
    a = _recipe(x=1, y="a")
    assert a.key() == Recipe(stage="unit", backend="test", model="m@1", params={"y": "a", "x": 1}).key()
    assert a.key() != _recipe(x=2, y="a").key()
    assert a.key() != Recipe(stage="unit", backend="test", model="m@2", params={"x": 1, "y": "a"}).key()
    assert a.key() != Recipe(stage="unit", backend="test", model="m@1", params={"x": 1, "y": "a"},
                             inputs=["abc"]).key()


def test_put_lookup_verify_roundtrip(tmp_path):
    store = ArtifactStore(str(tmp_path / "s"))
    r = _recipe(x=1)
    assert store.lookup(r) is None
    ref = store.put_bytes(r, b"hello", "text/plain", ".txt")
    assert ref.key == r.key() and ref.size == 5
    assert store.lookup(r) == ref
    side = json.loads(Path(store.sidecar_path(r)).read_text())
    assert side["recipe"]["params"] == {"x": 1} and side["sha256"] == ref.sha256
    assert side["media_type"] == "text/plain" and "created" in side
    assert store.read_bytes(ref) == b"hello"
    # The data path is derived from the key (and the content hash).
    assert r.key() in ref.uri and ref.uri.startswith(str(tmp_path / "s" / "unit"))


def test_corrupt_or_deleted_artifact_reads_as_absent(tmp_path):
    store = ArtifactStore(str(tmp_path / "s"))
    r = _recipe(x=2)
    ref = store.put_bytes(r, b"payload", "text/plain", ".txt")
    Path(ref.uri).write_bytes(b"pAyload")  # same size, different bytes
    assert store.lookup(r) is None
    with pytest.raises(StoreError, match="missing or corrupt"):
        store.local_path(ref)
    ref = store.put_bytes(r, b"payload", "text/plain", ".txt")
    Path(ref.uri).unlink()
    assert store.lookup(r) is None
    Path(store.sidecar_path(r)).write_text("{torn")
    assert store.lookup(r) is None


def test_failed_write_commits_nothing(tmp_path):
    store = ArtifactStore(str(tmp_path / "s"))
    r = _recipe(x=3)

    def crash(p):
        p.write_bytes(b"partial")
        raise RuntimeError("crash mid-render")

    with pytest.raises(RuntimeError):
        store.lookup_or_make(r, ".bin", "application/octet-stream", crash)
    assert store.lookup(r) is None
    assert not list((tmp_path / "s").rglob("*.json"))
    with pytest.raises(StoreError, match="empty or missing"):
        store.lookup_or_make(r, ".bin", "application/octet-stream", lambda p: p.write_bytes(b""))




def test_two_processes_writing_the_same_key_stay_consistent(tmp_path):
    root = str(tmp_path / "s")
    q = mp.get_context("spawn").Queue()
    procs = [mp.get_context("spawn").Process(target=write_thirty_versions, args=(root, i, q)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = ArtifactStore(root)
    ref = store.lookup(Recipe(stage="race", backend="t", params={"k": 1}))
    assert ref is not None, "the last committed sidecar must name an intact file"
    assert store.read_bytes(ref).startswith(b"writer-")
    assert not list(Path(root).rglob("*.tmp"))


def test_a_copied_store_keeps_its_artifacts(tmp_path):
    """Sidecars name their data file; the folder they recorded is never used, so a store moved or copied to
    another place (a new STUDIO_HOME, a synced bucket) still finds every artifact, verified."""
    import shutil

    first = ArtifactStore(str(tmp_path / "a"))
    r = _recipe(x=7)
    ref = first.put_bytes(r, b"finished work" * 100, "text/plain", ".txt")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    moved = ArtifactStore(str(tmp_path / "b"))
    found = moved.lookup(r)
    assert found is not None and found.sha256 == ref.sha256
    assert found.uri.startswith(str(tmp_path / "b")) and moved.local_path(found).read_bytes() == b"finished work" * 100
