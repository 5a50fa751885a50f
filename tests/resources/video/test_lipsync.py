"""Wav2Lip backend: configuration errors, the command line it runs, and its output handling — against a
stand-in `inference.py` (Wav2Lip itself needs its checkpoint and, realistically, a GPU; neither is here).
The stand-in only muxes the visual with the voice: it proves the contract, not lip sync."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from studio.configs.schema import ModelEntry
from studio.resources.media.audio_io import write_wav
from studio.resources.media.ffmpeg import ffmpeg_path
from studio.resources.media.probe import probe
from studio.resources.registry import import_backend_class
from studio.resources.video.config import LipSyncConfig
from studio.resources.video.lipsync import LipSyncError, LipSyncUnavailableError, Wav2LipBackend

STAND_IN = f'''
import argparse, json, subprocess, sys
p = argparse.ArgumentParser()
for a in ("--checkpoint_path", "--face", "--audio", "--outfile"):
    p.add_argument(a, required=True)
p.add_argument("--nosmooth", action="store_true")
args = p.parse_args()
json.dump(vars(args), open("last_call.json", "w"))
if "noface" in args.face:
    print("Face not detected! Ensure the video contains a face in all the frames.", file=sys.stderr)
    sys.exit(1)
import wave
with wave.open(args.audio) as w:
    seconds = w.getnframes() / w.getframerate()
subprocess.run([{ffmpeg_path()!r}, "-v", "error", "-y", "-loop", "1", "-i", args.face, "-i", args.audio,
                "-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", args.outfile],
               check=True)
'''


@pytest.fixture
def wav2lip(tmp_path) -> LipSyncConfig:
    repo = tmp_path / "Wav2Lip"
    repo.mkdir()
    (repo / "inference.py").write_text(STAND_IN)
    ckpt = repo / "wav2lip_gan.pth"
    ckpt.write_bytes(b"stand-in")
    return LipSyncConfig(wav2lip_dir=str(repo), checkpoint=str(ckpt), python=sys.executable, extra_args=["--nosmooth"])


@pytest.mark.contract
def test_wav2lip_runs_inference_with_the_configured_paths(wav2lip, tmp_path):
    from PIL import Image

    face = tmp_path / "face.png"
    Image.new("RGB", (96, 96), (200, 150, 120)).save(face)
    voice = write_wav(tmp_path / "line.wav", 0.2 * np.sin(np.arange(24000) / 10.0))
    backend = Wav2LipBackend(config=wav2lip)
    assert backend.available() and backend.heavy and backend.model_id == "wav2lip@wav2lip_gan.pth"
    out = backend.sync(face, voice, tmp_path / "synced.mp4")
    info = probe(out)
    assert info.has_video and info.has_audio and info.duration == pytest.approx(0.5, abs=0.1)
    call = json.loads((Path(wav2lip.wav2lip_dir) / "last_call.json").read_text())
    assert call == {"checkpoint_path": str(Path(wav2lip.checkpoint).resolve()), "face": str(face.resolve()),
                    "audio": str(voice.resolve()), "outfile": call["outfile"], "nosmooth": True}
    noface = tmp_path / "noface.png"
    Image.new("RGB", (96, 96)).save(noface)
    with pytest.raises(LipSyncError, match="no face found"):
        backend.sync(noface, voice, tmp_path / "x.mp4")


def test_wav2lip_unconfigured_says_what_to_set(tmp_path):
    backend = Wav2LipBackend(config=LipSyncConfig())
    assert not backend.available()
    with pytest.raises(LipSyncUnavailableError, match="wav2lip_dir is not set.*checkpoint is not set"):
        backend.sync(tmp_path / "a.png", tmp_path / "b.wav", tmp_path / "c.mp4")
    bad = Wav2LipBackend(config=LipSyncConfig(wav2lip_dir=str(tmp_path), checkpoint=str(tmp_path / "x.pth")))
    assert any("no inference.py" in p for p in bad.problems())
    assert any("does not exist" in p for p in bad.problems())


def test_registry_resolves_the_lipsync_backend_and_models_yaml_entries_override(wav2lip):
    cls = import_backend_class("lipsync", "wav2lip")
    assert cls is Wav2LipBackend
    entry = ModelEntry(modality="lipsync", backend="wav2lip", source=wav2lip.wav2lip_dir, heavy=True,
                       options={"checkpoint": wav2lip.checkpoint, "python": sys.executable})
    assert cls("wav2lip", entry).available()
