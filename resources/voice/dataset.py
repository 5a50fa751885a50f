"""Voice dataset builder: a film's audio track (+ optional SRT) → 3–10 s clips of one speaker with their text,
in GPT-SoVITS's training list format `path|speaker|language|text`, plus a report.

Work is cut into chunks (default 300 s of source); each chunk is one recipe-addressed artifact (a JSON
manifest whose clips are WAV artifacts of their own), so a killed build resumes from the finished chunks.
A chunk analyses its window [start - lead, end + tail] and owns the speech segments that *start* inside
[start, end): every segment belongs to exactly one chunk and is seen whole (up to the tail).

Speech detection is an energy VAD (librosa RMS): frames louder than the window's noise floor (a low
percentile) + margin, with hysteresis, short gaps bridged, blips dropped. Segments are merged (short ones
with a close neighbour) or split at their quietest frame to fit [min_clip_s, max_clip_s].
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from studio.configs.errors import StudioError
from studio.resources.audio import mix, post
from studio.resources.media import audio_io
from studio.resources.runtime.artifacts import ArtifactRef, ArtifactStore, Recipe, sha256_file
from studio.resources.runtime.files import copy_atomic, write_text_atomic
from studio.resources.voice.config import DatasetConfig, VADConfig, load_tts_config

CHUNK_STAGE = "voice_dataset_chunk"
CLIP_STAGE = "voice_clip"
LEAD_S = 1.0


class DatasetError(StudioError):
    pass


# --------------------------------------------------------------------------- subtitles
@dataclass
class Cue:
    start: float
    end: float
    text: str
    speaker: str | None = None


_TIME = re.compile(r"(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})")
_LABEL = re.compile(r"^\s*(?:-\s*)?(?:\[([^\]]{1,40})\]|([A-Za-zÀ-ÿ][\w .'-]{0,30}?))\s*:\s+(.+)$")
_TAGS = re.compile(r"<[^>]+>|\{\\[^}]*\}")


def _seconds(m: re.Match) -> float:
    h, mi, s, ms = m.groups()
    return int(h) * 3600 + int(mi) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def parse_srt(path: Path | str) -> list[Cue]:
    """SubRip cues; a `NAME: text` / `[NAME] text`-style label becomes the cue's speaker."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise DatasetError(f"cannot read subtitles {path}: {e}") from e
    cues: list[Cue] = []
    for block in re.split(r"\n\s*\n", raw.replace("\r\n", "\n").strip()):
        lines = [ln for ln in block.split("\n") if ln.strip()]
        idx = next((i for i, ln in enumerate(lines) if "-->" in ln), None)
        if idx is None:
            continue
        stamps = list(_TIME.finditer(lines[idx]))
        if len(stamps) != 2:
            raise DatasetError(f"{path}: bad SRT timing line {lines[idx]!r} (expected HH:MM:SS,mmm --> HH:MM:SS,mmm)")
        start, end = _seconds(stamps[0]), _seconds(stamps[1])
        labels, parts = [], []
        for ln in lines[idx + 1:]:
            ln = _TAGS.sub("", ln).strip()
            m = _LABEL.match(ln)
            if m and (m.group(1) or (m.group(2) and m.group(2).strip().isupper())):
                labels.append((m.group(1) or m.group(2)).strip())
                ln = m.group(3)
            parts.append(ln.lstrip("- ").strip())
        text = " ".join(p for p in parts if p)
        if text and end > start:  # a cue with two labelled speakers belongs to neither alone
            cues.append(Cue(start, end, text, "/".join(dict.fromkeys(labels)) or None))
    if not cues and raw.strip():
        raise DatasetError(f"{path} has no SubRip cues (is it an .srt file?)")
    return sorted(cues, key=lambda c: c.start)


