"""Effects, segment rendering and assembly, checked with ffprobe, decoded frames and decoded audio.

Everything renders at 160×90 @ 24 fps so the whole file runs in well under a minute on 2 busy cores.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from support.video_clips import camera_video, write_video

from studio.resources.audio import procedural as procedural_audio
from studio.resources.audio.mix import duck_envelope
from studio.resources.media.audio_io import read_audio, write_wav
from studio.resources.media.ffmpeg import CorruptMediaError, MediaNotFoundError, UnsupportedMediaError
from studio.resources.media.frames import read_all_frames
from studio.resources.media.probe import probe
from studio.resources.video.assemble import assemble_segments
from studio.resources.video.config import OutputFormat
from studio.resources.video.effects.library import EffectParamError, UnknownEffectError, resolve_effects
from studio.resources.video.segment import SegmentError, SegmentSpec, render_segment_file
from studio.resources.video.subtitles import SubtitleCue, SubtitleError, parse_srt, write_srt

FMT = OutputFormat(width=160, height=90, fps=24, crf=20, zoom_supersample=1.0)
SR = 48000


def solid_png(path: Path, rgb: tuple[int, int, int], size=(160, 90)) -> Path:
    from PIL import Image

    Image.new("RGB", size, rgb).save(path)
    return path


def tone(path: Path, freq: float, seconds: float, amp: float = 0.3) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    return write_wav(path, amp * np.sin(2 * np.pi * freq * t), SR)


def band_level(x: np.ndarray, freq: float) -> float:
    """Amplitude of one frequency in a mono window (Hann-windowed DFT bin)."""
    w = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x * w))
    k = int(round(freq * len(x) / SR))
    return float(spec[max(0, k - 2):k + 3].max() / (w.sum() / 2))


def stream_durations(path: Path) -> dict[str, float]:
    import json
    import subprocess

    from studio.resources.media.ffmpeg import ffprobe_path

    out = subprocess.run([ffprobe_path(), "-v", "error", "-show_entries", "stream=codec_type,duration", "-of",
                          "json", str(path)], capture_output=True, check=True).stdout
    return {s["codec_type"]: float(s["duration"]) for s in json.loads(out)["streams"]}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2 s of a slow pan at 24 fps: every frame differs from its neighbours."""
    return camera_video(tmp_path_factory.mktemp("clip") / "pan.mp4", "pan-right", n=48, size=(160, 90), speed=1.5)


# --------------------------------------------------------------------------- effects
def test_slow_motion_half_speed_doubles_duration(clip, tmp_path):
    normal = render_segment_file(SegmentSpec(video=clip, start=0.5, end=1.5), tmp_path / "n.mp4", FMT)
    slow = render_segment_file(SegmentSpec(video=clip, start=0.5, end=1.5,
                                           effects=[{"name": "slow_motion", "params": {"factor": 0.5}}]),
                               tmp_path / "s.mp4", FMT)
    pn, ps = probe(normal.path), probe(slow.path)
    assert pn.n_frames == 24 and abs(pn.duration - 1.0) < 0.03
    assert ps.n_frames == 48 and abs(ps.duration - 2.0) < 0.03, ps
    assert (ps.width, ps.height, ps.fps, ps.video_codec, ps.audio_codec, ps.sample_rate, ps.channels) == \
        (160, 90, 24.0, "h264", "aac", 48000, 2)
    frames = read_all_frames(slow.path).astype(np.int16)
    # every source frame is shown twice: consecutive pairs match, pairs differ from the next pair
    pair_diff = np.abs(frames[0:46:2] - frames[1:47:2]).mean()
    step_diff = np.abs(frames[1:47:2] - frames[2:48:2]).mean()
    assert pair_diff < 1.0 < step_diff, (pair_diff, step_diff)


