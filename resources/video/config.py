"""configs/video.yaml, validated: the output format every segment is rendered to, scene detection, analysis,
audio mix and lip-sync settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from studio.configs.errors import UnknownNameError
from studio.configs.schema import load_config


# --------------------------------------------------------------------------- configs/video.yaml
class OutputFormat(BaseModel):
    """The fixed format every segment is rendered to, so the assembly can stream-copy the video."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(default=854, ge=32, le=7680, multiple_of=2)
    height: int = Field(default=480, ge=32, le=4320, multiple_of=2)
    fps: int = Field(default=24, ge=1, le=120)
    video_codec: Literal["libx264"] = "libx264"
    pix_fmt: Literal["yuv420p"] = "yuv420p"
    crf: int = Field(default=26, ge=0, le=51)
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "veryfast"
    # A fixed thread count keeps x264's bytes reproducible across machines (bit-exact resumes).
    threads: int = Field(default=1, ge=1, le=64)
    # No B-frames: decode order == display order, so the concat demuxer can cut a segment's tail cleanly
    # (crossfades) while stream-copying.
    bframes: int = Field(default=0, ge=0, le=16)
    gop_seconds: float = Field(default=2.0, gt=0, le=20)
    audio_codec: Literal["aac"] = "aac"
    audio_bitrate: str = Field(default="128k", pattern=r"^\d+k$")
    sample_rate: Literal[48000] = 48000
    channels: Literal[2] = 2
    # Ken Burns / punch-in zooms are computed on a frame this many times larger, to hide 1-px crop jitter.
    zoom_supersample: float = Field(default=2.0, ge=1.0, le=4.0)

    @model_validator(mode="after")
    def _fps_divides_audio_rate(self) -> OutputFormat:
        if self.sample_rate % self.fps:
            raise ValueError(f"fps {self.fps} must divide the audio rate {self.sample_rate} "
                             "(24, 25, 30, 48, 50, 60 do), so frame and sample boundaries line up")
        return self

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps

    def video_args(self) -> list[str]:
        return ["-c:v", self.video_codec, "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", self.pix_fmt,
                "-threads", str(self.threads), "-bf", str(self.bframes),
                "-g", str(max(1, int(round(self.gop_seconds * self.fps)))), "-r", str(self.fps)]

    def audio_args(self) -> list[str]:
        return ["-c:a", self.audio_codec, "-b:a", self.audio_bitrate, "-ar", str(self.sample_rate),
                "-ac", str(self.channels)]


class SceneDetectionConfig(BaseModel):
    """PySceneDetect's detector settings (its defaults: `detect(path, ContentDetector())` gives the same cuts),
    the transition probe's, and the chunking of long films."""

    model_config = ConfigDict(extra="forbid")

    detector: Literal["content", "adaptive"] = "content"
    content_threshold: float = Field(default=27.0, gt=0, le=255)
    adaptive_threshold: float = Field(default=3.0, gt=0, le=50)
    min_content_val: float = Field(default=15.0, ge=0, le=255)
    min_scene_len: int = Field(default=15, ge=0, le=10000)  # frames, as PySceneDetect counts them
    fade_threshold: float = Field(default=12.0, gt=0, lt=128)  # ThresholdDetector's black level; white = 255-it
    dissolve_low_score: float = Field(default=1.5, gt=0, le=255)  # content score that starts a gradual run
    transition_max_seconds: float = Field(default=4.0, gt=0, le=30)  # longer runs are moving shots
    chunk_seconds: float = Field(default=120.0, ge=1.0)
    overlap_seconds: float = Field(default=3.0, ge=0.25)  # > min_scene_len frames (checked at the film's rate)
    workers: int = Field(default=0, ge=0, le=64)  # 0 = all cores


class AnalysisConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=320, ge=64, le=1920)  # frames are scaled to this width for analysis
    motion_sample_fps: float = Field(default=12.0, gt=0, le=60)
    static_speed: float = Field(default=0.02, gt=0)  # frame widths per second below which a shot is static
    zoom_rate: float = Field(default=0.03, gt=0)  # |log scale| per second above which a shot zooms
    ssim_jump: float = Field(default=0.45, gt=0, lt=1)  # SSIM drop (vs neighbours) that flags a jump
    flicker_luma: float = Field(default=10.0, gt=0)  # mean-luma spike (0-255) that flags a flicker
    thumbnails_width: int = Field(default=480, ge=64, le=1920)


class AudioMixConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    music_gain_db: float = Field(default=-16.0, ge=-60, le=6)
    duck_db: float = Field(default=-12.0, ge=-60, le=0)
    duck_attack_s: float = Field(default=0.08, ge=0, le=2)
    duck_release_s: float = Field(default=0.3, ge=0, le=5)
    loudness_lufs: float | None = Field(default=-16.0, ge=-40, le=-5)
    peak_ceiling_db: float = Field(default=-1.0, ge=-20, le=0)
    sfx_gain_db: float = Field(default=-6.0, ge=-60, le=12)
    voice_gain_db: float = Field(default=0.0, ge=-60, le=12)