# --------------------------------------------------------------------------- detection
def detect_speech(y: np.ndarray, sr: int, vad: VADConfig) -> list[tuple[float, float]]:
    """Speech regions (seconds from the start of `y`)."""
    if y.size == 0:
        return []
    db = post.rms_db(y, sr, hop_ms=vad.hop_ms, frame_ms=vad.frame_ms)
    floor = float(np.percentile(db, vad.floor_percentile))
    on_thr = max(floor + vad.margin_db, vad.min_threshold_db)
    on = db > on_thr
    sustain = db > on_thr - vad.hysteresis_db
    # keep the sustain runs that contain at least one onset frame (hysteresis)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], sustain.astype(np.int8), [0]])))
    active = np.zeros_like(sustain)
    for s, e in zip(edges[::2], edges[1::2], strict=True):
        if on[s:e].any():
            active[s:e] = True
    return post.frames_to_regions(active, vad.hop_ms / 1000, vad.min_silence_ms / 1000, vad.min_speech_ms / 1000)


def shape_segments(segments: list[tuple[float, float]], db: np.ndarray, hop_s: float, cfg: DatasetConfig,
                   cues: list[tuple[float, float]] = ()) -> tuple[list[tuple[float, float]],
                                                                list[tuple[float, float, str]]]:
    """Merge short neighbours, split long segments at their quietest stretch — outside subtitle cues when
    there are any, so each part keeps whole subtitles — and reject what stays too short."""
    merged: list[list[float]] = []
    for s, e in segments:
        if merged:
            ps, pe = merged[-1]
            short = (pe - ps) < cfg.min_clip_s or (e - s) < cfg.min_clip_s
            if short and s - pe < cfg.merge_gap_s and e - ps <= cfg.max_clip_s:
                merged[-1][1] = e
                continue
        merged.append([s, e])
    clips: list[tuple[float, float]] = []
    rejected: list[tuple[float, float, str]] = []
    k = max(1, int(round(0.15 / hop_s)))
    smooth = np.convolve(db, np.ones(k) / k, mode="same") if db.size >= k else db.copy()
    for cs, ce in cues:  # a pause inside a subtitle (a comma) is a worse cut than one between subtitles
        a, b = int((cs + 0.25) / hop_s), int((ce - 0.25) / hop_s)
        if b > a:
            smooth[max(0, a):max(0, b)] += 30.0

    def split(s: float, e: float) -> None:
        if e - s <= cfg.max_clip_s:
            if e - s < cfg.min_clip_s:
                rejected.append((s, e, f"too short ({e - s:.1f} s < {cfg.min_clip_s:.0f} s)"))
            else:
                clips.append((s, e))
            return
        lo, hi = s + cfg.min_clip_s, min(e - cfg.min_clip_s, s + cfg.max_clip_s)
        i0, i1 = int(lo / hop_s), max(int(lo / hop_s) + 1, int(hi / hop_s))
        window = smooth[i0:i1]  # the quietest *stretch* (a breath), not a stop consonant's closure
        cut = (i0 + int(np.argmin(window))) * hop_s if window.size else (s + e) / 2
        split(s, cut)
        split(cut, e)

    for s, e in merged:
        split(s, e)
    return clips, rejected


def _names_for(speaker: str) -> set[str]:
    names = {speaker.strip().lower()}
    try:
        from studio.configs.schema import studio_config

        cid, c = studio_config().characters.resolve(speaker)
        names |= {cid, c.display_name.lower(), *(a.lower() for a in c.aliases)}
        names |= {n.split()[0] for n in list(names) if n.split()}
    except StudioError:
        pass
    return names


def assign_text(start: float, end: float, cues: list[Cue], names: set[str], labelled: bool, min_overlap: float
                ) -> tuple[str, str | None]:
    """(text, rejection reason or None) for a clip from the subtitles that mostly lie inside it."""
    inside = [c for c in cues
              if min(end, c.end) - max(start, c.start) >= min_overlap * (c.end - c.start)]
    if not inside:
        return "", "no subtitle over this speech"
    if labelled:
        speakers = {(c.speaker or "").lower() for c in inside}
        if "" in speakers:
            return "", "unlabelled subtitle in a labelled file"
        others = sorted(sp for sp in speakers if sp not in names)
        if others:
            mine = len(speakers) > len(others)
            return "", (f"several speakers ({', '.join(others)} too)" if mine else f"other speaker ({others[0]})")
    text = " ".join(c.text for c in inside).replace("|", " ")
    return " ".join(text.split()), None