def test_freeze_frame_holds_identical_frames(clip, tmp_path):
    seg = render_segment_file(SegmentSpec(video=clip, start=0.0, end=1.0,
                                          effects=[{"name": "freeze_frame", "params": {"at": 0.5, "hold": 1.0}}]),
                              tmp_path / "f.mp4", FMT)
    assert seg.nframes == 24 + 24 and probe(seg.path).n_frames == 48
    assert seg.markers == {"freeze": 0.5, "freeze_end": pytest.approx(1.5417, abs=1e-3)}
    frames = read_all_frames(seg.path).astype(np.int16)
    held = frames[12:12 + 25]  # frame 12 shown once + held 24 more
    step = np.abs(held[1:] - held[:-1]).mean(axis=(1, 2, 3))
    moving = np.abs(frames[1:12] - frames[0:11]).mean(axis=(1, 2, 3))
    # The encoder gets 25 identical pictures; after decoding most consecutive held frames are bit-identical
    # (x264 skips them) and the rest differ only by x264 refining the same picture (< 0.5 level on average).
    assert (step == 0).mean() >= 0.75, step
    assert step.max() < 0.5 and np.abs(held - held[0]).mean() < 0.5, step
    assert moving.min() > 2.0, moving  # while before the freeze the picture moves
    assert np.abs(frames[37] - frames[36]).mean() > 2.0  # and it moves again after


def test_subtitles_change_the_caption_area_only_during_their_interval(tmp_path):
    still = solid_png(tmp_path / "grey.png", (90, 90, 90))
    seg = render_segment_file(SegmentSpec(image=still, duration=3.0, subtitle_cues=[
        SubtitleCue(start=1.0, end=2.0, text="Hello sea!")]), tmp_path / "sub.mp4", FMT)
    frames = read_all_frames(seg.path).astype(np.int16)
    band = slice(int(0.6 * 90), 90)  # the bottom of the frame, where subtitles go

    def change(i):
        return np.abs(frames[i, band] - 90).mean()

    assert max(change(i) for i in (0, 12, 23, 49, 60, 71)) < 2.0  # before 1.0 s and after 2.0 s: untouched
    assert min(change(i) for i in (25, 36, 46)) > 8.0  # during: the text and its band are drawn
    assert np.abs(frames[36, :int(0.4 * 90)] - 90).mean() < 2.0  # the top half stays clean


