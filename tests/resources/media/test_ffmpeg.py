"""Tool discovery and probing: system ffmpeg first, imageio-ffmpeg's bundled binary as the fallback (with the
`ffmpeg -i` probe parser, since it ships no ffprobe), and clear errors when neither exists."""

from __future__ import annotations

import shutil

import pytest

from studio.resources.media import ffmpeg as media
from studio.resources.media.frames import sample_footage_path
from studio.resources.media.probe import probe, require_video


@pytest.fixture
def fresh_tools(monkeypatch):
    for fn in (media.ffmpeg_path, media.ffprobe_path, media.ffmpeg_version):
        fn.cache_clear()
    monkeypatch.delenv("STUDIO_FFMPEG", raising=False)
    monkeypatch.delenv("STUDIO_FFPROBE", raising=False)
    yield monkeypatch
    for fn in (media.ffmpeg_path, media.ffprobe_path, media.ffmpeg_version):
        fn.cache_clear()


def test_system_ffmpeg_is_preferred(fresh_tools):
    assert media.ffmpeg_path() == shutil.which("ffmpeg")
    assert media.ffprobe_path() == shutil.which("ffprobe")


def test_bundled_ffmpeg_and_the_fallback_probe(fresh_tools, tmp_path):
    import imageio_ffmpeg

    fresh_tools.setattr(media.shutil, "which", lambda name: None)
    assert media.ffmpeg_path() == imageio_ffmpeg.get_ffmpeg_exe()
    assert media.ffprobe_path() is None
    info = probe(sample_footage_path())  # parsed from `ffmpeg -i`
    assert (info.width, info.height, info.fps, info.video_codec, info.audio_codec) == (1280, 720, 25.0, "h264", "aac")
    assert info.duration == pytest.approx(5.31, abs=0.05) and info.n_frames == pytest.approx(132, abs=2)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(media.CorruptMediaError):
        probe(junk)


def test_no_ffmpeg_anywhere_says_how_to_get_one(fresh_tools):
    import imageio_ffmpeg

    fresh_tools.setattr(media.shutil, "which", lambda name: None)

    def missing():
        raise RuntimeError("no ffmpeg")

    fresh_tools.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    with pytest.raises(media.MissingToolError, match="apt-get install ffmpeg"):
        media.ffmpeg_path()


def test_sample_footage_is_the_big_buck_bunny_clip():
    info = require_video(sample_footage_path())
    assert (info.width, info.height, info.fps, info.n_frames) == (1280, 720, 25.0, 132)
