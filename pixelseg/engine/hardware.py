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


def separate_compile_cache() -> str | None:
    """Under an instruction-set cap (``ONEDNN_MAX_CPU_ISA``, ``ATEN_CPU_CAPABILITY``), give ``torch.compile`` a cache
    folder of its own (``TORCHINDUCTOR_CACHE_DIR``, unless the user set it) and return it. Inductor's cache keeps
    oneDNN-prepacked frozen weights whose layout follows the cap, and its key does not include the cap: on an AMD
    EPYC, a U-Net compiled under ``ONEDNN_MAX_CPU_ISA=AVX2`` and then loaded from the cache without it aborted the
    process ("double free or corruption")."""
    caps = [f"onednn-{isa_cap()}" if isa_cap() else "",
            f"aten-{os.environ['ATEN_CPU_CAPABILITY'].strip()}" if os.environ.get("ATEN_CPU_CAPABILITY", "").strip()
            else ""]
    tag = "_".join(cap.lower() for cap in caps if cap)
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    default = default_cache_dir()  # torch writes it into the environment once it has used it
    if not tag or os.environ.get("TORCHINDUCTOR_CACHE_DIR", default) != default:
        return None
    folder = f"{default}_{tag}"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    return folder
