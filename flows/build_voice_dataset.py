"""Build a GPT-SoVITS training set for one character from a film's audio track.

    studio voice dataset film.mkv --speaker luca --srt film.en.srt --out datasets/luca

1. plan: probe and hash the source, parse the subtitles, cut the timeline into chunks (one recipe each);
2. one `build_dataset_chunk` task per chunk — energy VAD, 3–10 s clips, text from overlapping subtitles,
   clips loudness-normalised and stored as artifacts; a chunk already in the store comes back Cached, so a
   build killed half-way (even with kill -9) resumes from the first unfinished chunk;
3. export: `wavs/`, `<speaker>.list` (`path|speaker|language|text`), `report.json`, `report.md`, and the
   report as a Prefect markdown artifact.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from studio.resources.runtime.artifacts import ArtifactStore
from studio.resources.voice.dataset import export_dataset, plan_dataset, report_markdown
from studio.tasks.voice_training import build_dataset_chunk


@flow(name="build-voice-dataset", log_prints=False)
def build_voice_dataset(audio: str, speaker: str, out_dir: str, srt: str | None = None, language: str = "en",
                        chunk_s: float | None = None) -> dict:
    """Film audio (+ SRT) → clips of `speaker` + GPT-SoVITS list + report. Returns the report (dict)."""
    logger = get_run_logger()
    recipes = plan_dataset(audio, speaker, language, srt, chunk_s)
    store = ArtifactStore.from_settings()
    reused = sum(1 for r in recipes if store.lookup(r) is not None)
    logger.info("%d chunk(s) of %s; %d already built", len(recipes), audio, reused)
    refs = [build_dataset_chunk(r) for r in recipes]  # sequential: the machine is shared; order = time
    report = export_dataset(refs, out_dir, speaker, language, reused=reused, store=store)
    logger.info("%d clips, %.2f min, %d rejected → %s", report["clips"], report["minutes"], report["rejected"],
                report["list"])
    create_markdown_artifact(markdown=report_markdown(report), key="voice-dataset",
                             description=f"voice dataset for {speaker}")
    return report
