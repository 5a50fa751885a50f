"""Character voices: one `VoiceBackend` protocol, character → voice resolution, emotion → prosody, and the
line pipeline every backend shares (split → synthesise → pitch/contour → trim → pauses → resample →
loudness → quality check / retry → WAV + timing sidecar).

`plan_line(...)` resolves and validates everything up front (unknown character/voice, empty text, language,
emotion, backend availability with a labelled fallback) and returns a `LineSpec` — a snapshot of every input
that determines the audio, which is also the recipe of the line's artifact (tasks/voice.py). `render_line`
turns a spec into files; `synthesize_line_file` does both.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from studio.resources.audio import mix, post, quality
from studio.resources.media import audio_io
from studio.resources.runtime.files import write_text_atomic
from studio.resources.voice.base import (
    EmptyTextError,
    QualityError,
    SynthesisError,
    SynthesisRequest,
    UnsupportedLanguageError,
    VoiceBackend,
    VoiceError,
)
from studio.resources.voice.config import (
    CharacterVoice,
    OutputConfig,
    Prosody,
    QualityConfig,
    load_tts_config,
)
from studio.resources.voice.select import choose_backend, get_backend, model_entry_for, prosody_for, resolve_voice

log = logging.getLogger("studio.voice")






























# --------------------------------------------------------------------------- text
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"'»”)\]]*\s+|\n\s*\n|\n")


def split_sentences(text: str, max_chars: int = 280) -> list[str]:
    """Sentences, with over-long ones cut at , ; : — or, failing that, at spaces."""
    out: list[str] = []
    for sent in _SENTENCE_END.split(text):
        sent = " ".join(sent.split())
        if not sent or not any(c.isalnum() for c in sent):
            continue
        while len(sent) > max_chars:
            window = sent[:max_chars]
            cut = max(window.rfind(p) for p in (", ", "; ", ": ", " — ", " - "))
            cut = cut + 1 if cut > max_chars // 3 else window.rfind(" ")
            cut = cut if cut > 0 else max_chars
            out.append(sent[:cut].strip())
            sent = sent[cut:].strip()
        if sent:
            out.append(sent)
    return out


# --------------------------------------------------------------------------- the line spec (= recipe params)
class LineSpec(BaseModel):
    character: str
    voice_id: str
    text: str
    emotion: str
    intensity: float
    language: str
    seed: int = 0
    model_name: str
    backend: str
    model_id: str
    fallback_from: str | None = None
    voice: CharacterVoice
    prosody: Prosody
    output: OutputConfig
    quality: QualityConfig
    max_chunk_chars: int
    backend_options: dict[str, Any] = {}
    # content hashes of files the backend reads (reference clips), so replacing one re-renders the line
    input_files: dict[str, str] = {}

    @property
    def target_lufs(self) -> float:
        return self.output.loudness_lufs + self.prosody.loudness_offset_db


# backend settings that never change the audio (where a server runs, threads, timeouts) stay out of recipes
_NOT_IN_RECIPE = {"threads", "host", "port", "base_url", "managed", "checkout", "python", "tts_infer_config",
                  "command", "start_timeout_s", "request_timeout_s", "health_path", "park", "always_set_weights",
                  "binary"}


def plan_line(character: str, text: str, emotion: str = "neutral", intensity: float = 0.5, *,
              language: str | None = None, seed: int = 0, profile: str | None = None,
              backend: str | None = None) -> LineSpec:
    """Validate a line request and freeze everything that determines its audio."""
    if text is None or not text.strip():
        raise EmptyTextError("the line's text is empty: give the words to say")
    tts = load_tts_config()
    if len(text) > tts.text.max_chars:
        raise VoiceError(f"the text has {len(text)} characters, more than text.max_chars={tts.text.max_chars} "
                         "in configs/tts_config.yaml; split the script into lines")
    if not split_sentences(text, tts.text.max_chunk_chars):
        raise EmptyTextError(f"the text {text[:40]!r} has no words to say (only punctuation or symbols)")
    char_id, voice_id, voice = resolve_voice(character)
    prosody = prosody_for(emotion, float(intensity), tts)
    lang = (language or voice.language).lower()
    be, fallback_from = choose_backend(profile, backend)
    if lang not in be.languages():
        raise UnsupportedLanguageError(
            f"language '{lang}' is not supported by voice backend '{be.backend}' (supported: "
            f"{', '.join(sorted(be.languages()))}). Pick one of those, or configure the language under "
            f"backends in configs/tts_config.yaml.")
    prosody = prosody.model_copy(update={"tempo": round(prosody.tempo * voice.speed, 4)})
    options = {k: v for k, v in getattr(tts.backends, be.backend.replace("-", "_")).model_dump(mode="json").items()
               if k not in _NOT_IN_RECIPE}
    spec = LineSpec(character=char_id, voice_id=voice_id, text=text, emotion=emotion,
                    intensity=round(float(intensity), 3), language=lang, seed=seed, model_name=be.name,
                    backend=be.backend, model_id=be.model_id, fallback_from=fallback_from, voice=voice,
                    prosody=prosody, output=tts.output, quality=tts.quality,
                    max_chunk_chars=tts.text.max_chunk_chars, backend_options=options)
    hook = getattr(be, "input_files", None)
    if hook:
        spec.input_files = hook(spec)
    return spec


# --------------------------------------------------------------------------- rendering
@dataclass
class LineResult:
    path: Path
    timing_path: Path
    duration_s: float
    sample_rate: int
    character: str
    voice_id: str
    emotion: str
    intensity: float
    language: str
    backend: str
    model_id: str
    fallback_from: str | None
    attempts: int
    quality: quality.QualityReport
    sentences: list[dict] = field(default_factory=list)
    timing: dict = field(default_factory=dict)

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("timing")
        d["path"], d["timing_path"] = str(self.path), str(self.timing_path)
        return d


def timing_path_for(out_path: Path | str) -> Path:
    out_path = Path(out_path)
    return out_path.with_name(out_path.stem + ".timing.json")


def _render_once(be: VoiceBackend, spec: LineSpec, chunks: list[str], attempt: int
                 ) -> tuple[np.ndarray, list[dict]]:
    out = spec.output
    sr = out.sample_rate
    pause = np.zeros(int(sr * out.sentence_pause_ms / 1000), np.float32)
    pieces: list[np.ndarray] = []
    sentences: list[dict] = []
    cursor = int(sr * out.pad_ms / 1000)
    for i, chunk in enumerate(chunks):
        req = SynthesisRequest(text=chunk, language=spec.language, voice=spec.voice, voice_id=spec.voice_id,
                               emotion=spec.emotion, prosody=spec.prosody, seed=spec.seed, attempt=attempt)
        y = np.asarray(be.synthesize(req), dtype=np.float32)
        if y.size == 0 or not np.any(np.abs(y) > 1e-4):
            raise SynthesisError(f"backend '{be.backend}' returned silence for {chunk[:60]!r}")
        if be.post_pitch:
            y = post.pitch_shift(y, be.sample_rate, spec.voice.pitch_semitones + spec.prosody.pitch_semitones)
            y = post.pitch_contour(y, be.sample_rate, spec.prosody.contour_semitones)
        y, _, _ = post.trim_silence(y, be.sample_rate, out.trim_top_db)
        y = post.resample(y, be.sample_rate, sr)
        if pieces:
            pieces.append(pause)
            cursor += len(pause)
        sentences.append({"index": i, "text": chunk, "start": round(cursor / sr, 3),
                          "end": round((cursor + len(y)) / sr, 3)})
        pieces.append(y)
        cursor += len(y)
    return np.concatenate(pieces), sentences


def _finish(y: np.ndarray, spec: LineSpec) -> np.ndarray:
    out = spec.output
    y = mix.loudness_normalize(y, out.sample_rate, spec.target_lufs, out.peak_ceiling_db)[0]
    return post.pad(y, out.sample_rate, out.pad_ms)


def render_line(spec: LineSpec, out_path: Path | str, backend: VoiceBackend | None = None) -> LineResult:
    """Synthesise a planned line to `out_path` (WAV) + `<stem>.timing.json`. Nothing is written on error."""
    out_path = Path(out_path)
    be = backend or get_backend(spec.model_name, model_entry_for(spec.model_name, spec.backend))
    chunks = split_sentences(spec.text, spec.max_chunk_chars)
    q = spec.quality
    sr = spec.output.sample_rate
    best: tuple[int, np.ndarray, list[dict], quality.QualityReport, int] | None = None
    made = 0
    with be.session():
        for attempt in range(q.max_attempts):
            made = attempt + 1
            y, sentences = _render_once(be, spec, chunks, attempt)
            y = _finish(y, spec)
            report = quality.check_quality(quality.measure(y, sr, q.clip_threshold, q.silence_db), spec.text,
                                        spec.target_lufs, q)
            if best is None or len(report.issues) < best[0]:
                best = (len(report.issues), y, sentences, report, attempt + 1)
            if report.passed:
                break
            log.info("line %r attempt %d failed quality: %s", spec.text[:40], attempt + 1, report.issues)
    assert best is not None
    _, y, sentences, report, best_attempt = best
    attempts = made
    report.stats["best_attempt"] = best_attempt
    if not report.passed:
        msg = (f"line {spec.text[:60]!r} ({spec.character}, {spec.backend}) failed its quality checks after "
               f"{q.max_attempts} attempts: {'; '.join(report.issues)}")
        if q.on_failure == "error":
            raise QualityError(msg + ". Adjust quality bounds in configs/tts_config.yaml or the voice settings.")
        log.warning(msg)
    timing = build_timing(y, spec, sentences, report, attempts)
    tpath = timing_path_for(out_path)
    audio_io.write_wav(out_path, y, sr, spec.output.channels)
    _write_json_atomic(tpath, timing)
    return LineResult(path=out_path, timing_path=tpath, duration_s=round(len(y) / sr, 3), sample_rate=sr,
                      character=spec.character, voice_id=spec.voice_id, emotion=spec.emotion,
                      intensity=spec.intensity, language=spec.language, backend=spec.backend,
                      model_id=spec.model_id, fallback_from=spec.fallback_from, attempts=attempts,
                      quality=report, sentences=sentences, timing=timing)


def build_timing(y: np.ndarray, spec: LineSpec, sentences: list[dict], report: quality.QualityReport,
                 attempts: int) -> dict:
    sr, hop = spec.output.sample_rate, spec.output.envelope_hop_ms
    regions = post.voiced_regions(y, sr, spec.quality.silence_db, hop_ms=hop)
    return {
        "format": 1,
        "text": spec.text, "character": spec.character, "voice": spec.voice_id, "emotion": spec.emotion,
        "intensity": spec.intensity, "language": spec.language,
        "backend": spec.backend, "model_id": spec.model_id, "fallback_from": spec.fallback_from,
        "sample_rate": sr, "channels": spec.output.channels, "duration_s": round(len(y) / sr, 3),
        "speech": {"start": regions[0][0], "end": regions[-1][1]} if regions else None,
        "sentences": sentences,
        "segments": [{"start": s, "end": e} for s, e in regions],
        "envelope": {"hop_s": hop / 1000, "values": post.envelope(y, sr, hop)},
        "quality": {"passed": report.passed, "issues": report.issues, "attempts": attempts, **report.stats},
    }




def _write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1))


def synthesize_line_file(character: str, text: str, emotion: str = "neutral", intensity: float = 0.5,
                         out_path: Path | str = "line.wav", profile: str | None = None, *,
                         language: str | None = None, seed: int = 0, backend: str | None = None) -> LineResult:
    """Say `text` as `character` with an emotion (intensity 0–1) into a WAV + timing sidecar."""
    spec = plan_line(character, text, emotion, intensity, language=language, seed=seed, profile=profile,
                     backend=backend)
    out_path = Path(out_path)
    # Render in a scratch folder first: an error half-way leaves nothing at out_path.
    with scratch_dir() as tmp:
        res = render_line(spec, tmp / "line.wav")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(res.path), out_path)
        tpath = timing_path_for(out_path)
        shutil.move(str(res.timing_path), tpath)
    res.path, res.timing_path = out_path, tpath
    return res


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="studio-voice-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
