"""What this CPU can do fast, read once: the bfloat16 instructions that training and inference choose by."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch


@functools.cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:  # no /proc (macOS, Windows)
        return ""


def cpu_flags() -> set[str]:
    return set(_cpuinfo().split())


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 matrix products in hardware (AMX tiles or AVX512-BF16): there, bf16
    training steps are 2-3x faster than float32; elsewhere bf16 is emulated and slower."""
    flags = cpu_flags()
    if "amx_bf16" in flags or "avx512_bf16" in flags:
        return True
    probe = getattr(torch._C, "_cpu", None)  # no /proc (macOS, Windows): PyTorch's own check
    return bool(probe and (getattr(probe, "_is_amx_tile_supported", lambda: False)()
                           or getattr(probe, "_is_avx512_bf16_supported", lambda: False)()))


def cpu_signature() -> str:
    """The CPU as an inference-speed choice depends on it: model name, core count and the vector extensions."""
    flags = cpu_flags()
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    vector = sorted(f for f in flags if f.startswith(("avx", "amx")))
    return f"{model} | {torch.get_num_threads()} threads | {' '.join(vector)} | torch {torch.__version__}"