def test_caption_and_parody_recipe_place_sound_on_the_freeze(clip, tmp_path):
    seg = render_segment_file(SegmentSpec(video=clip, start=0.0, end=1.0, caption="THE SEA",
                                          effects=["dramatic_discovery"]), tmp_path / "dd.mp4", FMT)
    # 1 s of clip, then frame 23 held 1.5 s: freeze marker at 23/24 s
    assert seg.nframes == 24 + 36 and seg.markers["freeze"] == pytest.approx(23 / 24)
    audio = read_audio(seg.path)[:, 0]
    freeze = int(seg.markers["freeze"] * SR)
    before = np.sqrt(np.mean(audio[: freeze - 2400] ** 2))
    after = np.sqrt(np.mean(audio[freeze:freeze + SR // 3] ** 2))
    assert before < 1e-3 < after, (before, after)  # silent clip until the record scratch at the freeze
    frames = read_all_frames(seg.path).astype(np.int16)
    bottom = slice(int(0.55 * 90), 90)
    assert np.abs(frames[40, bottom] - frames[30, bottom]).mean() < 1.0  # frozen, caption steady
    white = (frames[40, bottom] > 235).all(axis=-1).mean()
    assert white > 0.01, white  # white caption letters in the lower part during the freeze
    assert (frames[10, bottom] > 235).all(axis=-1).mean() < white / 4  # not before


def test_speed_ramp_gag_and_reaction_zoom_render(clip, tmp_path):
    ramp = render_segment_file(SegmentSpec(video=clip, start=0.0, end=2.0, effects=["speed_ramp_gag"]),
                               tmp_path / "r.mp4", FMT)
    assert ramp.nframes > 48 and 0 < ramp.markers["ramp"] < ramp.markers["ramp_end"] < ramp.duration
    assert probe(ramp.path).n_frames == ramp.nframes
    zoom = render_segment_file(SegmentSpec(video=clip, start=0.0, end=2.0, effects=["reaction_zoom"]),
                               tmp_path / "z.mp4", FMT)
    frames = read_all_frames(zoom.path).astype(np.float32)
    import cv2

    def sharpness(f):  # after the punch-in the picture is magnified: fewer edges per pixel
        return cv2.Laplacian(f.mean(axis=2), cv2.CV_32F).var()

    assert sharpness(frames[-1]) < 0.7 * sharpness(frames[5])


def test_crossfade_blends_into_the_previous_segment_and_shortens_the_cut(tmp_path):
    red = render_segment_file(SegmentSpec(image=solid_png(tmp_path / "r.png", (220, 30, 30)), duration=2.0),
                              tmp_path / "red.mp4", FMT)
    blue = render_segment_file(SegmentSpec(image=solid_png(tmp_path / "b.png", (30, 30, 220)), duration=2.0,
                                           effects=[{"name": "crossfade", "params": {"duration": 1.0}}],
                                           previous_segment=red.path), tmp_path / "blue.mp4", FMT)
    assert blue.nframes == 48 and blue.transition_in == 1.0
    cut = assemble_segments([red.path, blue.path], tmp_path / "cut.mp4", fmt=FMT, crossfades=[0, 1.0])
    assert cut.nframes == 72 and probe(cut.path).n_frames == 72 and cut.stream_copied
    frames = read_all_frames(cut.path).astype(np.int16)
    mid = frames[36].mean(axis=(0, 1))  # halfway through the 1 s dissolve
    assert 90 < mid[0] < 160 and 90 < mid[2] < 160, mid
    assert frames[10].mean(axis=(0, 1))[0] > 200 and frames[60].mean(axis=(0, 1))[2] > 200


def test_ducking_lowers_the_music_under_dialogue(tmp_path):
    still = solid_png(tmp_path / "s.png", (40, 80, 40))
    voice = tone(tmp_path / "voice.wav", 1000.0, 1.0)
    segs = [render_segment_file(SegmentSpec(image=still, duration=2.0), tmp_path / "a.mp4", FMT),
            render_segment_file(SegmentSpec(image=still, duration=2.0, voice=voice, voice_offset=0.5,
                                            subtitle="I see it!"), tmp_path / "b.mp4", FMT),
            render_segment_file(SegmentSpec(image=still, duration=2.0), tmp_path / "c.mp4", FMT)]
    t = np.arange(6 * SR) / SR
    music = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    from studio.resources.video.config import AudioMixConfig

    mix = AudioMixConfig(music_gain_db=0.0, duck_db=-12.0, loudness_lufs=None)
    cut = assemble_segments([s.path for s in segs], tmp_path / "cut.mp4", fmt=FMT, music=music, mix=mix,
                            srt_path=write_srt([SubtitleCue(start=2.5, end=3.5, text="I see it!")],
                                               tmp_path / "in.srt"))
    assert cut.duck_intervals and cut.duck_intervals[0][0] == pytest.approx(2.5, abs=0.03)
    audio = read_audio(cut.path)[:, 0]

    def music_at(t0):
        return band_level(audio[int(t0 * SR):int((t0 + 0.4) * SR)], 220.0)

    outside, under = music_at(0.8), music_at(2.8)
    assert 20 * np.log10(under / outside) == pytest.approx(-12.0, abs=1.5)
    assert band_level(audio[int(2.8 * SR):int(3.2 * SR)], 1000.0) > 0.2  # the dialogue is there, not ducked
    assert cut.srt_path and parse_srt(cut.srt_path)[0].text == "I see it!"
    streams = probe(cut.path)
    assert streams.duration == pytest.approx(6.0, abs=0.05)


def test_segments_are_bit_exact_and_assembly_stream_copies(tmp_path, clip):
    spec = SegmentSpec(video=clip, start=0.2, end=1.2, effects=["ken_burns", "whoosh"], subtitle="Whee")
    a = render_segment_file(spec, tmp_path / "a.mp4", FMT)
    b = render_segment_file(spec, tmp_path / "b.mp4", FMT)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a.path, b.path)]
    assert digest[0] == digest[1]
    c = render_segment_file(SegmentSpec(image=solid_png(tmp_path / "g.png", (0, 200, 0)), duration=1.0),
                            tmp_path / "c.mp4", FMT)
    cut = assemble_segments([a.path, c.path], tmp_path / "cut.mp4", fmt=FMT, music="procedural")
    assert cut.nframes == 48 and cut.stream_copied
    assert stream_durations(cut.path) == pytest.approx({"video": 2.0, "audio": 2.0}, abs=0.03)
    assert stream_durations(a.path) == pytest.approx({"video": 1.0, "audio": 1.0}, abs=0.03)
    seg_frames = np.concatenate([read_all_frames(a.path), read_all_frames(c.path)])
    assert np.array_equal(read_all_frames(cut.path), seg_frames)  # copied packets decode to the same pixels


# --------------------------------------------------------------------------- procedural audio
@pytest.mark.parametrize("name", sorted(procedural_audio.SFX))
def test_procedural_sounds_are_deterministic_and_audible(name):
    x, y = procedural_audio.generate(name), procedural_audio.generate(name)
    assert x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == 2 and x.shape[0] > SR // 5
    assert np.array_equal(x, y)
    assert 0.3 < np.abs(x).max() <= 1.0 and np.sqrt(np.mean(x ** 2)) > 0.02


def test_music_bed_has_the_asked_length_and_moods_differ():
    a = procedural_audio.music_bed(duration=3.0, mood="playful")
    b = procedural_audio.music_bed(duration=3.0, mood="tense")
    assert a.shape == (3 * SR, 2) and not np.allclose(a, b)
    with pytest.raises(procedural_audio.UnknownNameError, match="unknown music mood"):
        procedural_audio.music_bed(mood="jazzy")


def test_duck_envelope_ramps():
    env = duck_envelope(SR * 2, SR, [(0.5, 1.0)], -12.0, 0.1, 0.2)
    low = 10 ** (-12 / 20)
    assert env[0] == 1 and env[int(0.75 * SR)] == pytest.approx(low) and env[-1] == 1
    assert low < env[int(0.45 * SR)] < 1 and low < env[int(1.1 * SR)] < 1


# --------------------------------------------------------------------------- SRT
def test_srt_roundtrip(tmp_path):
    cues = [SubtitleCue(start=0.5, end=1.25, text="Ciao!"), SubtitleCue(start=61.0, end=3725.5, text="Two\nlines")]
    back = parse_srt(write_srt(cues, tmp_path / "a.srt"))
    assert [(c.start, c.end, c.text) for c in back] == [(0.5, 1.25, "Ciao!"), (61.0, 3725.5, "Two\nlines")]


@pytest.mark.parametrize("text, match", [
    ("1\n00:00:02,000 --> 00:00:01,000\nback in time\n", "ends .* before it starts"),
    ("1\n00:00:01 --> 00:00:02\nno millis\n", "bad timing line"),
    ("1\n00:00:75,000 --> 00:01:02,000\nsecond 75\n", "above 59"),
    ("1\n00:00:01,000 --> 00:00:02,000\n\n", "cue with no text"),
])
def test_srt_with_bad_timestamps_is_rejected_with_the_line(text, match):
    with pytest.raises(SubtitleError, match=match):
        parse_srt(text)


# --------------------------------------------------------------------------- bad input
def test_missing_corrupt_empty_and_unsupported_video(tmp_path):
    with pytest.raises(MediaNotFoundError, match="not found"):
        render_segment_file(SegmentSpec(video=tmp_path / "nope.mp4"), tmp_path / "o.mp4", FMT)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptMediaError, match="not a readable media file"):
        render_segment_file(SegmentSpec(video=junk), tmp_path / "o.mp4", FMT)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(CorruptMediaError, match="empty"):
        probe(empty)
    # an AVI whose video FourCC no decoder knows
    avi = write_video(tmp_path / "x.avi", (np.full((32, 32, 3), 128, np.uint8) for _ in range(4)), 24, (32, 32))
    data = avi.read_bytes()
    assert b"H264" in data
    (tmp_path / "alien.avi").write_bytes(data.replace(b"H264", b"QZQZ").replace(b"h264", b"qzqz"))
    with pytest.raises(UnsupportedMediaError, match="cannot be decoded"):
        render_segment_file(SegmentSpec(video=tmp_path / "alien.avi"), tmp_path / "o.mp4", FMT)


