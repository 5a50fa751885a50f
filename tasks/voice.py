"""Voice tasks: one recipe-addressed WAV per dialogue line, with its timing/envelope JSON stored beside it.

    recipe = line_recipe("luca", "Andiamo!", "excited", 0.8)       # validates now, renders later
    ref = synthesize_line(recipe)                                  # cached on the recipe across runs
    timing = read_line_timing(ref)                                 # sentences, segments, envelope

The recipe's params are the whole `LineSpec` (voice settings, prosody, output format, backend + model id), so
editing character_voices.yaml or tts_config.yaml re-renders exactly the lines it affects. Heavy backends
(GPT-SoVITS) take the `gpu-heavy` tag only when the line is not in the store yet (`voice_task_for`).
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import task

from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe, StoreError
from studio.resources.runtime.files import copy_atomic, write_text_atomic
from studio.resources.voice.line import LineSpec, plan_line, render_line, scratch_dir
from studio.resources.voice.select import get_backend
from studio.tasks.caching import generation_task_options, heavy_tags

LINE_STAGE = "voice_line"
TIMING_STAGE = "voice_timing"


def line_recipe(character: str, text: str, emotion: str = "neutral", intensity: float = 0.5, *,
                language: str | None = None, seed: int = 0, profile: str | None = None,
                backend: str | None = None) -> Recipe:
    """Validate a line (clear StudioError on bad input) and freeze it as a recipe."""
    spec = plan_line(character, text, emotion, intensity, language=language, seed=seed, profile=profile,
                     backend=backend)
    return recipe_from_spec(spec)


def recipe_from_spec(spec: LineSpec) -> Recipe:
    return Recipe(stage=LINE_STAGE, backend=spec.backend, model=spec.model_id,
                  params=spec.model_dump(mode="json"), inputs=sorted(set(spec.input_files.values())))


def timing_recipe(line: Recipe) -> Recipe:
    return Recipe(stage=TIMING_STAGE, backend=line.backend, model=line.model, params={"line": line.key()})


def recipe_is_heavy(recipe: Recipe) -> bool:
    spec = LineSpec.model_validate(recipe.params)
    from studio.resources.voice.select import model_entry_for

    return bool(model_entry_for(spec.model_name, spec.backend).heavy)


def make_line(recipe: Recipe, store: ArtifactStore | None = None) -> ArtifactRef:
    """The task's body, callable without Prefect: returns the stored line, rendering it when absent."""
    store = store or ArtifactStore.from_settings()
    ref = store.lookup(recipe)
    if ref is not None and store.lookup(timing_recipe(recipe)) is not None:
        return ref
    spec = LineSpec.model_validate(recipe.params)
    from studio.resources.voice.select import model_entry_for

    backend = get_backend(spec.model_name, model_entry_for(spec.model_name, spec.backend))
    with scratch_dir() as tmp:
        result = render_line(spec, tmp / "line.wav", backend=backend)
        # timing first: the WAV's sidecar is the commit marker the cache policy looks for
        timing_ref = store.put_file(timing_recipe(recipe), result.timing_path, "application/json")
        return store.put_file(recipe, result.path, "audio/wav", extra={
            "timing": timing_ref.model_dump(), "duration_s": result.duration_s,
            "sample_rate": result.sample_rate, "backend": result.backend, "fallback_from": result.fallback_from,
            "character": result.character, "emotion": result.emotion, "attempts": result.attempts,
            "quality": {"passed": result.quality.passed, "issues": result.quality.issues},
        })


@task(name="synthesize_line", task_run_name="say-{recipe.params[character]}-{recipe.params[emotion]}",
      **generation_task_options(heavy=False))
def synthesize_line(recipe: Recipe) -> ArtifactRef:
    """Render one dialogue line (WAV + timing sidecar) unless the store already has it."""
    return make_line(recipe)


def voice_task_for(recipe: Recipe):
    """`synthesize_line` with the `gpu-heavy` tag when a heavy backend will really run for this recipe."""
    return synthesize_line.with_options(tags=sorted(heavy_tags(recipe, recipe_is_heavy(recipe))))


def read_line_timing(ref: ArtifactRef, store: ArtifactStore | None = None) -> dict:
    """The timing/envelope sidecar of a line artifact (sentences, voiced segments, envelope, quality)."""
    store = store or ArtifactStore.from_settings()
    meta = store.sidecar(ref)
    timing = (meta.get("extra") or {}).get("timing")
    if not timing:
        raise StoreError(f"line artifact {ref.short} has no timing sidecar; rerun synthesize_line for it")
    return store.read_json(ArtifactRef(**timing))


def export_line(ref: ArtifactRef, out_path: Path | str, store: ArtifactStore | None = None) -> Path:
    """Copy a stored line (and its timing JSON) to a user-visible path."""

    from studio.resources.voice.line import timing_path_for

    store = store or ArtifactStore.from_settings()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    copy_atomic(store.local_path(ref), out_path)
    write_text_atomic(timing_path_for(out_path), json.dumps(read_line_timing(ref, store), indent=1))
    return out_path
