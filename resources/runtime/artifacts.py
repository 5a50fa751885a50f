"""Artifacts addressed by their recipe.

A `Recipe` (stage, backend, model id@revision, parameters, upstream artifacts' content hashes) hashes to a
key; the key names a JSON sidecar — the commit marker — that points at the data file and records the recipe,
the content sha256, size, media type and time. Data files carry a content-hash suffix, so two processes that
write the same key never clobber each other's bytes: whichever sidecar lands last names a complete file.

Local folders: temp file + `os.replace`. S3 (through s3fs): upload the data, then the sidecar. Reads verify the
content hash; a missing or corrupt artifact reads as absent, so its producer runs again.

A shared store is untrusted input: a sidecar is data, validated against `Sidecar` (64-hex key and sha256, stage
pattern, a data uri of exactly the shape `put_file` writes, inside this store's root) before any of it names a
file; one that fails is ignored with a warning and its producer runs again. Nothing read from the store is ever
unpickled. Transient S3 errors (timeouts, resets, a stalled endpoint) are retried with backoff for
`STUDIO_STORE__RETRY_S` seconds and then raise `StoreUnavailableError`: never read as "absent", so an S3
hiccup does not re-render anything.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
from pydantic import BaseModel, Field, ValidationError

from studio.configs.errors import StudioError
from studio.resources.runtime.files import copy_atomic, write_bytes_atomic

RECIPE_FORMAT = 1
HEX64 = r"^[0-9a-f]{64}$"
STAGE = r"^[a-z0-9_]+$"
SUFFIX = re.compile(r"^(\.[A-Za-z0-9]{1,10})?$")
log = logging.getLogger(__name__)


class StoreError(StudioError):
    pass


class StoreUnavailableError(StoreError):
    """The store did not answer (after retries): not the same as an artifact being absent."""


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

    key: str = Field(pattern=HEX64)
    uri: str = Field(min_length=1, max_length=2048)
    sha256: str = Field(pattern=HEX64)
    media_type: str = Field(pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=100)
    size: int = Field(ge=0)
    stage: str = Field(pattern=STAGE, max_length=64)

    @property
    def short(self) -> str:
        return self.key[:12]


class Sidecar(ArtifactRef):
    """A sidecar as read back from the store: the ref plus what `put_file` records (validated, never trusted)."""

    recipe: dict[str, Any] = {}
    created: float = 0.0
    extra: dict[str, Any] = {}

    def ref(self) -> ArtifactRef:
        return ArtifactRef(**{k: getattr(self, k) for k in ArtifactRef.model_fields})


def _is_transient(e: BaseException) -> bool:
    """Worth retrying: timeouts, connection errors, a stalled or restarting endpoint. Not: absent objects,
    permissions, a full or read-only disk, bad input, our own errors."""
    if isinstance(e, (StoreError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
                      ValueError, TypeError, KeyError)):
        return False
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
        return False
    name = type(e).__name__
    return name not in ("NoCredentialsError", "PartialCredentialsError", "ParamValidationError")


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=1024)
def _memo_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def file_digest(path: Path | str) -> str:
    """sha256 of an input file, memoised on (path, size, mtime) so a film or reference image is hashed once
    per process however many recipes name it."""
    st = os.stat(path)
    return _memo_sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


class ArtifactStore:
    def __init__(self, uri: str, storage_options: dict | None = None, cache_dir: Path | None = None,
                 retry_s: float = 60.0, timeout_s: float = 20.0):
        self.uri = uri.rstrip("/")
        self.is_local = "://" not in self.uri or self.uri.startswith("file://")
        opts = dict(storage_options or {})
        if self.is_local:
            self.root = self.uri.removeprefix("file://")
            Path(self.root).mkdir(parents=True, exist_ok=True)
        else:
            self.root = self.uri
            # Short socket timeouts and few in-client retries: the backoff below owns the waiting, so a stalled
            # endpoint is noticed, retried, and then reported instead of hanging a task for minutes.
            cfg = {"connect_timeout": timeout_s, "read_timeout": timeout_s, "retries": {"max_attempts": 1}}
            opts["config_kwargs"] = {**cfg, **opts.get("config_kwargs", {})}
        self.fs = fsspec.filesystem(fsspec.utils.get_protocol(self.uri), **opts)
        if not self.is_local and hasattr(self.fs, "retries"):
            self.fs.retries = 1  # s3fs's own retry loop (5 by default) would multiply the timeouts
        self.cache_dir = cache_dir
        self.retry_s = retry_s
        self._verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) → sha256

    @classmethod
    def from_settings(cls) -> ArtifactStore:
        from studio.configs.settings import get_settings

        s = get_settings()
        return cls(s.store_uri, s.storage_options(), cache_dir=s.home / "cache" / "blobs",
                   retry_s=s.store.retry_s, timeout_s=s.store.timeout_s)

    # ------------------------------------------------------------------ transient errors
    def _io(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one store operation; on S3 retry transient errors with exponential backoff for `retry_s`."""
        if self.is_local:
            return fn()
        from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

        try:
            for attempt in Retrying(retry=retry_if_exception(_is_transient), stop=stop_after_delay(self.retry_s),
                                    wait=wait_exponential_jitter(multiplier=0.2, max=5.0), reraise=True):
                with attempt:
                    return fn()
        except Exception as e:
            if not _is_transient(e):
                raise
            raise StoreUnavailableError(
                f"the artifact store {self.uri} did not answer ({what}) for {self.retry_s:.0f}s: "
                f"{type(e).__name__}: {e}. Check STUDIO_STORE__S3_ENDPOINT_URL and the network, then rerun: "
                "finished artifacts are kept.") from None
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ addressing
    def _dir(self, recipe_or_stage: Recipe | str, key: str) -> str:
        stage = recipe_or_stage if isinstance(recipe_or_stage, str) else recipe_or_stage.stage
        return f"{self.root}/{stage}/{key[:2]}"

    def sidecar_path(self, recipe: Recipe) -> str:
        key = recipe.key()
        return f"{self._dir(recipe, key)}/{key}.json"

    def check_ref(self, ref: ArtifactRef) -> ArtifactRef:
        """The ref with its uri rebuilt inside this store from its validated parts: the data file is always
        `<root>/<stage>/<key[:2]>/<key>-<sha[:12]><suffix>`, so the folder a record names is never used — a
        store copied or moved to another place (another STUDIO_HOME, another bucket) keeps its artifacts, and a
        crafted uri cannot point anywhere else. A file name that is not that shape is refused."""
        ref = ArtifactRef.model_validate(ref.model_dump())  # re-validate (a ref may come from anywhere)
        name = ref.uri.rsplit("/", 1)[-1]
        expected = f"{ref.key}-{ref.sha256[:12]}"
        if not name.startswith(expected) or not SUFFIX.match(name[len(expected):]):
            raise StoreError(f"artifact {ref.short}: its uri {ref.uri!r} does not name the data file the studio "
                             "writes for it; the record was tampered with")
        return ref.model_copy(update={"uri": f"{self._dir(ref.stage, ref.key)}/{name}"})

    # ------------------------------------------------------------------ reads
    def _read_json(self, path: str) -> Any:
        def read() -> bytes:
            with self.fs.open(path, "rb") as f:
                return f.read()

        try:
            return json.loads(self._io(f"read {path}", read))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a torn or corrupted sidecar reads as absent: the producer runs again
        except StoreError:
            raise
        except OSError as e:
            raise StoreError(f"cannot read {path} from the artifact store {self.uri}: {e}") from e

    def _valid_sidecar(self, meta: Any, path: str, recipe: Recipe | None = None,
                       ref: ArtifactRef | None = None) -> Sidecar | None:
        try:
            side = Sidecar.model_validate(meta)
            side = side.model_copy(update={"uri": self.check_ref(side).uri})
            if recipe is not None and (side.key != recipe.key() or side.stage != recipe.stage):
                raise StoreError(f"it names key {side.key[:12]}/stage {side.stage}, not its own path's")
            if ref is not None and (side.key, side.sha256) != (ref.key, ref.sha256):
                raise StoreError("it describes other bytes than the artifact it belongs to")
        except (ValidationError, StoreError) as e:
            log.warning("ignoring the invalid sidecar %s (%s); its step will run again", path,
                        str(e).splitlines()[0])
            return None
        return side

    def read_sidecar(self, recipe: Recipe) -> dict | None:
        """The validated sidecar of this recipe's artifact, or None (absent, torn or invalid)."""
        path = self.sidecar_path(recipe)
        meta = self._read_json(path)
        if meta is None:
            return None
        side = self._valid_sidecar(meta, path, recipe=recipe)
        return side.model_dump(mode="json") if side else None

    def lookup(self, recipe: Recipe, verify: bool = True) -> ArtifactRef | None:
        """The committed, intact artifact for this recipe, or None (missing, corrupt, or half-written)."""
        meta = self.read_sidecar(recipe)
        if not meta:
            return None
        ref = Sidecar.model_validate(meta).ref()
        if verify and not self.verify(ref):
            return None
        return ref

    def verify(self, ref: ArtifactRef) -> bool:
        """True when the artifact's bytes are there and match its hash. A missing or wrong file is False; a store
        that does not answer raises `StoreUnavailableError` (an outage is not corruption)."""
        try:
            ref = self.check_ref(ref)
        except StoreError as e:
            log.warning("%s", e)
            return False
        try:
            if self.is_local:
                st = os.stat(ref.uri)
                if st.st_size != ref.size:
                    return False
                memo = (ref.uri, st.st_size, st.st_mtime_ns)
                if memo not in self._verified:
                    self._verified[memo] = sha256_file(ref.uri)
                return self._verified[memo] == ref.sha256
            info = self._io(f"stat {ref.uri}", lambda: self.fs.info(ref.uri))
            if int(info.get("size", -1)) != ref.size:
                return False
            return sha256_file(self._fetch(ref, verify=False)) == ref.sha256
        except FileNotFoundError:
            return False
        except StoreUnavailableError:
            raise
        except StoreError:
            return False

    def local_path(self, ref: ArtifactRef, verify: bool = True) -> Path:
        """A local file with the artifact's bytes (S3 artifacts are fetched into a content cache)."""
        ref = self.check_ref(ref)
        if self.is_local:
            if verify and not self.verify(ref):
                raise StoreError(f"artifact {ref.short} ({ref.uri}) is missing or corrupt; rerun the step "
                                 "that produced it (its cache entry is ignored now)")
            return Path(ref.uri)
        return self._fetch(ref, verify=verify)

    def _fetch(self, ref: ArtifactRef, verify: bool) -> Path:
        ref = self.check_ref(ref)  # the local name below is built from sha256 + suffix: both validated
        cache = self.cache_dir or Path(tempfile.gettempdir()) / "studio-blobs"
        suffix = Path(ref.uri).suffix
        target = cache / f"{ref.sha256}{suffix}"
        tmp = cache / f".{ref.sha256}.{uuid.uuid4().hex}.part"
        try:
            cache.mkdir(parents=True, exist_ok=True)
            if target.exists() and (not verify or sha256_file(target) == ref.sha256):
                return target
            self._io(f"download {ref.uri}", lambda: self.fs.get(ref.uri, str(tmp)))
            if verify and sha256_file(tmp) != ref.sha256:
                raise StoreError(f"artifact {ref.short} at {ref.uri} fails its hash check; rerun its step")
            os.replace(tmp, target)
        except FileNotFoundError as e:
            raise StoreError(f"artifact {ref.short} is missing at {ref.uri}; rerun the step that made it") from e
        except StoreError:
            raise
        except OSError as e:
            raise StoreError(f"cannot fetch artifact {ref.short} into the local cache {cache}: "
                             f"{e.strerror or e}. Free disk space or fix the folder's permissions "
                             "(STUDIO_HOME), then rerun.") from None
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
        if not SUFFIX.match(src.suffix):
            raise StoreError(f"refusing the file suffix {src.suffix!r} for stage '{recipe.stage}'")
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
        body = json.dumps(meta, indent=2).encode()
        try:
            if self.is_local:
                os.makedirs(folder, exist_ok=True)
                if not (os.path.exists(data_path) and sha256_file(data_path) == digest):
                    copy_atomic(src, Path(data_path))
                write_bytes_atomic(Path(side_path), body)
            else:
                self._io(f"upload {data_path}", lambda: self.fs.put_file(str(src), data_path))
                self._io(f"upload {side_path}", lambda: self.fs.pipe_file(side_path, body))  # commit marker, last
        except StoreError:
            raise
        except OSError as e:
            raise StoreError(f"could not write artifact for stage '{recipe.stage}' to {self.uri}: "
                             f"{e.strerror or e}. Free disk space or fix the store's credentials/endpoint, then "
                             "rerun: finished artifacts are kept.") from None
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
        """The one "look up or make" of every stage — and the studio's task cache: the stored artifact if it is
        intact (an earlier run, or another process or host finished first); else `write(tmp_path)` fills a
        private temp file, whose returned dict (if it returns one) becomes the sidecar's `extra`, and the file
        is committed atomically. A failed `write` commits nothing."""
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
        """The validated sidecar of a ref (its `extra` holds the stage's metadata)."""
        ref = self.check_ref(ref)
        path = f"{self._dir(ref.stage, ref.key)}/{ref.key}.json"
        meta = self._read_json(path)
        side = self._valid_sidecar(meta, path, ref=ref) if meta is not None else None
        if side is None:
            raise StoreError(f"the sidecar of artifact {ref.short} ({path}) is missing or invalid; rerun the step "
                             "that produced it")
        return side.model_dump(mode="json")
