"""Validated voice configs: `configs/character_voices.yaml` (who sounds how) and `configs/tts_config.yaml`
(output format, emotion → prosody table, quality bounds, backend and dataset/training settings).

Both go through `studio.configs.schema.load_config`, so a broken file raises `ConfigError` naming the field.
Loaded fresh on each call (they are small) so an edited YAML is picked up by the next line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from studio.configs.schema import Strict, load_config
from studio.configs.vocabulary import EMOTIONS

# --------------------------------------------------------------------------- character_voices.yaml


class Reference(Strict):
    """A GPT-SoVITS reference clip: 3–10 s of the character speaking with one emotion, and its transcript."""

    audio: str
    text: str = ""
    language: str = "en"

    def path(self) -> Path:
        return Path(self.audio).expanduser()


class GPTSoVITSVoice(Strict):
    gpt_weights: str | None = None  # .ckpt (GPT_weights_v2/...); None = the server's current/default weights
    sovits_weights: str | None = None  # .pth (SoVITS_weights_v2/...)
    # emotion -> one clip or several (alternatives are tried in turn when a line fails its quality check)
    references: dict[str, list[Reference]] = {}
    top_k: int | None = None
    temperature: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_or_many(cls, data):
        refs = data.get("references") if isinstance(data, dict) else None
        if isinstance(refs, dict):
            data = {**data, "references": {k: (v if isinstance(v, list) else [v]) for k, v in refs.items()}}
        return data

    @model_validator(mode="after")
    def _emotions_known(self) -> GPTSoVITSVoice:
        bad = [e for e in self.references if e not in EMOTIONS]
        if bad:
            raise ValueError(f"references for unknown emotion(s) {bad}; known: {', '.join(EMOTIONS)}")
        return self


class PiperVoiceOptions(Strict):
    model: str | None = None  # .onnx path or "pkg:<module>"; None = the model named in models.yaml
    speaker: int | None = None  # multi-speaker models only
    noise_scale: float | None = Field(default=None, ge=0.0, le=2.0)  # overrides the emotion table's
    noise_w: float | None = Field(default=None, ge=0.0, le=2.0)


class EspeakVoiceOptions(Strict):
    variant: str | None = None  # espeak-ng voice variant (m1..m7, f1..f5, croak, ...) on the language's voice
    wpm: int | None = Field(default=None, ge=80, le=450)  # None = backends.espeak.wpm


class HibariVoiceOptions(Strict):
    voice: str = "heart"


class CharacterVoice(Strict):
    description: str = ""
    language: str = "en"  # language of the character's lines
    speed: float = Field(default=1.0, ge=0.5, le=2.0)  # multiplies the emotion's tempo
    pitch_semitones: float = Field(default=0.0, ge=-12.0, le=12.0)  # post-process shift (not GPT-SoVITS)
    piper: PiperVoiceOptions = PiperVoiceOptions()
    espeak: EspeakVoiceOptions = EspeakVoiceOptions()
    hibari: HibariVoiceOptions = HibariVoiceOptions()
    gpt_sovits: GPTSoVITSVoice = GPTSoVITSVoice()


class CharacterVoicesConfig(Strict):
    voices: dict[str, CharacterVoice] = Field(min_length=1)


# --------------------------------------------------------------------------- tts_config.yaml


class OutputConfig(Strict):
    sample_rate: int = Field(default=24000, ge=8000, le=96000)
    channels: Literal[1, 2] = 1
    loudness_lufs: float = Field(default=-16.0, ge=-40.0, le=-6.0)
    peak_ceiling_db: float = Field(default=-1.0, le=0.0)
    trim_top_db: float = Field(default=40.0, gt=0.0)
    pad_ms: int = Field(default=60, ge=0, le=2000)  # silence kept at both ends after trimming
    sentence_pause_ms: int = Field(default=220, ge=0, le=3000)
    envelope_hop_ms: int = Field(default=10, ge=5, le=100)


class TextConfig(Strict):
    max_chars: int = Field(default=50000, ge=100)  # beyond this a line is rejected (use a script splitter)
    max_chunk_chars: int = Field(default=280, ge=40)  # sentences longer than this are cut at commas/spaces


class Prosody(Strict):
    """Prosody of an emotion at full intensity; intensity 0..1 interpolates from `neutral`."""

    tempo: float = Field(default=1.0, ge=0.5, le=2.0)  # >1 faster
    pitch_semitones: float = Field(default=0.0, ge=-12.0, le=12.0)  # whole-line shift
    contour_semitones: float = Field(default=0.0, ge=-8.0, le=8.0)  # extra shift reached at each sentence's end
    noise_scale: float = Field(default=0.667, ge=0.0, le=2.0)  # piper: generator noise (expressiveness)
    noise_w: float = Field(default=0.8, ge=0.0, le=2.0)  # piper: phoneme-duration variation
    loudness_offset_db: float = Field(default=0.0, ge=-12.0, le=6.0)  # relative to output.loudness_lufs


class QualityConfig(Strict):
    min_chars_per_s: float = 4.0
    max_chars_per_s: float = 32.0
    clip_threshold: float = 0.999
    max_clipped_fraction: float = 0.001
    silence_db: float = -40.0  # frames this far below the line's peak count as silence
    max_silence_ratio: float = Field(default=0.5, ge=0.0, le=1.0)
    loudness_tolerance_db: float = 2.0
    max_attempts: int = Field(default=3, ge=1, le=10)
    on_failure: Literal["report", "error"] = "report"


class PiperBackendConfig(Strict):
    threads: int = Field(default=1, ge=1)
    # piper's length_scale moves duration only ≈ tempo^-0.55 (measured on joe); the rest of the requested
    # tempo change is a librosa time-stretch: rate = tempo ** tempo_post_exponent (0 = model only)
    tempo_post_exponent: float = Field(default=0.45, ge=0.0, le=1.0)
    # line language -> espeak-ng voice used to phonemise it (the model speaks those phonemes in its own voice)
    languages: dict[str, str] = {"en": "en-us", "it": "it"}


class EspeakBackendConfig(Strict):
    binary: str = "espeak-ng"
    wpm: int = 165
    voices: dict[str, str] = {"en": "en-us", "it": "it"}


class HibariBackendConfig(Strict):
    threads: int = 1
    languages: list[str] = ["en"]


class GPTSoVITSBackendConfig(Strict):
    host: str = "127.0.0.1"
    port: int = 9880
    base_url: str | None = None  # an existing server elsewhere; disables management
    managed: bool = True  # start/stop api_v2.py ourselves (needs `checkout`)
    checkout: str = "~/GPT-SoVITS"
    python: str = "python"  # the GPT-SoVITS environment's interpreter
    tts_infer_config: str = "GPT_SoVITS/configs/tts_infer.yaml"
    command: list[str] = ["{python}", "api_v2.py", "-a", "{host}", "-p", "{port}", "-c", "{config}"]
    start_timeout_s: float = 240.0
    request_timeout_s: float = 300.0
    health_path: str = "/openapi.json"
    # api_v2 (v2 models) accepts these text/prompt languages; anything else is mapped or rejected up front.
    languages: list[str] = ["auto", "auto_yue", "en", "zh", "ja", "yue", "ko", "all_zh", "all_ja", "all_yue",
                            "all_ko"]
    language_map: dict[str, str] = {}
    park: Literal["keep", "stop"] = "stop"  # between heavy tasks: stop the server to free VRAM, or keep it
    always_set_weights: bool = False  # re-send weights before every line (servers restarted behind our back)
    request: dict[str, object] = {"top_k": 15, "top_p": 1.0, "temperature": 1.0, "text_split_method": "cut5",
                                  "batch_size": 1, "repetition_penalty": 1.35, "fragment_interval": 0.3}

    def url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")


class BackendsConfig(Strict):
    piper: PiperBackendConfig = PiperBackendConfig()
    espeak: EspeakBackendConfig = EspeakBackendConfig()
    hibari: HibariBackendConfig = HibariBackendConfig()
    gpt_sovits: GPTSoVITSBackendConfig = GPTSoVITSBackendConfig()


class VADConfig(Strict):
    analysis_rate: int = 16000
    frame_ms: float = 30.0
    hop_ms: float = 10.0
    margin_db: float = 12.0  # speech = frames this far above the noise floor ...
    floor_percentile: float = 10.0
    min_threshold_db: float = -55.0  # ... and never below this absolute level (dBFS)
    hysteresis_db: float = 3.0  # a segment ends only when energy drops this much below the onset threshold
    min_speech_ms: float = 200.0
    min_silence_ms: float = 350.0  # shorter gaps are bridged


class DatasetConfig(Strict):
    vad: VADConfig = VADConfig()
    min_clip_s: float = 3.0
    max_clip_s: float = 10.0
    merge_gap_s: float = 0.8  # short neighbouring segments closer than this are joined
    pad_ms: float = 80.0
    sample_rate: int = 32000  # GPT-SoVITS resamples to 32 kHz itself; storing at 32 kHz saves a step
    loudness_lufs: float = -20.0
    min_loudness_lufs: float = -45.0
    max_clipped_fraction: float = 0.002
    min_cue_overlap: float = 0.5  # a subtitle counts for a clip when this share of it lies inside the clip
    chunk_s: float = 300.0
    languages: list[str] = ["en", "it", "zh", "ja", "ko", "yue"]


class TrainingConfig(Strict):
    languages: list[str] = ["en", "zh", "ja", "ko", "yue"]  # what GPT-SoVITS's 1-get-text.py understands
    min_minutes: float = 1.0
    min_clip_s: float = 1.0
    max_clip_s: float = 15.0
    min_sample_rate: int = 16000
    version: str = "v2"
    exp_root: str = "logs"
    sovits_weight_dir: str = "SoVITS_weights_v2"
    gpt_weight_dir: str = "GPT_weights_v2"
    s2_template: str = "GPT_SoVITS/configs/s2.json"
    s1_template: str = "GPT_SoVITS/configs/s1longer-v2.yaml"
    bert_pretrained_dir: str = "GPT_SoVITS/pretrained_models/chinese-roberta-wwm-ext-large"
    cnhubert_base_dir: str = "GPT_SoVITS/pretrained_models/chinese-hubert-base"
    pretrained_s2G: str = "GPT_SoVITS/pretrained_models/gsv-v2final-pretrained/s2G2333k.pth"
    pretrained_s2D: str = "GPT_SoVITS/pretrained_models/gsv-v2final-pretrained/s2D2333k.pth"
    pretrained_s1: str = ("GPT_SoVITS/pretrained_models/gsv-v2final-pretrained/"
                          "s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt")
    is_half: bool = True
    gpu: str = "0"
    step_timeout_s: float = 6 * 3600


class TTSConfig(Strict):
    output: OutputConfig = OutputConfig()
    text: TextConfig = TextConfig()
    emotions: dict[str, Prosody] = {"neutral": Prosody()}
    quality: QualityConfig = QualityConfig()
    backends: BackendsConfig = BackendsConfig()
    # Tried in order when the profile's voice backend cannot run here (not installed, no model, server down).
    fallback: list[str] = ["piper", "espeak"]
    dataset: DatasetConfig = DatasetConfig()
    training: TrainingConfig = TrainingConfig()

    @model_validator(mode="after")
    def _emotion_table(self) -> TTSConfig:
        if "neutral" not in self.emotions:
            raise ValueError("emotions must define 'neutral' (intensity 0 of every emotion)")
        bad = [e for e in self.emotions if e not in EMOTIONS]
        if bad:
            raise ValueError(f"emotions {bad} are not plan emotions ({', '.join(EMOTIONS)})")
        return self


def load_character_voices() -> CharacterVoicesConfig:
    return load_config("character_voices.yaml", CharacterVoicesConfig)


def load_tts_config() -> TTSConfig:
    return load_config("tts_config.yaml", TTSConfig)