# --------------------------------------------------------------------------- planning
@dataclass
class ChunkPlan:
    index: int
    start: float
    end: float
    window_start: float
    window_end: float


def plan_chunks(duration: float, chunk_s: float, max_clip_s: float, cuts: list[float] | None = None
                ) -> list[ChunkPlan]:
    """Chunks between `cuts` (default: every chunk_s seconds); each window adds a lead and a tail."""
    tail = 2 * max_clip_s + 2.0
    n = max(1, int(np.ceil(duration / chunk_s)))
    cuts = cuts if cuts is not None else [i * chunk_s for i in range(1, n)]
    edges = [0.0, *cuts, duration]
    return [ChunkPlan(i, edges[i], edges[i + 1], max(0.0, edges[i] - LEAD_S), min(duration, edges[i + 1] + tail))
            for i in range(len(edges) - 1)]


def snap_cuts(audio: Path, duration: float, chunk_s: float, search_s: float = 5.0, sr: int = 8000
              ) -> list[float]:
    """Move each chunk boundary to the quietest 300 ms within ±search_s of it.

    Chunks own the segments that start inside them; a boundary in a pause means no segment starts or ends
    near it, so both neighbouring chunks (which analyse different windows, with their own noise floors)
    agree on who owns what. Only 2·search_s seconds around each boundary are decoded.
    """
    cuts = []
    n = max(1, int(np.ceil(duration / chunk_s)))
    for i in range(1, n):
        t = i * chunk_s
        a = max(0.0, t - search_s)
        y, _ = audio_io.ffmpeg_decode(audio, sr, a, min(duration, t + search_s) - a)
        db = post.rms_db(y, sr, hop_ms=10.0, frame_ms=50.0)
        if db.size < 30:
            cuts.append(t)
            continue
        smooth = np.convolve(db, np.ones(30) / 30, mode="same")
        cuts.append(round(a + int(np.argmin(smooth[15:-15]) + 15) * 0.01, 3))
    return cuts


def chunk_recipe(source: dict, chunk: ChunkPlan, cues: list[Cue], speaker: str, language: str,
                 cfg: DatasetConfig) -> Recipe:
    window = [asdict(c) for c in cues if c.end > chunk.window_start and c.start < chunk.window_end]
    return Recipe(stage=CHUNK_STAGE, backend="energy-vad", params={
        "source": source, "chunk": asdict(chunk), "speaker": speaker, "language": language,
        "cues": window, "labelled": any(c.speaker for c in cues), "config": cfg.model_dump(mode="json"),
    }, inputs=[source["sha256"]])


def plan_dataset(audio: Path | str, speaker: str, language: str = "en", srt: Path | str | None = None,
                 chunk_s: float | None = None, cfg: DatasetConfig | None = None) -> list[Recipe]:
    """Validate the inputs and return one recipe per chunk (errors name the file and the fix)."""
    cfg = cfg or load_tts_config().dataset
    audio = Path(audio).expanduser().resolve()
    if not speaker or not speaker.strip():
        raise DatasetError("a speaker label is required (the character whose voice to collect)")
    if language not in cfg.languages:
        raise DatasetError(f"language '{language}' is not supported for datasets (supported: "
                           f"{', '.join(cfg.languages)}; see dataset.languages in configs/tts_config.yaml)")
    if not audio.is_file():
        raise DatasetError(f"audio file not found: {audio}")
    duration = audio_io.audio_duration(audio)
    if duration <= 0:
        raise audio_io.CorruptAudioError(f"{audio} has no audio (duration {duration})")
    cues = parse_srt(srt) if srt else []
    source = {"path": str(audio), "sha256": sha256_file(audio), "duration_s": round(duration, 3)}
    size = chunk_s or cfg.chunk_s
    cuts = snap_cuts(audio, duration, size)
    return [chunk_recipe(source, c, cues, speaker.strip(), language, cfg)
            for c in plan_chunks(duration, size, cfg.max_clip_s, cuts)]


