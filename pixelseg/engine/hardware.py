"""What this CPU can do fast, read once: the bfloat16 instructions that training and inference choose by."""

from __future__ import annotations

import functools
import os
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


# oneDNN's instruction-set caps (``ONEDNN_MAX_CPU_ISA``) under which its bfloat16 convolutions are emulated: a
# user or container that caps oneDNN below AVX512_CORE_BF16 gets float32 speed rules, as on a CPU without them.
ISA_CAPS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


def isa_cap() -> str | None:
    """oneDNN's instruction-set cap from the environment (``ONEDNN_MAX_CPU_ISA``, or its older ``DNNL_`` name)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return cap.strip().upper() if cap and cap.strip() else None


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 matrix products in hardware (AMX tiles or AVX512-BF16): there, bf16
    training steps are 2-3x faster than float32; elsewhere bf16 is emulated and slower (also where oneDNN is capped
    below those instructions by ``ONEDNN_MAX_CPU_ISA``: a U-Net/ResNet-34 at 512x512 took 2.3 s in bf16 against
    0.4 s in float32 on an AMD EPYC capped at AVX2)."""
    if isa_cap() in ISA_CAPS_WITHOUT_BF16:
        return False
    flags = cpu_flags()
    if "amx_bf16" in flags or "avx512_bf16" in flags:
        return True
    return not flags and torch_reports_bf16()  # no /proc (macOS, Windows): PyTorch's own check


def torch_reports_bf16() -> bool:
    """PyTorch's own check of the CPU for AMX tiles or AVX512-BF16 (``torch.cpu``; False where it has none)."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(probe is not None and probe() for probe in probes)


def cpu_signature() -> str:
    """The CPU as an inference-speed choice depends on it: model name, core count and the vector extensions."""
    flags = cpu_flags()
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    vector = sorted(f for f in flags if f.startswith(("avx", "amx")))
    cap = f" | oneDNN capped at {isa_cap()}" if isa_cap() else ""
    return f"{model} | {torch.get_num_threads()} threads | {' '.join(vector)}{cap} | torch {torch.__version__}"

