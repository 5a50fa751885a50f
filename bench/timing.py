"""Timing for the benchmarks: median wall seconds over repeats, and the median CPU seconds (this process plus
its finished children), which are steadier than wall time on a shared machine."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from typing import Any


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def median_time(fn: Callable[[], Any], repeats: int, cpu: dict | None = None, name: str = "") -> tuple[float, Any]:
    """Median wall seconds of `repeats` calls and the last result; the median CPU seconds go to `cpu[name]`."""
    times, cpus, out = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), cpu_seconds()
        out = fn()
        times.append(time.perf_counter() - t)
        cpus.append(cpu_seconds() - c)
    if cpu is not None:
        cpu[name] = statistics.median(cpus)
    return statistics.median(times), out