def test_zero_length_and_out_of_range_clips(clip, tmp_path):
    with pytest.raises(SegmentError, match="zero-length clip"):
        SegmentSpec(video=clip, start=1.0, end=1.0)
    with pytest.raises(SegmentError, match="zero-length clip"):
        render_segment_file(SegmentSpec(video=clip, start=1.0, end=1.01), tmp_path / "o.mp4", FMT)
    with pytest.raises(SegmentError, match="ends at 9.00 s but .* is 2.00 s long"):
        render_segment_file(SegmentSpec(video=clip, start=1.0, end=9.0), tmp_path / "o.mp4", FMT)
    with pytest.raises(SegmentError, match="exactly one visual"):
        SegmentSpec(duration=2.0)
    voice = tone(tmp_path / "long.wav", 440.0, 3.0)
    with pytest.raises(SegmentError, match="runs past the end of the shot"):
        render_segment_file(SegmentSpec(video=clip, start=0.0, end=1.0, voice=voice), tmp_path / "o.mp4", FMT)


def test_effect_parameters_out_of_range_and_unknown_names():
    with pytest.raises(EffectParamError, match=r"'factor' = 0.01 is out of range \[0.1, 1.0\]"):
        resolve_effects([{"name": "slow_motion", "params": {"factor": 0.01}}])
    with pytest.raises(EffectParamError, match="has no parameter zoomz"):
        resolve_effects([{"name": "ken_burns", "params": {"zoomz": 2}}])
    with pytest.raises(EffectParamError, match="must be one of"):
        resolve_effects([{"name": "ken_burns", "params": {"pan": "diagonal"}}])
    with pytest.raises(EffectParamError, match="is not a time"):
        resolve_effects([{"name": "whoosh", "params": {"at": "150%"}}])
    with pytest.raises(UnknownEffectError, match="unknown effect or parody recipe 'moonwalk'.*Recipes: .*"
                                                 "dramatic_discovery"):
        resolve_effects(["moonwalk"])
    with pytest.raises(EffectParamError, match="recipe 'dramatic_discovery' has no parameter 'speed'"):
        resolve_effects([{"name": "dramatic_discovery", "params": {"speed": 2}}])
    steps = resolve_effects([{"name": "dramatic_discovery", "params": {"hold": 2.5}}])
    assert [s.name for s in steps] == ["ken_burns", "freeze_frame", "record_scratch", "caption"]
    assert steps[1].params["hold"] == 2.5 and all(s.recipe == "dramatic_discovery" for s in steps)


