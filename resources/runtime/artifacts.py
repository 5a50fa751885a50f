"""Artifacts addressed by their recipe.

A `Recipe` (stage, backend, model id@revision, parameters, upstream artifacts' content hashes) hashes to a
key; the key names a JSON sidecar — the commit marker — that points at the data file and records the recipe,
the content sha256, size, media type and time. Data files carry a content-hash suffix, so two processes that
write the same key never clobber each other's bytes: whichever sidecar lands last names a complete file.

Local folders: temp file + `os.replace`. S3 (through s3fs): upload the data, then the sidecar. Reads verify the
content hash; a missing or corrupt artifact reads as absent, so its producer runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
from pydantic import BaseModel, Field

from studio.configs.errors import StudioError

RECIPE_FORMAT = 1


class StoreError(StudioError):
    pass


class Recipe(BaseModel):
    """Everything that determines an artifact's bytes. Change any field → a new key."""

    stage: str = Field(pattern=r"^[a-z0-9_]+$")
    backend: str
    model: str = ""  # model id@revision ("" for pure algorithms)
    params: dict[str, Any] = {}
    inputs: list[str] = []  # upstream artifacts' sha256, in order (Merkle-like keys)

    def key(self) -> str:
        payload = {"format": RECIPE_FORMAT, **self.model_dump(mode="json")}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


