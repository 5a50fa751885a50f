"""Every input is validated before anything runs: a clear line, exit 2, no traceback, printed literally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.env import free_port

from studio.configs.vocabulary import Dialogue, Plan
from studio.resources.runtime.outputs import folder_name, hold_output_folder
from studio.resources.video.subtitles import SubtitleCue, parse_srt, write_srt

STUDIO = [sys.executable, "-m", "studio.cli"]
INJECTION = "hi\n\n2\n00:00:00,000 --> 10:00:00,000\nINJECTED"


def _studio(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    e = {**os.environ, "STUDIO_HOME": str(tmp_path / "home"), "STUDIO_PREFECT__PORT": str(free_port()),
         "STUDIO_FILES__ENABLED": "false", **env}
    e.pop("PREFECT_API_URL", None)
    return subprocess.run([*STUDIO, *args], env=e, capture_output=True, text=True, timeout=180)


def _refused(r: subprocess.CompletedProcess, *needles: str) -> None:
    text = " ".join((r.stdout + r.stderr).split())
    assert r.returncode == 2, text
    assert "Traceback" not in text, text
    for n in needles:
        assert n in text, text


@pytest.mark.parametrize("args, needle", [
    (["--seed", "-5"], "--seed -5 is out of range"),
    (["--seed", "123456789012345678901"], "out of range"),
    (["--profile", "quantum"], "unknown profile 'quantum'"),
])
def test_bad_options_are_refused_before_anything_runs(tmp_path, args, needle):
    _refused(_studio("make", "Luca sees the sea", "--no-start-server", *args, tmp_path=tmp_path), needle)
    assert not (tmp_path / "home" / "run" / "prefect-server.pid").exists()


def test_unknown_profile_in_settings_is_one_clear_line(tmp_path):
    _refused(_studio("make", "Luca sees the sea", tmp_path=tmp_path, STUDIO_PROFILE="quantum"),
             "invalid setting", "profile")


@pytest.mark.parametrize("plan, needle", [
    ({"plan": []}, "has no plan"),
    ([1, 2], "has no plan"),
    ({"title": "T", "shots": [{"id": 1, "action": "runs",
                                "dialogue": {"character": "luca", "line": INJECTION}}]},
     "control character"),
])
def test_bad_plans_are_refused(tmp_path, plan, needle):
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(plan))
    _refused(_studio("make", "Luca sees the sea", "--plan", str(p), "--no-start-server", tmp_path=tmp_path), needle)


def test_markup_in_messages_is_printed_literally(tmp_path):
    p = tmp_path / "[bold]x[/].json"  # the error names this path: Rich must not eat or choke on it
    _refused(_studio("make", "Luca sees the sea", "--plan", str(p), "--no-start-server", tmp_path=tmp_path),
             "[bold]x[/].json")


def test_an_output_folder_in_use_is_refused(tmp_path):
    out = tmp_path / "out"
    with hold_output_folder(out):
        r = _studio("make", "Luca sees the sea", "--out", str(out), "--no-start-server", tmp_path=tmp_path)
    _refused(r, "another run is writing into")
    with hold_output_folder(out), hold_output_folder(out):  # re-entrant in one process
        pass


def test_an_output_folder_that_cannot_be_made_is_one_clear_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = _studio("make", "Luca sees the sea", "--out", str(blocker / "x"), "--no-start-server", tmp_path=tmp_path)
    _refused(r, "cannot create the output folder")


def test_default_folders_are_unique_and_readable():
    a = "Luca sees the sea for the first time and then he runs back home to tell everyone"
    b = "Luca sees the sea for the first time and then he runs back home to tell nobody"
    assert folder_name(a) != folder_name(b) and folder_name(a).startswith("luca-sees-the-sea")
    assert folder_name("Кот видит море").startswith("kot-vidit-more-")
    assert folder_name("🐱🐱") != folder_name("🐶") and folder_name("🐱🐱").startswith("short-")
    assert folder_name("  Luca   sees ") == folder_name("Luca sees")


def test_plan_text_is_one_line():
    with pytest.raises(ValueError, match="control character"):
        Dialogue(character="luca", line=INJECTION)
    with pytest.raises(ValueError, match="control character"):
        Plan(title="a\x1b[31mred", shots=[{"id": 1, "action": "runs"}])


def test_cue_text_cannot_inject_cues(tmp_path):
    path = write_srt([SubtitleCue(start=0, end=2, text=INJECTION), SubtitleCue(start=2, end=3, text="ok")],
                     tmp_path / "s.srt")
    cues = parse_srt(path)
    assert len(cues) == 2 and max(c.end for c in cues) == 3
    assert "-->" not in cues[0].text