def test_marker_used_before_it_is_set_is_a_clear_error(clip, tmp_path):
    with pytest.raises(EffectParamError, match="marker 'freeze', which no earlier step set"):
        render_segment_file(SegmentSpec(video=clip, start=0, end=1, effects=[
            {"name": "boing", "params": {"at": "freeze"}}, "freeze_frame"]), tmp_path / "o.mp4", FMT)


def test_cli_edit_renders_an_edit_list_and_resumes_from_the_store(tmp_path, isolated_store):
    import yaml
    from typer.testing import CliRunner

    from studio.cli import app

    solid_png(tmp_path / "a.png", (200, 40, 40))
    solid_png(tmp_path / "b.png", (40, 40, 200))
    tone(tmp_path / "hi.wav", 500.0, 0.5)
    edit = tmp_path / "edit.yaml"
    edit.write_text(yaml.safe_dump({"music": "procedural", "segments": [
        {"image": "a.png", "duration": 1.0, "caption": "Hi!", "voice": "hi.wav", "subtitle": "Hi there"},
        {"image": "b.png", "duration": 1.0, "effects": [{"name": "crossfade", "params": {"duration": 0.5}},
                                                         "boing"]}]}))
    runner = CliRunner()
    first = runner.invoke(app, ["edit", str(edit), "--out", str(tmp_path / "cut.mp4")])
    assert first.exit_code == 0, first.output
    info = probe(tmp_path / "cut.mp4")
    assert (info.width, info.height) == (854, 480) and info.n_frames == 48 - 12
    assert "Hi there" in (tmp_path / "cut.srt").read_text()
    segs = sorted(isolated_store.glob("segment/*/*.json"))
    stamps = [p.stat().st_mtime_ns for p in segs]
    again = runner.invoke(app, ["edit", str(edit), "--out", str(tmp_path / "again.mp4")])
    assert again.exit_code == 0 and [p.stat().st_mtime_ns for p in segs] == stamps  # nothing re-rendered
    assert (tmp_path / "again.mp4").read_bytes() == (tmp_path / "cut.mp4").read_bytes()
    edit.write_text(yaml.safe_dump({"segments": [{"image": "a.png", "effects": ["moonwalk"]}]}))
    bad = runner.invoke(app, ["edit", str(edit), "--out", str(tmp_path / "x.mp4")])
    assert bad.exit_code != 0 and "unknown effect or parody recipe 'moonwalk'" in str(bad.exception)