class ArtifactRef(BaseModel):
    """What tasks pass around: small and serialisable, never the bytes."""

    key: str
    uri: str
    sha256: str
    media_type: str
    size: int
    stage: str

    @property
    def short(self) -> str:
        return self.key[:12]


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class ArtifactStore:
    def __init__(self, uri: str, storage_options: dict | None = None, cache_dir: Path | None = None):
        self.uri = uri.rstrip("/")
        self.is_local = "://" not in self.uri or self.uri.startswith("file://")
        if self.is_local:
            self.root = self.uri.removeprefix("file://")
            Path(self.root).mkdir(parents=True, exist_ok=True)
        else:
            self.root = self.uri
        self.fs = fsspec.filesystem(fsspec.utils.get_protocol(self.uri), **(storage_options or {}))
        self.cache_dir = cache_dir
        self._verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) → sha256

    @classmethod
    def from_settings(cls) -> ArtifactStore:
        from studio.configs.settings import get_settings

        s = get_settings()
        return cls(s.store_uri, s.storage_options(), cache_dir=s.home / "cache" / "blobs")

    # ------------------------------------------------------------------ addressing
    def _dir(self, recipe_or_stage: Recipe | str, key: str) -> str:
        stage = recipe_or_stage if isinstance(recipe_or_stage, str) else recipe_or_stage.stage
        return f"{self.root}/{stage}/{key[:2]}"

    def sidecar_path(self, recipe: Recipe) -> str:
        key = recipe.key()
        return f"{self._dir(recipe, key)}/{key}.json"

    # ------------------------------------------------------------------ reads
    def read_sidecar(self, recipe: Recipe) -> dict | None:
        path = self.sidecar_path(recipe)
        try:
            with self.fs.open(path, "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a torn or corrupted sidecar reads as absent: the producer runs again
        except OSError as e:
            raise StoreError(f"cannot read {path} from the artifact store {self.uri}: {e}") from e

    def lookup(self, recipe: Recipe, verify: bool = True) -> ArtifactRef | None:
        """The committed, intact artifact for this recipe, or None (missing, corrupt, or half-written)."""
        meta = self.read_sidecar(recipe)
        if not meta:
            return None
        ref = ArtifactRef(**{k: meta[k] for k in ArtifactRef.model_fields})
        if verify and not self.verify(ref):
            return None
        return ref

    def verify(self, ref: ArtifactRef) -> bool:
        try:
            if self.is_local:
                st = os.stat(ref.uri)
                if st.st_size != ref.size:
                    return False
                memo = (ref.uri, st.st_size, st.st_mtime_ns)
                if memo not in self._verified:
                    self._verified[memo] = sha256_file(ref.uri)
                return self._verified[memo] == ref.sha256
            info = self.fs.info(ref.uri)
            if int(info.get("size", -1)) != ref.size:
                return False
            return sha256_file(self._fetch(ref, verify=False)) == ref.sha256
        except (FileNotFoundError, OSError):
            return False

    def local_path(self, ref: ArtifactRef, verify: bool = True) -> Path:
        """A local file with the artifact's bytes (S3 artifacts are fetched into a content cache)."""
        if self.is_local:
            if verify and not self.verify(ref):
                raise StoreError(f"artifact {ref.short} ({ref.uri}) is missing or corrupt; rerun the step "
                                 "that produced it (its cache entry is ignored now)")
            return Path(ref.uri)
        return self._fetch(ref, verify=verify)

    def _fetch(self, ref: ArtifactRef, verify: bool) -> Path:
        cache = self.cache_dir or Path(tempfile.gettempdir()) / "studio-blobs"
        cache.mkdir(parents=True, exist_ok=True)
        suffix = Path(ref.uri).suffix
        target = cache / f"{ref.sha256}{suffix}"
        if target.exists() and (not verify or sha256_file(target) == ref.sha256):
            return target
        tmp = cache / f".{ref.sha256}.{uuid.uuid4().hex}.part"
        try:
            self.fs.get(ref.uri, str(tmp))
            if verify and sha256_file(tmp) != ref.sha256:
                raise StoreError(f"artifact {ref.short} at {ref.uri} fails its hash check; rerun its step")
            os.replace(tmp, target)
        except FileNotFoundError as e:
            raise StoreError(f"artifact {ref.short} is missing at {ref.uri}; rerun the step that made it") from e
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def read_bytes(self, ref: ArtifactRef) -> bytes:
        return self.local_path(ref).read_bytes()

    def read_json(self, ref: ArtifactRef) -> Any:
        return json.loads(self.read_bytes(ref))

    # ------------------------------------------------------------------ writes
    def put_file(self, recipe: Recipe, src: Path | str, media_type: str, extra: dict | None = None) -> ArtifactRef:
        """Commit a finished local file under the recipe's key (copy; the source is left alone)."""
        src = Path(src)
        if not src.is_file() or src.stat().st_size == 0:
            raise StoreError(f"refusing to store an empty or missing file for stage '{recipe.stage}': {src}")
        key = recipe.key()
        digest = sha256_file(src)
        size = src.stat().st_size
        folder = self._dir(recipe, key)
        data_path = f"{folder}/{key}-{digest[:12]}{src.suffix}"
        side_path = f"{folder}/{key}.json"
        meta = {
            "key": key, "uri": data_path, "sha256": digest, "media_type": media_type, "size": size,
            "stage": recipe.stage, "recipe": recipe.model_dump(mode="json"), "created": time.time(),
            "created_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pid": os.getpid(),
            "extra": extra or {},
        }
        try:
            if self.is_local:
                os.makedirs(folder, exist_ok=True)
                if not (os.path.exists(data_path) and sha256_file(data_path) == digest):
                    _atomic_copy(src, Path(data_path))
                _atomic_write(Path(side_path), json.dumps(meta, indent=2).encode())
            else:
                self.fs.put_file(str(src), data_path)
                with self.fs.open(side_path, "wb") as f:  # the commit marker, written last
                    f.write(json.dumps(meta, indent=2).encode())
        except OSError as e:
            raise StoreError(f"could not write artifact for stage '{recipe.stage}' to {self.uri}: {e}. "
                             "Free disk space or fix the store's credentials/endpoint, then rerun: "
                             "finished artifacts are kept.") from e
        return ArtifactRef(**{k: meta[k] for k in ArtifactRef.model_fields})

    def put_bytes(self, recipe: Recipe, data: bytes, media_type: str, suffix: str) -> ArtifactRef:
        def write(tmp: Path) -> None:
            tmp.write_bytes(data)

        return self.lookup_or_make(recipe, suffix, media_type, write, reuse=False)

    def put_json(self, recipe: Recipe, obj: Any) -> ArtifactRef:
        return self.put_bytes(recipe, json.dumps(obj, indent=2, sort_keys=True, default=str).encode(),
                              "application/json", ".json")

    def lookup_or_make(self, recipe: Recipe, suffix: str, media_type: str,
                       write: Callable[[Path], Any], reuse: bool = True) -> ArtifactRef:
        """The one "look up or make" of every stage: the stored artifact if it is intact (Prefect's result
        record lost, or another process finished first); else `write(tmp_path)` fills a private temp file,
        whose returned dict (if it returns one) becomes the sidecar's `extra`, and the file is committed
        atomically. A failed `write` commits nothing."""
        if reuse and (ref := self.lookup(recipe)) is not None:
            return ref
        scratch = Path(tempfile.mkdtemp(prefix="studio-art-"))
        try:
            path = scratch / f"out{suffix}"
            extra = write(path)
            return self.put_file(recipe, path, media_type, extra if isinstance(extra, dict) else None)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def lookup_or_make_json(self, recipe: Recipe, build: Callable[[], Any]) -> ArtifactRef:
        """`lookup_or_make` for a JSON document: `build()` runs only when the artifact is not stored yet."""
        if (ref := self.lookup(recipe)) is not None:
            return ref
        return self.put_json(recipe, build())

    def sidecar(self, ref: ArtifactRef) -> dict:
        with self.fs.open(f"{self._dir(ref.stage, ref.key)}/{ref.key}.json", "rb") as f:
            return json.loads(f.read())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    try:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
