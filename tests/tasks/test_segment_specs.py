"""The segment spec of a shot: subtitles follow the voice, one cue per sentence while it is spoken."""

from __future__ import annotations

from pathlib import Path

from studio.configs.vocabulary import Dialogue, Shot
from studio.tasks.shorts import VOICE_LEAD_S, segment_spec_for


def test_each_sentence_of_a_line_is_a_cue_while_it_is_spoken(tmp_path):
    shot = Shot(id=1, characters=["bunny"], action="Bunny sees a butterfly", duration=3.0,
                dialogue=Dialogue(character="bunny", line="A butterfly! Come back!"))
    timing = {"sentences": [{"index": 0, "text": "A butterfly!", "start": 0.05, "end": 0.9},
                            {"index": 1, "text": "Come back!", "start": 1.1, "end": 1.7}]}
    spec = segment_spec_for(shot, keyframe=Path(tmp_path / "k.png"), footage=None, voice=tmp_path / "v.wav",
                            voice_s=1.8, voice_timing=timing)
    assert [(c.text, round(c.start, 3)) for c in spec.subtitle_cues] == [
        ("A butterfly!", round(VOICE_LEAD_S + 0.05, 3)), ("Come back!", round(VOICE_LEAD_S + 1.1, 3))]
    assert all(c.end > c.start for c in spec.subtitle_cues) and spec.subtitle == "A butterfly! Come back!"
    silent = segment_spec_for(shot.model_copy(update={"dialogue": None}), keyframe=tmp_path / "k.png",
                              footage=None, voice=None, voice_s=None, voice_timing=None)
    assert silent.subtitle_cues == [] and silent.subtitle is None