class LipSyncConfig(BaseModel):
    """How Wav2Lip's output is blended into a keyframe (the model itself is the gpu profile's `lipsync` entry in
    configs/models.yaml)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["wav2lip", "none"] = "wav2lip"  # none: lip flaps on every profile
    batch_size: int = Field(default=32, ge=1, le=1024)  # frames per network call
    mouth_top: float = Field(default=0.5, ge=0.0, lt=1.0)  # blend from this fraction of the face box down
    feather: float = Field(default=0.12, ge=0.0, le=0.5)  # ramp width, fraction of the box's smaller side
    pad_bottom: float = Field(default=0.1, ge=0.0, le=0.5)  # box extended below the chin (Wav2Lip's pads)


class GenerationConfig(BaseModel):
    """Image-to-video motion for keyframe shots on the gpu profile (resources/video/generation.py): the size,
    rate and sampler of the generated clip and the plan that fits the model in 16 GB of VRAM."""

    model_config = ConfigDict(extra="forbid")

    # LTX-Video wants sides divisible by 32 and 8k+1 frames (its VAE packs 8 frames per latent after the first).
    width: int = Field(default=1024, ge=32, le=2048, multiple_of=32)
    height: int = Field(default=576, ge=32, le=2048, multiple_of=32)
    fps: int = Field(default=24, ge=1, le=60)
    max_frames: int = Field(default=121, ge=9, le=257)  # longer shots hold the last generated frame
    steps: int = Field(default=30, ge=1, le=200)
    guidance_scale: float = Field(default=3.0, ge=0.0, le=20.0)
    negative_prompt: str = "worst quality, inconsistent motion, blurry, jittery, distorted"
    max_sequence_length: int = Field(default=128, ge=8, le=512)  # T5 prompt tokens
    decode_timestep: float = Field(default=0.0, ge=0.0, le=1.0)  # VAEs with timestep conditioning (0.9.1+)
    decode_noise_scale: float | None = Field(default=None, ge=0.0, le=1.0)
    # 16 GB plan: `model` = accelerate's model CPU offload (T5-XXL, transformer and VAE take turns on the GPU),
    # `sequential` = per-layer offload (slowest, least VRAM), `none` = the whole pipeline on the GPU.
    offload: Literal["none", "model", "sequential"] = "model"
    vae_tiling: bool = True  # decode in spatial tiles: the VAE's peak is what breaks 16 GB at 1024×576
    vae_slicing: bool = True
    cpu_threads: int = Field(default=0, ge=0, le=256)  # torch threads on CPU; 0 = torch's default
    animate: list[Literal["generate", "storyboard"]] = ["generate", "storyboard"]  # shot sources given motion

    @model_validator(mode="after")
    def _frames(self) -> GenerationConfig:
        if (self.max_frames - 1) % 8:
            raise ValueError(f"generation.max_frames {self.max_frames} must be 8k+1 (e.g. 97, 121)")
        return self


class AnimationConfig(BaseModel):
    """The cut-out animator of the `final` look (resources/video/animation.py)."""

    model_config = ConfigDict(extra="forbid")

    title_card_s: float = Field(default=2.5, ge=0, le=10)  # 0: no title card
    end_card_s: float = Field(default=3.0, ge=0, le=10)  # 0: no end card (the licences stay in the manifest)
    lip_flaps: bool = True  # the speaker's mouth opens with the voice line's envelope


class VideoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    formats: dict[str, OutputFormat] = {"preview": OutputFormat()}
    default_format: str = "preview"
    scene_detection: SceneDetectionConfig = SceneDetectionConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    audio: AudioMixConfig = AudioMixConfig()
    lipsync: LipSyncConfig = LipSyncConfig()
    font: str | None = None  # caption font file; default: system DejaVu, else Pillow's bundled font
    # final: animated cut-out shots, no debug captions, subtitles alone at the bottom, title and end cards;
    # storyboard: the annotated still frames (caption band, camera marks) with a camera move
    look: Literal["final", "storyboard"] = "final"
    animation: AnimationConfig = AnimationConfig()
    generation: GenerationConfig = GenerationConfig()

    @model_validator(mode="after")
    def _default_exists(self) -> VideoConfig:
        if self.default_format not in self.formats:
            raise ValueError(f"default_format '{self.default_format}' is not under formats: "
                             f"({', '.join(self.formats)})")
        return self

    def format(self, name: str | None = None) -> OutputFormat:
        name = name or self.default_format
        try:
            return self.formats[name]
        except KeyError:
            raise UnknownNameError(f"unknown output format '{name}' (known: {', '.join(self.formats)}); "
                                   "add it under formats: in configs/video.yaml") from None


def video_config() -> VideoConfig:
    """configs/video.yaml, validated (defaults when the file is absent)."""
    return load_config("video.yaml", VideoConfig, missing_ok=True)
