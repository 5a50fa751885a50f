"""Model residency: one heavy model on the GPU at a time, the rest parked in host RAM.

A heavy model is *active* (on its device) only inside `ResidencyManager.use(...)`, which holds an OS lock per
GPU (`fcntl.flock`: freed the instant its process dies, even on kill -9) on top of Prefect's `gpu-heavy` tag
slot. Leaving `use` parks the model in host RAM (`.to("cpu")` for torch modules and diffusers pipelines, sleep
for vLLM) so the next switch is a copy, not a disk load — or unloads it when host RAM runs short.

Every load / activate / park / unload is appended to `STUDIO_HOME/residency.jsonl` with time, pid, model and
device, so the single-model invariant can be checked from the record (`read_residency_log`,
`active_intervals`, `studio gpu status`).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.configs.settings import GPU_HEAVY_TAG, get_settings
from studio.resources.runtime.servers import os_lock
from studio.resources.runtime.vram import cuda_available


def _default_activate(handle: Any, device: str) -> Any:
    to = getattr(handle, "to", None)
    return to(device) if callable(to) else handle


def _default_park(handle: Any) -> Any:
    to = getattr(handle, "to", None)
    return to("cpu") if callable(to) else handle


@dataclass
class HeavyModel:
    """How to load, move and drop one heavy model. Backends build one per model."""

    name: str  # registry name + revision, e.g. "sdxl-base@main"
    load: Callable[[str], Any]  # device -> handle (loads from disk/hub cache)
    activate: Callable[[Any, str], Any] = _default_activate  # parked handle -> handle on device
    park: Callable[[Any], Any] = _default_park  # handle on device -> handle in host RAM
    unload: Callable[[Any], None] = lambda handle: None
    est_host_gb: float = 0.0  # RAM the parked copy needs


@dataclass
class _Slot:
    handle: Any
    state: str  # "active" | "parked"
    model: HeavyModel


def detect_device(preference: str = "auto") -> str:
    if preference != "auto":
        return preference
    return "cuda:0" if cuda_available() else "cpu"


def torch_dtype(name: str, device: str, default: str = "float16") -> Any:
    """The torch dtype for models.yaml's `dtype` on `device`: float32 off CUDA (half precision on CPU is slow or
    unsupported), else the named one (`default` for a name torch has no dtype for)."""
    import torch

    if not device.startswith("cuda"):
        return torch.float32
    dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
    return dtypes.get(name, dtypes[default])


def device_tag(device: str | None = None) -> str:
    """The Prefect tag of one GPU — `gpu-heavy:<host>-<device>` (or `gpu-heavy:<STUDIO_GPU__SLOT_ID>`) — whose
    limit is 1: a heavy task waits for *its* device's slot, never holding a slot while another device's lock
    keeps it waiting."""
    s = get_settings()
    ident = s.gpu.slot_id or f"{socket.gethostname()}-{device or detect_device(s.gpu.device)}"
    return f"{GPU_HEAVY_TAG}:{re.sub(r'[^A-Za-z0-9_.-]+', '-', ident)}"


def holders_dir() -> Path:
    return get_settings().run_dir / "holders"


def note_holder(task_run_id: str, model: str) -> None:
    """Record which process holds this task run's gpu-heavy slots (for `studio gpu reset`)."""
    d = holders_dir()
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{task_run_id}.json").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                       "model": model}))


def available_host_ram_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("inf")


