"""Studio settings: one pydantic-settings model with nested groups, read from `STUDIO_*` env vars.

Nested values use a double underscore: `STUDIO_PREFECT__API_PORT=4300`, `STUDIO_STORE__URI=s3://b/p`.
There is no import-time instance: call `get_settings()` (cached; `get_settings.cache_clear()` in tests).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Profile = Literal["preview", "gpu", "auto"]


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("animation-studio", appauthor=False))


class PrefectGroup(BaseModel):
    """The local Prefect server the studio starts and talks to (never ephemeral mode)."""

    host: str = "127.0.0.1"
    port: int = 4200
    # Poll interval of tasks waiting for a tag slot; 1 s cuts the hand-off between processes to ≈0.7 s.
    slot_wait_seconds: float = 1.0
    # Full API URL of an existing server (e.g. a shared PostgreSQL-backed one); overrides host/port.
    api_url: str | None = None
    start_timeout_s: float = 90.0
    # The server's database (e.g. postgresql+asyncpg://user:pass@db/prefect); default: SQLite under STUDIO_HOME.
    database_url: str | None = None

    def url(self) -> str:
        return (self.api_url or f"http://{self.host}:{self.port}/api").rstrip("/")

    def ui_url(self) -> str:
        return self.url().removesuffix("/api")


class StoreGroup(BaseModel):
    """Where artifacts and Prefect results live: a local folder (default) or `s3://bucket/prefix`."""

    uri: str | None = None  # default: STUDIO_HOME/artifacts
    s3_endpoint_url: str | None = None
    s3_key: str | None = None
    s3_secret: str | None = None
    s3_region: str | None = None
    # Transient S3 errors (timeouts, resets, a stalled endpoint) are retried with backoff this long, then reported.
    retry_s: float = Field(default=60.0, ge=0)
    timeout_s: float = Field(default=20.0, gt=0)  # socket connect/read timeout of one S3 request


class FilesGroup(BaseModel):
    """The read-only file server beside the Prefect server: the UI's pictures, the playable short, /metrics."""

    host: str = "127.0.0.1"
    port: int = 4201
    # Start it with `studio server start`; off: the UI gets no pictures (artifacts keep their store paths).
    enabled: bool = True

    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


# The tag every task that loads a heavy model carries; Prefect's tag limit `tag:gpu-heavy` enforces it.
GPU_HEAVY_TAG = "gpu-heavy"


class GpuGroup(BaseModel):
    limit: int = 1  # slots of tag:gpu-heavy: 1 per GPU in the whole deployment
    # Keep parked models in host RAM only while this much RAM stays free (ComfyUI-style reserve).
    host_ram_reserve_gb: float = 4.0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # Names this device's slot `tag:gpu-heavy:<slot_id>` (limit 1); default `<hostname>-<device>`.
    slot_id: str | None = None


class LLMGroup(BaseModel):
    threads: int = Field(default_factory=lambda: 1 if (os.cpu_count() or 1) <= 2 else 4)
    port: int = 8765
    max_repair_attempts: int = 3


class StudioSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STUDIO_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    profile: Profile = "preview"
    # Folder of YAML configs; default: the ones shipped in the package (configs/).
    config_dir: Path | None = None
    knowledge_dir: Path | None = None
    prefect: PrefectGroup = PrefectGroup()
    store: StoreGroup = StoreGroup()
    gpu: GpuGroup = GpuGroup()
    llm: LLMGroup = LLMGroup()
    files: FilesGroup = FilesGroup()
    # Testing aid (STUDIO_FAIL_AT="STAGE:N"): a create-short run raises at the start of STAGE on its first N
    # attempts, so Retry can be exercised on a run that really failed mid-way.
    fail_at: str | None = None

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    # Derived locations under STUDIO_HOME -------------------------------------------------
    @property
    def store_uri(self) -> str:
        return self.store.uri or str(self.home / "artifacts")

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        """PID files and locks of the servers and GPUs the studio manages."""
        return self.home / "run"

    @property
    def residency_log(self) -> Path:
        return self.home / "residency.jsonl"

    @property
    def configs_path(self) -> Path:
        return self.config_dir or Path(__file__).resolve().parent

    @property
    def knowledge_path(self) -> Path:
        if self.knowledge_dir:
            return self.knowledge_dir
        from studio import knowledge_pack_dir

        return knowledge_pack_dir()

    def storage_options(self) -> dict:
        """fsspec options for the artifact store (only S3 needs any)."""
        if not self.store_uri.startswith("s3://"):
            return {}
        opts: dict = {}
        if self.store.s3_key:
            opts["key"] = self.store.s3_key
            opts["secret"] = self.store.s3_secret
        client_kwargs = {}
        if self.store.s3_endpoint_url:
            client_kwargs["endpoint_url"] = self.store.s3_endpoint_url
        if self.store.s3_region:
            client_kwargs["region_name"] = self.store.s3_region
        if client_kwargs:
            opts["client_kwargs"] = client_kwargs
        return opts


@functools.cache
def get_settings() -> StudioSettings:
    return StudioSettings()
