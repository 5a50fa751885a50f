"""`synthesize_line` as a Prefect task on the real local server: recipe cache across runs, timing sidecar,
re-render on a missing file or a changed voice, batch task, and `studio voice say` through the CLI code."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
from support.voice_setup import fresh_settings, make_config_dir  # noqa: F401
from typer.testing import CliRunner


def test_line_task_is_cached_across_flow_runs(prefect_server, isolated_store, tmp_path, monkeypatch):
    from prefect import flow

    from studio.resources.runtime.artifacts import ArtifactStore
    from studio.tasks.reuse import shows_cached
    from studio.tasks.voice import line_recipe, read_line_timing, synthesize_line, voice_task_for

    @flow
    def voice_stage(recipe):
        # through `shows_cached`, as the short's voice stage runs it: a reused line ends "Cached"
        return shows_cached(synthesize_line)(recipe, return_state=True)

    recipe = line_recipe("luca", "Alberto, wait for me!", "scared", 0.7)
    assert recipe.stage == "voice_line" and recipe.backend == "piper"
    first = voice_stage(recipe)
    assert first.is_completed() and first.name == "Completed"
    ref = first.result()
    store = ArtifactStore.from_settings()
    info = sf.info(store.local_path(ref))
    assert ref.media_type == "audio/wav" and info.samplerate == 24000 and info.duration > 0.5
    timing = read_line_timing(ref)
    assert timing["emotion"] == "scared" and timing["sentences"][0]["text"] == "Alberto, wait for me!"
    assert store.sidecar(ref)["extra"]["duration_s"] == timing["duration_s"]

    second = voice_stage(line_recipe("luca", "Alberto, wait for me!", "scared", 0.7))  # same recipe, new run
    assert second.name == "Cached" and second.result() == ref

    # the data file is gone → the cache policy yields no key → the task renders again
    store.local_path(ref).unlink()
    third = voice_stage(recipe)
    assert third.name == "Completed" and store.lookup(recipe) is not None

    # a changed character voice (speed) is a new recipe; emotion/intensity/seed are too
    assert line_recipe("luca", "Alberto, wait for me!", "scared", 0.8).key() != recipe.key()
    assert line_recipe("luca", "Alberto, wait for me!", "scared", 0.7, seed=1).key() != recipe.key()
    make_config_dir(tmp_path, monkeypatch, voices={"voices": {"luca": {"speed": 1.1}}})
    assert line_recipe("luca", "Alberto, wait for me!", "scared", 0.7).key() != recipe.key()
    assert "gpu-heavy" not in (voice_task_for(recipe).tags or set())  # piper is light


def test_cli_voice_say_writes_wav_and_timing_and_reuses_the_store(isolated_store, tmp_path):
    import typer

    from studio.commands.voice import register

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    runner = CliRunner()
    out = tmp_path / "say.wav"
    args = ["voice", "say", "giulia", "We are going to win the cup!", "--emotion", "determined",
            "--intensity", "0.8", "--out", str(out)]
    r1 = runner.invoke(app, args)
    assert r1.exit_code == 0, r1.output
    assert out.exists() and sf.info(out).samplerate == 24000
    timing = json.loads((tmp_path / "say.timing.json").read_text())
    assert timing["character"] == "giulia" and timing["emotion"] == "determined" and timing["intensity"] == 0.8
    r2 = runner.invoke(app, args)
    assert r2.exit_code == 0 and "(cached)" in r2.output
    bad = runner.invoke(app, ["voice", "say", "nemo", "hi", "--out", str(tmp_path / "x.wav")])
    assert bad.exit_code != 0 and "unknown character 'nemo'" in str(bad.exception)
    listing = runner.invoke(app, ["voice", "list"])
    assert listing.exit_code == 0 and "giulia" in listing.output and "available" in listing.output


@pytest.mark.parametrize("emotion", ["happy"])
def test_plan_dialogue_shape_is_accepted(emotion):
    """The director's Dialogue(character, line, emotion, intensity) maps straight onto a line recipe."""
    from studio.configs.vocabulary import Dialogue
    from studio.tasks.voice import line_recipe

    d = Dialogue(character="alberto", line="Silenzio, Bruno!", emotion=emotion, intensity=0.9)
    r = line_recipe(d.character, d.line, d.emotion, d.intensity)
    assert r.params["character"] == "alberto" and r.params["prosody"]["tempo"] > 1.0