def test_voice_timing_drives_subtitle_cues_and_burned_subtitles_change_pixels(tmp_path):
    from studio.resources.video.subtitles import cues_from_voice_timing

    timing = {"sentences": [{"index": 0, "text": "I want to see the sea.", "start": 0.06, "end": 1.172},
                            {"index": 1, "text": "Can we go?", "start": 1.392, "end": 1.9}]}
    cues = cues_from_voice_timing(timing, offset=0.5)
    assert [(c.start, c.end, c.text) for c in cues] == [(0.56, 1.672, "I want to see the sea."),
                                                        (1.892, 2.692, "Can we go?")]
    # a pause inside a sentence ("Almost... got it!") is one subtitle, not two
    paused = cues_from_voice_timing({"sentences": [{"text": "Almost...", "start": 0.0, "end": 0.6},
                                                   {"text": "got it!", "start": 0.8, "end": 1.4}]})
    assert [(c.start, c.end, c.text) for c in paused] == [(0.0, 1.4, "Almost... got it!")]
    seg = render_segment_file(SegmentSpec(image=solid_png(tmp_path / "g.png", (90, 90, 90)), duration=3.0),
                              tmp_path / "s.mp4", FMT)
    srt = write_srt(cues, tmp_path / "in.srt")
    cut = assemble_segments([seg.path], tmp_path / "burned.mp4", fmt=FMT, srt_path=srt, burn_subtitles=True)
    assert not cut.stream_copied and cut.srt_path.read_text() == srt.read_text()
    frames = read_all_frames(cut.path).astype(np.int16)
    band = slice(int(0.6 * 90), 90)
    assert np.abs(frames[5, band] - 90).mean() < 2.0  # 0.2 s: no cue yet
    assert np.abs(frames[24, band] - 90).mean() > 8.0  # 1.0 s: first sentence burned in
    assert np.abs(frames[70, band] - 90).mean() < 2.0  # 2.9 s: after the last cue


def test_a_segment_in_another_format_is_normalised_before_the_concat(clip, tmp_path):
    seg = render_segment_file(SegmentSpec(image=solid_png(tmp_path / "g.png", (0, 200, 0)), duration=1.0),
                              tmp_path / "seg.mp4", FMT)
    assert not probe(clip).has_audio  # 24 fps, no sound track: not the cut's format
    cut = assemble_segments([seg.path, clip], tmp_path / "cut.mp4", fmt=FMT)
    info = probe(cut.path)
    assert cut.nframes == 24 + 48 and info.n_frames == 72 and info.audio_codec == "aac"


def test_a_subtitle_never_covers_a_bottom_caption(tmp_path):
    """A parody caption at the bottom and a subtitle at the same time: the subtitle moves up above the caption,
    which stays exactly as it is drawn without the subtitle."""
    from studio.resources.video.segment import clear_of

    fmt = OutputFormat(width=320, height=180, fps=24)
    still = solid_png(tmp_path / "grey.png", (90, 90, 90), size=(320, 180))
    caption = [{"name": "caption", "params": {"text": "MEANWHILE", "position": "bottom", "size": 0.12}}]
    alone = render_segment_file(SegmentSpec(image=still, duration=2.0, effects=caption), tmp_path / "c.mp4", fmt)
    both = render_segment_file(SegmentSpec(image=still, duration=2.0, effects=caption, subtitle_cues=[
        SubtitleCue(start=0.5, end=1.5, text="Hello sea!")]), tmp_path / "cs.mp4", fmt)
    a, b = (read_all_frames(s.path).astype(np.int16) for s in (alone, both))
    drawn = np.abs(a[24] - 90).mean(axis=(1, 2)) > 4  # rows the caption changed
    rows = np.flatnonzero(drawn)
    assert rows.size and rows.min() > 180 // 2, "the caption is not at the bottom"
    assert np.abs(b[24][rows] - a[24][rows]).mean() < 3.0  # the caption's rows are untouched by the subtitle
    above = slice(max(0, rows.min() - 40), rows.min() - 2)
    assert np.abs(b[24][above] - 90).mean() > 4.0  # the subtitle sits just above it
    assert np.abs(b[5][above] - 90).mean() < 2.0  # and only while it is on
    # The placement rule itself: overlapping in time and space → moved above; otherwise unchanged.
    assert clear_of([(150, 20, 0, 10)], 155, 12, 5, 8, 180) == 150 - 12 - 6
    assert clear_of([(150, 20, 0, 10)], 155, 12, 11, 20, 180) == 155
