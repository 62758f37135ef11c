"""``pixelseg benchmark``: parameters, GFLOPs, CPU latency and peak memory of architectures, side by side.

Each architecture is measured in a fresh process, so one model's memory does not hide behind another's.
GFLOPs come from PyTorch's own counter (``torch.utils.flop_counter``: one multiply-add counts as 2 FLOPs);
latency is the median of repeated forward passes under ``torch.inference_mode``; peak memory is the growth of
the process's maximum resident set from before the first forward pass to after the timed ones (weights and
input excluded), measured before the FLOP counter runs.
"""

from __future__ import annotations

import inspect
import multiprocessing
import resource
import statistics
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from pixelseg.models import create, list_models
from pixelseg.models.registry import get_factory


@dataclass
class BenchmarkRow:
    name: str
    parameters: int
    gflops: float
    latency_ms: float
    peak_memory_mb: float


def timed_call(function, *arguments, **keywords) -> tuple[float, object]:
    """``(seconds, result)`` of one call of ``function``, timed by ``torch.utils.benchmark`` (which waits for CUDA
    work too): the one timing helper of pixelseg's benchmarks and scripts. The call runs on the threads PyTorch has
    now (``torch.utils.benchmark.Timer`` alone would run it on one)."""
    import logging

    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime is found" on import
    from torch.utils import benchmark as torch_benchmark

    box: dict = {}

    def call() -> None:
        box["result"] = function(*arguments, **keywords)

    seconds = torch_benchmark.Timer("call()", globals={"call": call},
                                    num_threads=torch.get_num_threads()).timeit(1).median
    return seconds, box.get("result")


def _accepts(name: str, keyword: str) -> bool:
    factory = get_factory(name)
    target = factory.__init__ if inspect.isclass(factory) else factory
    parameters = inspect.signature(target).parameters
    return keyword in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def measure(name: str, height: int, width: int, num_classes: int = 11, repeats: int = 10, warmup: int = 2,
            threads: int | None = None, backend: str | None = None, precision: str = "fp32",
            **kwargs) -> BenchmarkRow:
    """Measure one architecture in this process, as built (``backend=None``) or on an inference backend
    (:func:`pixelseg.engine.backends.with_backend`; GFLOPs are always counted on the model as built)."""
    if threads:
        torch.set_num_threads(threads)
    built = create(name, num_classes=num_classes, **kwargs).eval()
    parameters = sum(p.numel() for p in built.parameters())
    model = built
    if backend:
        from pixelseg.engine.backends import with_backend

        model = with_backend(built, backend, precision)
    images = torch.randn(1, 3, height, width)
    with torch.inference_mode():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # weights and input already allocated
        for _ in range(warmup):
            model(images)
        times = [timed_call(model, images)[0] for _ in range(repeats)]
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Counted with autograd on: FlopCounterMode's module tracker hooks the gradient of every module input that
    # requires one, and a model that hands a parameter to a sub-module (MaskFormer's queries) fails without it.
    counter = FlopCounterMode(display=False)
    with counter:
        built(images)
    return BenchmarkRow(name, parameters, counter.get_total_flops() / 1e9,
                        1000 * statistics.median(times), (after - before) / 1024)


def _measure_in_child(arguments: tuple) -> dict:
    name, height, width, num_classes, repeats, threads, backend, precision, kwargs = arguments
    return asdict(measure(name, height, width, num_classes, repeats, threads=threads, backend=backend,
                          precision=precision, **kwargs))


def benchmark(names: list[str] | None, height: int, width: int, num_classes: int = 11, repeats: int = 10,
              encoder: str | None = None, threads: int | None = None, options: dict | None = None,
              backend: str | None = None, precision: str = "fp32") -> list[BenchmarkRow]:
    """Measure each architecture in its own process; ``encoder`` applies to those that take one, ``options``
    (for example ``{"decoder_channels": [128, 64, 32, 16, 16]}``) to every one; ``backend`` and ``precision``
    as in ``pixelseg predict``."""
    names = names or list(list_models())
    for name in names:
        get_factory(name)  # unknown names fail here, before any measurement
    rows = []
    context = multiprocessing.get_context("spawn")
    for name in names:
        kwargs = {"encoder": encoder} if encoder and _accepts(name, "encoder") else {}
        kwargs.update(options or {})
        with context.Pool(1) as pool:
            result = pool.apply(_measure_in_child, ((name, height, width, num_classes, repeats, threads, backend,
                                                      precision, kwargs),))
        rows.append(BenchmarkRow(**result))
    return rows


def format_rows(rows: list[BenchmarkRow], height: int, width: int) -> str:
    lines = [f"{'model':<15} {'params (M)':>10} {f'GFLOPs@{height}x{width}':>16} {'latency (ms)':>13} "
             f"{'peak mem (MB)':>14}"]
    for row in rows:
        lines.append(f"{row.name:<15} {row.parameters / 1e6:>10.2f} {row.gflops:>16.1f} {row.latency_ms:>13.1f} "
                     f"{row.peak_memory_mb:>14.0f}")
    return "\n".join(lines)
