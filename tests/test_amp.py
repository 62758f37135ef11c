"""``train.amp``: bfloat16 autocast on CPUs that compute it in hardware, float32 elsewhere; the loss in float32."""

from __future__ import annotations

import os
from types import SimpleNamespace

import torch

from pixelseg.engine import hardware, trainer
from pixelseg.engine.methods import Supervised
from pixelseg.engine.trainer import autocast_dtype, train_one_epoch
from pixelseg.models import create


def test_auto_is_bf16_only_on_cpus_with_hardware_bf16(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(trainer, "cpu_has_fast_bf16", lambda: True)
    assert autocast_dtype("auto", cpu) == torch.bfloat16
    monkeypatch.setattr(trainer, "cpu_has_fast_bf16", lambda: False)
    assert autocast_dtype("auto", cpu) is None
    assert autocast_dtype("bf16", cpu) == torch.bfloat16 and autocast_dtype("off", cpu) is None


def test_the_flag_check_reads_the_cpus_own_flags(monkeypatch, tmp_path):
    flags = tmp_path / "cpuinfo"
    monkeypatch.setattr(hardware, "Path", lambda _: flags)
    flags.write_text("flags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n")
    hardware._cpuinfo.cache_clear()  # read once per process: forget this machine's own flags
    assert trainer.cpu_has_fast_bf16()
    flags.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    hardware._cpuinfo.cache_clear()
    assert trainer.cpu_has_fast_bf16()
    flags.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    hardware._cpuinfo.cache_clear()
    assert not trainer.cpu_has_fast_bf16()  # flags read, none of them: PyTorch's probe is not asked
    flags.write_text("")  # no flags to read (macOS, Windows): PyTorch's own check decides
    hardware._cpuinfo.cache_clear()
    monkeypatch.setattr(hardware, "torch_reports_bf16", lambda: True)
    assert trainer.cpu_has_fast_bf16()
    monkeypatch.undo()
    hardware._cpuinfo.cache_clear()


def test_pytorchs_bf16_probe_exists_in_the_pinned_version():
    """The fallback check asks ``torch.cpu``; if PyTorch renames its probes, this fails instead of silently
    reporting no bf16 on every macOS / Windows CPU."""
    assert all(callable(getattr(torch.cpu, name, None))
               for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    assert isinstance(hardware.torch_reports_bf16(), bool)


def test_a_onednn_cap_below_bf16_counts_as_a_cpu_without_it(monkeypatch, tmp_path):
    """``ONEDNN_MAX_CPU_ISA=AVX2`` on a CPU with AVX512-BF16: oneDNN emulates bf16 there, so ``train.amp: auto`` and
    ``--backend auto`` treat it as a CPU without those instructions; the cap is part of the cached CPU signature."""
    flags = tmp_path / "cpuinfo"
    flags.write_text("model name\t: Test CPU\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    monkeypatch.setattr(hardware, "Path", lambda _: flags)
    hardware._cpuinfo.cache_clear()
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert hardware.cpu_has_fast_bf16() and "capped" not in hardware.cpu_signature()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert not hardware.cpu_has_fast_bf16()
    assert "oneDNN capped at AVX2" in hardware.cpu_signature()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert hardware.cpu_has_fast_bf16()
    monkeypatch.undo()
    hardware._cpuinfo.cache_clear()


def test_bf16_steps_compute_the_loss_in_float32_and_learn():
    torch.manual_seed(0)
    model = create("unet", num_classes=3, encoder="regnetx_002", decoder_channels=[16, 8, 8, 8, 8])
    images = torch.randn(4, 3, 32, 32)
    masks = (images[:, 0] > 0).long() + (images[:, 1] > 1).long()
    seen_dtypes = []

    def loss_fn(logits, target):
        seen_dtypes.append(logits.dtype)
        return torch.nn.functional.cross_entropy(logits, target)

    optimizer = torch.optim.AdamW(model.parameters(), 3e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    run = SimpleNamespace(loss_fn=loss_fn, device=torch.device("cpu"), amp_dtype=torch.bfloat16)
    method = Supervised(run)  # the trainer's default method: the model under autocast, the loss in float32
    losses = [train_one_epoch(model, method, optimizer, scheduler, [(images, masks)] * 5, torch.device("cpu"),
                              epoch, progress=False).mean_loss for epoch in range(3)]
    assert set(seen_dtypes) == {torch.float32}
    assert losses[-1] < 0.8 * losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights and their updates stay float32


def test_grad_clip_bounds_each_steps_update():
    """With plain SGD (lr 1) a step moves the weights by the gradient itself: clipped to norm 0.5, the weights move
    by exactly 0.5 whatever the loss's scale; unclipped, by far more."""
    def moved(grad_clip):
        torch.manual_seed(0)
        model = create("unet", num_classes=2, encoder="regnetx_002", decoder_channels=[8, 8, 8, 8, 8])
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        run = SimpleNamespace(loss_fn=lambda logits, target: 1e4 * torch.nn.functional.cross_entropy(logits, target),
                              device=torch.device("cpu"), amp_dtype=None)
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        images, masks = torch.randn(2, 3, 32, 32), torch.randint(0, 2, (2, 32, 32))
        train_one_epoch(model, Supervised(run), optimizer, scheduler, [(images, masks)], torch.device("cpu"), 1,
                        progress=False, grad_clip=grad_clip)
        return float((torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm())

    assert abs(moved(0.5) - 0.5) < 1e-4
    assert moved(None) > 100


def test_a_capped_instruction_set_gets_its_own_compile_cache(monkeypatch):
    """torch.compile's cache does not key on oneDNN's cap: a capped process writes to a folder of its own, an
    uncapped one (or a user's own TORCHINDUCTOR_CACHE_DIR) is left alone."""
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "TORCHINDUCTOR_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert hardware.separate_compile_cache() is None and "TORCHINDUCTOR_CACHE_DIR" not in os.environ
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    folder = hardware.separate_compile_cache()
    assert folder.endswith("_onednn-avx2_aten-avx2") and os.environ["TORCHINDUCTOR_CACHE_DIR"] == folder
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # what torch writes there once it ran
    assert hardware.separate_compile_cache() == folder
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/somewhere/mine")
    assert hardware.separate_compile_cache() is None and os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/somewhere/mine"