# --------------------------------------------------------------------------- one chunk
def make_chunk(recipe: Recipe, store: ArtifactStore | None = None) -> ArtifactRef:
    """Analyse one chunk and store its clips and manifest (returns the stored manifest when present)."""
    store = store or ArtifactStore.from_settings()
    done = store.lookup(recipe)
    if done is not None:
        return done
    p = recipe.params
    cfg = DatasetConfig.model_validate(p["config"])
    chunk = ChunkPlan(**p["chunk"])
    src = p["source"]
    y, sr = audio_io.ffmpeg_decode(src["path"], cfg.sample_rate, chunk.window_start,
                               chunk.window_end - chunk.window_start)
    ya = post.resample(y, sr, cfg.vad.analysis_rate)
    found = detect_speech(ya, cfg.vad.analysis_rate, cfg.vad)
    raw = [(s + chunk.window_start, e + chunk.window_start) for s, e in found]
    owned = [(s, e) for s, e in raw if chunk.start <= s < chunk.end]
    db = post.rms_db(ya, cfg.vad.analysis_rate, cfg.vad.hop_ms, cfg.vad.frame_ms)
    hop_s = cfg.vad.hop_ms / 1000
    # shape on window-relative times so the energy track lines up
    rel = [(s - chunk.window_start, e - chunk.window_start) for s, e in owned]
    cues = [Cue(**c) for c in p["cues"]]
    cue_rel = [(c.start - chunk.window_start, c.end - chunk.window_start) for c in cues]
    clips_rel, rejected_rel = shape_segments(rel, db, hop_s, cfg, cue_rel)
    names = _names_for(p["speaker"])
    manifest = {"chunk": chunk.index, "start": chunk.start, "end": chunk.end, "source": src,
                "speech_s": round(sum(e - s for s, e in owned), 3), "clips": [], "rejected": []}
    for s, e, why in rejected_rel:
        manifest["rejected"].append({"start": round(s + chunk.window_start, 3),
                                     "end": round(e + chunk.window_start, 3), "reason": why})
    for s_rel, e_rel in clips_rel:
        s, e = s_rel + chunk.window_start, e_rel + chunk.window_start
        entry = {"start": round(s, 3), "end": round(e, 3), "duration_s": round(e - s, 3)}
        reason = None
        text = ""
        if cues:
            text, reason = assign_text(s, e, cues, names, p["labelled"], cfg.min_cue_overlap)
        if chunk.window_end < src["duration_s"] and e_rel >= (chunk.window_end - chunk.window_start) - hop_s:
            reason = reason or "continuous speech runs past the chunk's tail (cut)"
        a, b = int(max(0.0, s_rel - cfg.pad_ms / 1000) * sr), int(min(len(y) / sr, e_rel + cfg.pad_ms / 1000) * sr)
        clip = y[a:b]
        if reason is None:
            reason = _clip_problem(clip, sr, cfg)
        if reason:
            manifest["rejected"].append({**entry, "reason": reason, "text": text})
            continue
        clip = mix.loudness_normalize(clip, sr, cfg.loudness_lufs, -1.0)[0]
        clip_recipe = Recipe(stage=CLIP_STAGE, backend="energy-vad", params={
            "source": src["sha256"], "start": entry["start"], "end": entry["end"], "pad_ms": cfg.pad_ms,
            "sample_rate": sr, "lufs": cfg.loudness_lufs}, inputs=[src["sha256"]])
        ref = store.lookup_or_make(clip_recipe, ".wav", "audio/wav",
                                   lambda tmp, clip=clip: audio_io.write_wav(tmp, clip, sr))
        manifest["clips"].append({**entry, "text": text, "ref": ref.model_dump()})
    return store.put_json(recipe, manifest)


