"""GPT-SoVITS fine-tuning from a `path|speaker|language|text` list: validate, write configs, run the steps
of a GPT-SoVITS checkout (the ones its webui runs), register the resulting weights.

Steps (cwd = the checkout, env vars as the webui sets them):
  1a `GPT_SoVITS/prepare_datasets/1-get-text.py`        text → phonemes + BERT features (2-name2text.txt)
  1b `GPT_SoVITS/prepare_datasets/2-get-hubert-wav32k.py` SSL features + 32 kHz wavs
  1c `GPT_SoVITS/prepare_datasets/3-get-semantic.py`     semantic tokens (6-name2semantic.tsv)
  s2 `GPT_SoVITS/s2_train.py --config s2.json`           SoVITS → <sovits_weight_dir>/<exp>_e<E>_s<S>.pth
  s1 `GPT_SoVITS/s1_train.py --config_file s1.yaml`      GPT    → <gpt_weight_dir>/<exp>-e<E>.ckpt
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from studio.configs.errors import StudioError
from studio.configs.schema import config_path
from studio.resources.runtime.files import atomic_path
from studio.resources.voice.config import TrainingConfig


class DatasetInvalidError(StudioError):
    pass


class TrainingError(StudioError):
    pass


@dataclass
class DatasetCheck:
    list_path: str
    clips: int = 0
    minutes: float = 0.0
    speakers: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    first_clip: dict | None = None  # a usable reference clip (path, text, language)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_dataset(list_path: Path | str, cfg: TrainingConfig) -> DatasetCheck:
    """Files exist and decode, sample rates, durations, text present, trainable language, one speaker."""
    import soundfile as sf

    list_path = Path(list_path)
    check = DatasetCheck(str(list_path))
    if not list_path.is_file():
        check.problems.append(f"list file not found: {list_path}")
        return check
    speakers, langs, seconds = set(), set(), 0.0
    for n, line in enumerate(list_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 4:
            check.problems.append(f"line {n}: expected path|speaker|language|text (4 fields), got {len(parts)}")
            continue
        path, speaker, lang, text = (p.strip() for p in parts)
        speakers.add(speaker)
        langs.add(lang)
        if lang.lower() not in cfg.languages:
            check.problems.append(f"line {n}: language '{lang}' cannot be trained by GPT-SoVITS {cfg.version} "
                                  f"(trainable: {', '.join(cfg.languages)}); relabel the list")
        if not text:
            check.problems.append(f"line {n}: no text for {Path(path).name} (transcribe it or drop the line)")
        try:
            info = sf.info(path)
        except Exception as e:  # noqa: BLE001
            check.problems.append(f"line {n}: cannot read audio {path}: {str(e)[:120]}")
            continue
        if info.samplerate < cfg.min_sample_rate:
            check.problems.append(f"line {n}: {Path(path).name} is {info.samplerate} Hz (< {cfg.min_sample_rate})")
        if not cfg.min_clip_s <= info.duration <= cfg.max_clip_s:
            check.problems.append(f"line {n}: {Path(path).name} lasts {info.duration:.1f} s (allowed "
                                  f"{cfg.min_clip_s:g}–{cfg.max_clip_s:g} s)")
        seconds += info.duration
        check.clips += 1
        if check.first_clip is None and text and 3.0 <= info.duration <= 10.0:
            check.first_clip = {"audio": str(Path(path).resolve()), "text": text, "language": lang.lower()}
    check.minutes = round(seconds / 60, 3)
    check.speakers, check.languages = sorted(speakers), sorted(langs)
    if check.clips == 0 and not check.problems:
        check.problems.append("the list has no clips")
    if len(speakers) > 1:
        check.problems.append(f"one speaker per training run, found {', '.join(sorted(speakers))}")
    if check.clips and check.minutes < cfg.min_minutes:
        check.problems.append(f"only {check.minutes:.2f} min of audio; at least {cfg.min_minutes:g} min is needed")
    return check


@dataclass
class TrainingPlan:
    exp_name: str
    checkout: str
    work_dir: str
    opt_dir: str
    steps: list[dict]  # name, argv, env, cwd
    s2_config: str
    s1_config: str
    templates_found: bool

    def as_dict(self) -> dict:
        return asdict(self)


def write_training_config(check: DatasetCheck, exp_name: str, checkout: Path, python: str, cfg: TrainingConfig,
                          work_dir: Path, sovits_epochs: int = 8, gpt_epochs: int = 15, batch_size: int = 4
                          ) -> TrainingPlan:
    """Write s2.json / s1.yaml (from the checkout's templates when present) and plan.json under work_dir."""
    work_dir.mkdir(parents=True, exist_ok=True)
    opt_dir = checkout / cfg.exp_root / exp_name
    half = str(cfg.is_half)
    bs = batch_size if cfg.is_half else max(1, batch_size // 2)
    s2_tpl, s1_tpl = checkout / cfg.s2_template, checkout / cfg.s1_template
    found = s2_tpl.is_file() and s1_tpl.is_file()
    s2 = json.loads(s2_tpl.read_text()) if s2_tpl.is_file() else {"train": {}, "data": {}}
    s2.setdefault("train", {}).update({
        "batch_size": bs, "epochs": sovits_epochs, "text_low_lr_rate": 0.4, "pretrained_s2G": cfg.pretrained_s2G,
        "pretrained_s2D": cfg.pretrained_s2D, "if_save_latest": True, "if_save_every_weights": True,
        "save_every_epoch": max(1, sovits_epochs // 2), "gpu_numbers": cfg.gpu, "fp16_run": cfg.is_half})
    s2.setdefault("data", {})["exp_dir"] = str(opt_dir)
    s2.update({"s2_ckpt_dir": str(opt_dir), "save_weight_dir": str(checkout / cfg.sovits_weight_dir),
               "name": exp_name, "version": cfg.version})
    s1 = yaml.safe_load(s1_tpl.read_text()) if s1_tpl.is_file() else {"train": {}}
    s1.setdefault("train", {}).update({
        "batch_size": bs, "epochs": gpt_epochs, "save_every_n_epoch": max(1, gpt_epochs // 3),
        "if_save_every_weights": True, "if_save_latest": True, "if_dpo": False,
        "half_weights_save_dir": str(checkout / cfg.gpt_weight_dir), "exp_name": exp_name,
        "precision": "16-mixed" if cfg.is_half else "32"})
    s1.update({"pretrained_s1": cfg.pretrained_s1, "train_semantic_path": str(opt_dir / "6-name2semantic.tsv"),
               "train_phoneme_path": str(opt_dir / "2-name2text.txt"), "output_dir": str(opt_dir / "logs_s1")})
    s2_path, s1_path = work_dir / "s2.json", work_dir / "s1.yaml"
    s2_path.write_text(json.dumps(s2, indent=1))
    s1_path.write_text(yaml.safe_dump(s1, sort_keys=False))
    base = {"inp_text": check.list_path, "inp_wav_dir": "", "exp_name": exp_name, "opt_dir": str(opt_dir),
            "i_part": "0", "all_parts": "1", "_CUDA_VISIBLE_DEVICES": cfg.gpu, "is_half": half,
            "version": cfg.version}
    steps = [
        {"name": "1a-get-text", "argv": [python, "GPT_SoVITS/prepare_datasets/1-get-text.py"],
         "env": {**base, "bert_pretrained_dir": cfg.bert_pretrained_dir}},
        {"name": "1b-get-hubert-wav32k", "argv": [python, "GPT_SoVITS/prepare_datasets/2-get-hubert-wav32k.py"],
         "env": {**base, "cnhubert_base_dir": cfg.cnhubert_base_dir}},
        {"name": "1c-get-semantic", "argv": [python, "GPT_SoVITS/prepare_datasets/3-get-semantic.py"],
         "env": {**base, "pretrained_s2G": cfg.pretrained_s2G, "s2config_path": cfg.s2_template}},
        {"name": "s2-train-sovits", "argv": [python, "GPT_SoVITS/s2_train.py", "--config", str(s2_path)],
         "env": {"_CUDA_VISIBLE_DEVICES": cfg.gpu}},
        {"name": "s1-train-gpt", "argv": [python, "GPT_SoVITS/s1_train.py", "--config_file", str(s1_path)],
         "env": {"_CUDA_VISIBLE_DEVICES": cfg.gpu.replace("-", ","), "hz": "25hz"}},
    ]
    for st in steps:
        st["cwd"] = str(checkout)
    plan = TrainingPlan(exp_name, str(checkout), str(work_dir), str(opt_dir), steps, str(s2_path), str(s1_path),
                        found)
    (work_dir / "plan.json").write_text(json.dumps({**plan.as_dict(), "dataset": asdict(check)}, indent=1))
    return plan


def run_step(step: dict, log_path: Path, timeout_s: float) -> None:
    """Run one step (its own process group; killed on timeout), then merge the per-part outputs it leaves."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n=== {step['name']} {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(step['argv'])}\n".encode())
        log.flush()
        try:
            proc = subprocess.run(step["argv"], cwd=step["cwd"], env={**os.environ, **step["env"]}, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=timeout_s, start_new_session=True)
        except subprocess.TimeoutExpired as e:
            raise TrainingError(f"GPT-SoVITS step {step['name']} ran past {timeout_s:.0f}s; see {log_path}") from e
        except OSError as e:
            raise TrainingError(f"cannot run GPT-SoVITS step {step['name']} ({step['argv'][0]}): {e}") from e
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise TrainingError(f"GPT-SoVITS step {step['name']} failed (exit {proc.returncode}); log {log_path}:\n{tail}")
    opt = Path(step["env"].get("opt_dir", ""))
    if step["name"] == "1a-get-text":
        _merge(opt / "2-name2text-0.txt", opt / "2-name2text.txt", header=None, what=step["name"])
    elif step["name"] == "1c-get-semantic":
        _merge(opt / "6-name2semantic-0.tsv", opt / "6-name2semantic.tsv", header="item_name\tsemantic_audio",
               what=step["name"])


def _merge(part: Path, target: Path, header: str | None, what: str) -> None:
    if not part.is_file():
        raise TrainingError(f"GPT-SoVITS step {what} produced no {part.name} in {part.parent}")
    rows = [r for r in part.read_text(encoding="utf-8").strip("\n").split("\n") if r]
    if not rows:
        raise TrainingError(f"GPT-SoVITS step {what} produced an empty {part.name}: check the dataset's texts")
    target.write_text("\n".join(([header] if header else []) + rows) + "\n", encoding="utf-8")
    part.unlink()


def newest_weights(plan: TrainingPlan, cfg: TrainingConfig, since: float) -> tuple[Path, Path]:
    checkout = Path(plan.checkout)
    sovits = sorted((checkout / cfg.sovits_weight_dir).glob(f"{plan.exp_name}_e*.pth"), key=lambda p: p.stat().st_mtime)
    gpt = sorted((checkout / cfg.gpt_weight_dir).glob(f"{plan.exp_name}-e*.ckpt"), key=lambda p: p.stat().st_mtime)
    sovits = [p for p in sovits if p.stat().st_mtime >= since - 1]
    gpt = [p for p in gpt if p.stat().st_mtime >= since - 1]
    if not sovits or not gpt:
        raise TrainingError(f"training finished but no new weights named {plan.exp_name}_e*.pth / "
                            f"{plan.exp_name}-e*.ckpt were found under {checkout}")
    return gpt[-1].resolve(), sovits[-1].resolve()


def register_weights(voice_id: str, gpt: Path, sovits: Path, reference: dict | None) -> Path:
    """Point the voice's gpt_sovits weights at the new files in character_voices.yaml (comments kept);
    add the dataset's first clip as the neutral reference when the voice has none."""
    from ruamel.yaml import YAML

    path = config_path("character_voices.yaml")
    y = YAML()
    y.preserve_quotes = True
    data = y.load(path.read_text(encoding="utf-8"))
    voices = data.setdefault("voices", {})
    if voice_id not in voices:
        raise TrainingError(f"voice '{voice_id}' is not in {path}; add it before registering weights")
    voice = voices[voice_id]
    if voice.get("gpt_sovits") is None:
        voice["gpt_sovits"] = {}
    g = voice["gpt_sovits"]
    g["gpt_weights"], g["sovits_weights"] = str(gpt), str(sovits)
    refs = g.get("references")
    if reference and not (refs and refs.get("neutral")):
        if refs is None:
            g["references"] = refs = {}
        refs["neutral"] = {"audio": reference["audio"], "text": reference["text"], "language": reference["language"]}
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        y.dump(data, f)
    from studio.resources.voice.config import load_character_voices

    load_character_voices()  # the edited file must still validate
    return path
