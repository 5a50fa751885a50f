"""Fine-tune a character's GPT-SoVITS voice from a dataset list (`studio voice dataset` makes one).

    studio voice train luca datasets/luca/luca.list

1. validate the list (files, sample rates, durations, texts, trainable language, one speaker) — always;
2. write the GPT-SoVITS training config (s2.json, s1.yaml, plan.json) under STUDIO_HOME/voice_training/<exp>;
3. only on the `gpu` profile with CUDA and a GPT-SoVITS checkout: run its preparation and training steps
   (holding the `gpu-heavy` slot) and register the new weights in configs/character_voices.yaml.
   Elsewhere the flow stops after step 2 and says why — training a voice on CPU is not practical.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from studio.configs.settings import get_settings
from studio.resources.voice.config import load_tts_config
from studio.resources.voice.select import resolve_voice
from studio.resources.voice.training import (
    DatasetCheck,
    DatasetInvalidError,
    newest_weights,
    register_weights,
    write_training_config,
)
from studio.tasks.voice_training import gpu_ready, run_training_step, validate_voice_dataset


@flow(name="train-voice")
def train_voice(character: str, dataset_list: str, exp_name: str | None = None, profile: str | None = None,
                validate_only: bool = False, sovits_epochs: int = 8, gpt_epochs: int = 15, batch_size: int = 4,
                require_cuda: bool = True) -> dict:
    """Returns {"status": invalid|validated|stopped|trained, "message", "dataset", "plan", "weights"}."""
    logger = get_run_logger()
    tts = load_tts_config()
    cfg, gcfg = tts.training, tts.backends.gpt_sovits
    char_id, voice_id, _voice = resolve_voice(character)
    check = validate_voice_dataset(dataset_list)
    if check["problems"]:
        shown = "\n  ".join(check["problems"][:20])
        more = f"\n  … and {len(check['problems']) - 20} more" if len(check["problems"]) > 20 else ""
        raise DatasetInvalidError(f"dataset {dataset_list} is not trainable ({len(check['problems'])} problem(s)):"
                                  f"\n  {shown}{more}")
    exp = exp_name or f"{voice_id}-{time.strftime('%Y%m%d-%H%M%S')}"
    checkout = Path(gcfg.checkout).expanduser()
    work = get_settings().home / "voice_training" / exp
    plan = write_training_config(DatasetCheck(**check), exp, checkout, gcfg.python, cfg, work,
                                 sovits_epochs, gpt_epochs, batch_size)
    summary = {"dataset": check, "plan": plan.as_dict(), "weights": None, "character": char_id, "voice": voice_id}
    head = (f"dataset OK: {check['clips']} clips, {check['minutes']:.2f} min of '{check['speakers'][0]}'; "
            f"training config written to {work}")
    why = "--validate-only was given" if validate_only else gpu_ready(profile) if require_cuda else None
    if why is None and not (checkout / "GPT_SoVITS").is_dir():
        why = f"no GPT-SoVITS checkout at {checkout} (set backends.gpt_sovits.checkout in configs/tts_config.yaml)"
    if why:
        status = "validated" if validate_only else "stopped"
        msg = f"{head}. Training not started: {why}."
        if status == "stopped":
            logger.warning(msg)
        else:
            logger.info(msg)
        return {**summary, "status": status, "message": msg}
    started = time.time()
    log_path = get_settings().logs_dir / f"gpt-sovits-train-{exp}.log"
    for step in plan.steps:
        logger.info("GPT-SoVITS step %s", step["name"])
        run_training_step(step, str(log_path), cfg.step_timeout_s)
    gpt, sovits = newest_weights(plan, cfg, started)
    path = register_weights(voice_id, gpt, sovits, check.get("first_clip"))
    msg = f"{head}. Trained in {time.time() - started:.0f}s: {gpt.name}, {sovits.name} registered in {path}"
    create_markdown_artifact(key="voice-training", markdown=f"# Voice training {exp}\n\n{msg}\n")
    return {**summary, "status": "trained", "message": msg, "weights": {"gpt": str(gpt), "sovits": str(sovits)}}
