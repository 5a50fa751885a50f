"""The GPU as this process sees it: the one CUDA check, and a VRAM report through NVML (package
nvidia-ml-py). Everything works without NVIDIA or without torch: no CUDA, empty report."""

from __future__ import annotations


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def vram_report() -> list[dict]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            name = pynvml.nvmlDeviceGetName(h)
            gpus.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                         "used_gb": mem.used / 2**30, "total_gb": mem.total / 2**30})
        return gpus
    finally:
        pynvml.nvmlShutdown()