def _clip_problem(clip: np.ndarray, sr: int, cfg: DatasetConfig) -> str | None:
    if clip.size == 0:
        return "empty"
    clipped = float(np.mean(np.abs(clip) >= 0.999))
    if clipped > cfg.max_clipped_fraction:
        return f"clipped source ({clipped:.2%} of samples at full scale)"
    lufs = mix.integrated_loudness(clip, sr)
    if not np.isfinite(lufs) or lufs < cfg.min_loudness_lufs:
        return f"too quiet ({lufs:.0f} LUFS < {cfg.min_loudness_lufs:.0f})"
    return None


# --------------------------------------------------------------------------- export
def export_dataset(manifest_refs: list[ArtifactRef], out_dir: Path | str, speaker: str, language: str,
                   reused: int = 0, store: ArtifactStore | None = None) -> dict:
    """Copy the clips to `out_dir/wavs/`, write `<speaker>.list`, `report.json` and `report.md`."""
    store = store or ArtifactStore.from_settings()
    out = Path(out_dir).expanduser().resolve()
    wavs = out / "wavs"
    wavs.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^\w-]+", "_", speaker.strip()).strip("_") or "speaker"
    lines, clips, rejected, speech_s, source = [], [], [], 0.0, None
    last_end = -1.0
    for mref in manifest_refs:
        m = store.read_json(mref)
        source = source or m["source"]
        speech_s += m["speech_s"]
        rejected += [{**r, "chunk": m["chunk"]} for r in m["rejected"]]
        for i, c in enumerate(m["clips"]):
            if c["start"] < last_end - 0.5 * c["duration_s"]:
                rejected.append({**{k: c[k] for k in ("start", "end", "duration_s", "text")},
                                 "reason": "duplicate at a chunk boundary", "chunk": m["chunk"]})
                continue
            last_end = c["end"]
            dst = wavs / f"{slug}_{m['chunk']:04d}_{i:03d}.wav"
            src = store.local_path(ArtifactRef(**c["ref"]))
            if not (dst.exists() and dst.stat().st_size == src.stat().st_size):
                copy_atomic(src, dst)
            lines.append(f"{dst}|{speaker}|{language}|{c['text']}")
            clips.append({"path": str(dst), "start": c["start"], "end": c["end"], "duration_s": c["duration_s"],
                          "text": c["text"], "chunk": m["chunk"]})
    list_path = out / f"{slug}.list"
    write_text_atomic(list_path, "\n".join(lines) + ("\n" if lines else ""))
    reasons: dict[str, int] = {}
    for r in rejected:
        key = re.sub(r"\(.*\)", "", r["reason"]).strip()
        reasons[key] = reasons.get(key, 0) + 1
    report = {
        "speaker": speaker, "language": language, "source": source, "list": str(list_path),
        "clips": len(clips), "minutes": round(sum(c["duration_s"] for c in clips) / 60, 3),
        "speech_minutes": round(speech_s / 60, 3), "chunks": len(manifest_refs), "chunks_reused": reused,
        "without_text": sum(1 for c in clips if not c["text"]),
        "rejected": len(rejected), "rejected_by_reason": reasons, "rejected_clips": rejected, "clip_list": clips,
    }
    write_text_atomic(out / "report.json", json.dumps(report, indent=1))
    write_text_atomic(out / "report.md", report_markdown(report))
    return report


def report_markdown(r: dict) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(r["rejected_by_reason"].items())) or "| — | 0 |"
    return (f"# Voice dataset: {r['speaker']} ({r['language']})\n\n"
            f"- source: `{(r['source'] or {}).get('path')}` ({(r['source'] or {}).get('duration_s', 0) / 60:.1f} min)\n"
            f"- clips: **{r['clips']}**, {r['minutes']:.2f} min (speech detected: {r['speech_minutes']:.2f} min)\n"
            f"- list: `{r['list']}`\n- chunks: {r['chunks']} ({r['chunks_reused']} reused from an earlier run)\n"
            f"- clips without text: {r['without_text']}\n\n## Rejected ({r['rejected']})\n\n"
            f"| reason | clips |\n|---|---|\n{rows}\n")