class ResidencyManager:
    """Per-process model cache + cross-process GPU lock + the residency record."""

    def __init__(self, device: str | None = None, log_path: Path | None = None, lock_dir: Path | None = None,
                 host_ram_reserve_gb: float | None = None):
        s = get_settings()
        self.device = device or detect_device(s.gpu.device)
        self.log_path = log_path or s.residency_log
        self.lock_dir = lock_dir or s.run_dir
        self.reserve_gb = s.gpu.host_ram_reserve_gb if host_ram_reserve_gb is None else host_ram_reserve_gb
        self._slots: dict[str, _Slot] = {}
        self._mutex = threading.RLock()  # threads of one process take turns too

    # ------------------------------------------------------------------ record
    def record(self, event: str, model: str, **extra: Any) -> None:
        row = {"t": time.time(), "event": event, "model": model, "device": self.device, "pid": os.getpid(),
               "host": socket.gethostname(), **extra}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(row) + "\n").encode()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ lock
    @contextlib.contextmanager
    def gpu_lock(self, timeout_s: float | None = None) -> Iterator[None]:
        """Exclusive OS lock on this device, across processes. Released by the kernel if we die."""
        path = self.lock_dir / f"gpu-{self.device.replace(':', '_')}.lock"

        def timed_out() -> Exception:
            return TimeoutError(f"GPU {self.device} stayed locked for {timeout_s:.0f}s (holder in {path}); "
                                "see `studio gpu status`")

        with os_lock(path, timeout_s, timed_out) as fd:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()} {time.time()}\n".encode())
            yield

    def lock_holder(self) -> str | None:
        path = self.lock_dir / f"gpu-{self.device.replace(':', '_')}.lock"
        if not path.exists():
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return None  # nobody holds it
            except BlockingIOError:
                return path.read_text().strip() or "unknown"
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ use
    @contextlib.contextmanager
    def use(self, model: HeavyModel, lock_timeout_s: float | None = None) -> Iterator[Any]:
        """Make `model` the one active model on the device for the duration of the block."""
        with self._mutex, self.gpu_lock(lock_timeout_s):
            _note_slot_holder(model.name)
            # Park whatever else this process left active (e.g. after an exception mid-park).
            for name, slot in list(self._slots.items()):
                if name != model.name and slot.state == "active":
                    self._park(slot)
            slot = self._slots.get(model.name)
            t0 = time.perf_counter()
            if slot is None:
                handle = model.load(self.device)
                slot = self._slots[model.name] = _Slot(handle, "active", model)
                self.record("load", model.name, seconds=round(time.perf_counter() - t0, 4))
            else:
                slot.handle = model.activate(slot.handle, self.device)
                slot.state = "active"
                self.record("activate", model.name, seconds=round(time.perf_counter() - t0, 4))
            try:
                yield slot.handle
            finally:
                if available_host_ram_gb() - model.est_host_gb < self.reserve_gb:
                    self._unload(model.name)
                else:
                    self._park(slot)

    def _park(self, slot: _Slot) -> None:
        t0 = time.perf_counter()
        slot.handle = slot.model.park(slot.handle)
        slot.state = "parked"
        _empty_device_cache()
        self.record("park", slot.model.name, seconds=round(time.perf_counter() - t0, 4))

    def _unload(self, name: str) -> None:
        slot = self._slots.pop(name, None)
        if slot is None:
            return
        slot.model.unload(slot.handle)
        del slot
        gc.collect()
        _empty_device_cache()
        self.record("unload", name)

    def unload_all(self) -> None:
        with self._mutex:
            for name in list(self._slots):
                self._unload(name)

    def resident(self) -> dict[str, str]:
        return {name: slot.state for name, slot in self._slots.items()}


def _note_slot_holder(model: str) -> None:
    """Record which process holds the gpu-heavy slot for this task run (for `studio gpu reset`)."""
    try:
        from prefect.context import TaskRunContext

        ctx = TaskRunContext.get()
    except ImportError:
        return
    if ctx is not None and ctx.task_run is not None:
        note_holder(str(ctx.task_run.id), model)


def _empty_device_cache() -> None:
    if cuda_available():
        import torch

        torch.cuda.empty_cache()


# ---------------------------------------------------------------------- per-process singleton
_manager: ResidencyManager | None = None
_manager_lock = threading.Lock()


def get_residency() -> ResidencyManager:
    """The process's manager, created on first use (never at import)."""
    global _manager
    with _manager_lock:
        s = get_settings()
        if _manager is None or _manager.log_path != s.residency_log:
            _manager = ResidencyManager()
        return _manager


# ---------------------------------------------------------------------- reading the record
def read_residency_log(path: Path | None = None) -> list[dict]:
    path = path or get_settings().residency_log
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            rows.append(json.loads(line))
    return rows


@dataclass
class ActiveInterval:
    model: str
    pid: int
    device: str
    start: float
    end: float | None = None
    meta: dict = field(default_factory=dict)


def active_intervals(rows: list[dict]) -> list[ActiveInterval]:
    """Intervals during which a model was on its device (load/activate → park/unload), per process."""
    open_: dict[tuple[int, str], ActiveInterval] = {}
    presumed_dead: dict[tuple[int, str], ActiveInterval] = {}
    done: list[ActiveInterval] = []
    for r in sorted(rows, key=lambda r: r["t"]):
        k = (r["pid"], r["model"])
        if r["event"] in ("load", "activate"):
            start = r["t"] - r.get("seconds", 0.0)
            # Another process activating on this device holds its GPU lock, so any interval still open there
            # belongs to a process that died holding it (kill -9 records no park): it ended by then.
            # If that process speaks again (parks later), it was alive after all and its real end is restored,
            # so a true overlap is still reported.
            for other in [o for o in open_ if o[0] != r["pid"] and open_[o].device == r["device"]]:
                iv = open_.pop(other)
                iv.end, iv.meta["ended"] = start, "holder process died"
                presumed_dead[other] = iv
                done.append(iv)
            open_[k] = ActiveInterval(r["model"], r["pid"], r["device"], start)
        elif r["event"] in ("park", "unload") and k in open_:
            iv = open_.pop(k)
            iv.end = r["t"]
            done.append(iv)
        elif r["event"] in ("park", "unload") and k in presumed_dead:
            iv = presumed_dead.pop(k)
            iv.end = r["t"]
            iv.meta.pop("ended", None)
    return done + list(open_.values())


def overlapping_actives(rows: list[dict]) -> list[tuple[ActiveInterval, ActiveInterval]]:
    """Pairs of intervals on the same device that overlap in time: must be empty."""
    ivs = sorted(active_intervals(rows), key=lambda i: i.start)
    bad = []
    for i, a in enumerate(ivs):
        for b in ivs[i + 1:]:
            if b.device != a.device:
                continue
            a_end = a.end if a.end is not None else float("inf")
            if b.start < a_end:
                bad.append((a, b))
    return bad
