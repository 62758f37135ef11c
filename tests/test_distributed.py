"""DDP on the CPU (gloo): 2 processes train like one process with the same global batch, and evaluate to
exactly the single-process confusion matrix."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import yaml

from tests.conftest import tiny_config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def ddp_config(shapes_root, tmp_path, amp: str = "off"):
    """A config whose distributed run must equal the single-process one within float tolerance (in float32: with
    ``amp: bf16`` each rank rounds its share of the batch to bfloat16 differently)."""
    config = tiny_config(shapes_root, tmp_path / "unused", epochs=1, steps_per_epoch=2, amp=amp)
    # Cross-entropy only (Dice is a batch-level loss: per-rank Dice averaged is not the global batch's Dice) and
    # no rescaling (padding would give the ranks different numbers of labelled pixels).
    config["loss"] = {"ce": 1.0}
    config["data"]["scale_range"] = [1.0, 1.0]
    config["data"]["val_split"] = None
    config["train"]["threads"] = 1
    # ResNet-10-T (5.4M parameters; the two runs write 199 MB where ResNet-18's wrote 438 MB, and CI's disk is small):
    # its weights end at most 3.5e-5 apart after two steps, inside the tolerance below. With tiny_config's
    # RegNetX-200MF they end up to 3e-4 apart in the first layer (not traced further; rounding through its deeper
    # stack of synced batch norms, whose variance is E[x^2] - E[x]^2, is the likely cause).
    config["model"]["encoder"] = "resnet10t"
    # SGD: updates linear in the gradient. (Adam divides by the gradient's size, so float-rounding noise in
    # near-zero gradients becomes steps of +-lr, and no two summation orders agree.)
    # Float rounding differs (each rank sums its share first); the first layer, whose gradient sums the most
    # terms, shows it most, about 1e-5 after a step.
    config["optimizer"] = {"name": "sgd", "lr": 0.02, "momentum": 0.9}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def assert_same_weights(single_run, distributed_run) -> None:
    one_state = torch.load(single_run / "last.pt", weights_only=False)
    ddp_state = torch.load(distributed_run / "last.pt", weights_only=False)
    assert one_state["model"].keys() == ddp_state["model"].keys()
    compared = 0
    for key, value in one_state["model"].items():
        if value.is_floating_point():
            assert torch.allclose(value, ddp_state["model"][key], atol=1e-4, rtol=1e-3), key
            compared += 1
    assert compared > 10
    assert (distributed_run / "model" / "model.safetensors").is_file()


def test_two_processes_train_like_one_with_the_same_global_batch(shapes_root, tmp_path):
    path = ddp_config(shapes_root, tmp_path)
    single = run([sys.executable, "-m", "pixelseg", "--quiet", "train", str(path), "--out", "single"], tmp_path)
    assert single.returncode == 0, single.stderr
    two = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), "-m", "pixelseg", "--quiet", "train", str(path), "--out", "ddp"], tmp_path)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("epoch 1/1") == 1  # only rank 0 reports
    assert_same_weights(tmp_path / "single", tmp_path / "ddp")


def test_bf16_under_ddp_keeps_the_batch_norm_statistics_of_the_global_batch(shapes_root, tmp_path):
    """bf16 autocast with synced batch norms: the running statistics come out as one process computes them (the
    synced norm takes its statistics in float32 whatever the autocast dtype)."""
    path = ddp_config(shapes_root, tmp_path, amp="bf16")
    single = run([sys.executable, "-m", "pixelseg", "--quiet", "train", str(path), "--out", "single"], tmp_path)
    assert single.returncode == 0, single.stderr
    two = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), "-m", "pixelseg", "--quiet", "train", str(path), "--out", "ddp"], tmp_path)
    assert two.returncode == 0, two.stderr
    one_state = torch.load(tmp_path / "single" / "last.pt", weights_only=True)["model"]
    ddp_state = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)["model"]
    statistics = [key for key in one_state if key.endswith(("running_mean", "running_var"))]
    assert len(statistics) > 10
    for key in statistics:
        assert ddp_state[key].dtype == torch.float32
        assert torch.allclose(one_state[key], ddp_state[key], atol=2e-2, rtol=5e-2), key


def test_two_nodes_meet_through_a_c10d_rendezvous_and_train_like_one(shapes_root, tmp_path):
    """Two torchrun agents (the command a user starts on each node), one process each, that find each other through
    the c10d rendezvous on loopback: the multi-node path, on one machine."""
    path = ddp_config(shapes_root, tmp_path)
    single = run([sys.executable, "-m", "pixelseg", "--quiet", "train", str(path), "--out", "single"], tmp_path)
    assert single.returncode == 0, single.stderr
    endpoint = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                               "--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint, "--rdzv_id", "pixelseg-test",
                               "--rdzv_conf", "timeout=120", "--local_addr", "127.0.0.1", "-m", "pixelseg", "--quiet",
                               "train", str(path), "--out", "nodes"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [node.communicate(timeout=600) for node in nodes]
    for node, (_, stderr) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, stderr
    assert sum(stdout.count("epoch 1/1") for stdout, _ in outputs) == 1  # only the global rank 0 reports
    assert_same_weights(tmp_path / "single", tmp_path / "nodes")


def _evaluate_on_rank(rank: int, world_size: int, port: int, model_dir: str, data_root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    import torch.distributed as dist

    import pixelseg
    from pixelseg.data import open_dataset
    from pixelseg.engine import evaluate

    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        model = pixelseg.load(model_dir)
        result = evaluate(model, open_dataset("folder", data_root, "val"), progress=False)
        if rank == 0:
            np.save(out, result.confusion)
    finally:
        dist.destroy_process_group()


def test_evaluation_on_two_ranks_gives_exactly_the_single_process_confusion(shapes_root, tmp_path):
    import pixelseg
    from pixelseg.data import open_dataset
    from pixelseg.engine import evaluate
    from pixelseg.models import create, save_model

    model = create("unet", num_classes=4, encoder="resnet18", decoder_channels=[16, 8, 8, 8, 8]).eval()
    save_model(model, tmp_path / "model")
    single = evaluate(pixelseg.load(tmp_path / "model"), open_dataset("folder", shapes_root, "val"), progress=False)
    out = tmp_path / "confusion.npy"
    mp.spawn(_evaluate_on_rank, args=(2, free_port(), str(tmp_path / "model"), str(shapes_root), str(out)),
             nprocs=2, join=True)
    assert np.array_equal(np.load(out), single.confusion)
    assert single.confusion.sum() > 10_000  # 4 images of 48x64, less the ignored border pixels


def test_prediction_and_evaluation_commands_on_two_ranks_match_one_process(shapes_root, tmp_path):
    from pixelseg.models import create, save_model

    model = create("unet", num_classes=4, encoder="resnet18", decoder_channels=[16, 8, 8, 8, 8]).eval()
    save_model(model, tmp_path / "model")
    images = str(shapes_root / "images" / "val")
    base = [sys.executable, "-m", "pixelseg", "--quiet"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port"]

    single = run([*base, "predict", images, "--model", "model", "--out", "one"], tmp_path)
    assert single.returncode == 0, single.stderr
    two = run([*torchrun, str(free_port()), "-m", "pixelseg", "--quiet", "predict", images, "--model", "model",
               "--out", "two"], tmp_path)
    assert two.returncode == 0, two.stderr
    one_files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert one_files == sorted(p.name for p in (tmp_path / "two").iterdir()) and len(one_files) == 12
    for name in one_files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name

    evaluated = run([*torchrun, str(free_port()), "-m", "pixelseg", "--quiet", "eval", "model", "--data",
                     str(shapes_root), "--out", "eval2"], tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    alone = run([*base, "eval", "model", "--data", str(shapes_root), "--out", "eval1"], tmp_path)
    import json

    two_ranks = json.loads((tmp_path / "eval2" / "metrics.json").read_text())["confusion_matrix"]
    assert two_ranks == json.loads((tmp_path / "eval1" / "metrics.json").read_text())["confusion_matrix"]
    assert alone.returncode == 0 and evaluated.stdout.count("mIoU") == 1  # rank 0 alone reports


def test_sync_batchnorm_keeps_the_activation_of_timm_fused_norm_layers():
    """timm's RegNet has BatchNormAct2d (norm + ReLU in one module): converting it must keep the ReLU. The plain
    conversion replaced it by a bare norm, so DDP runs silently trained a network without those ReLUs."""
    from pixelseg.engine.distributed import SyncBatchNormAct2d, convert_sync_batchnorm
    from pixelseg.models import create

    torch.manual_seed(0)
    model = create("unet", num_classes=3, encoder="regnetx_002", decoder_channels=[16, 8, 8, 8, 8])
    synced = convert_sync_batchnorm(copy.deepcopy(model))
    fused = sum(type(m).__name__ == "BatchNormAct2d" for m in model.modules())
    assert fused > 10 and sum(isinstance(m, SyncBatchNormAct2d) for m in synced.modules()) == fused
    assert synced.state_dict().keys() == model.state_dict().keys()
    images = torch.randn(2, 3, 64, 64)
    for mode in (False, True):  # outside a process group the synced layers compute what the originals did
        assert torch.allclose(synced.train(mode)(images), model.train(mode)(images), atol=1e-5), mode


def train_two_processes(config: dict, tmp_path) -> dict:
    """``config`` trained by torchrun with 2 processes of 1 thread into ``tmp_path/ddp``; its last checkpoint."""
    from pixelseg.engine.checkpoint import load_checkpoint

    config["train"]["threads"] = 1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    two = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), "-m", "pixelseg", "--quiet", "train", str(path), "--out", "ddp"], tmp_path)
    assert two.returncode == 0, two.stderr
    return load_checkpoint(tmp_path / "ddp" / "last.pt")


def test_mean_teacher_under_ddp_updates_one_teacher_and_ships_it(shapes_root, tmp_path):
    """A training method under torchrun: the EMA teacher follows the synchronised student (one update per global
    step on every rank), the unlabelled stream is split between the ranks, and rank 0 ships the teacher."""
    import shutil

    from safetensors.torch import load_file

    unlabelled = tmp_path / "unlabelled"
    shutil.copytree(shapes_root / "images" / "val", unlabelled)
    config = tiny_config(shapes_root, tmp_path / "unused", epochs=1, steps_per_epoch=2)
    config["data"].update(unlabelled=str(unlabelled), val_split=None)
    config["method"] = {"name": "mean_teacher", "threshold": 0.5, "ema_decay": 0.9}
    state = train_two_processes(config, tmp_path)
    assert state["method"]["steps"] == 2
    teacher, student = state["method"]["teacher"], state["model"]
    assert any(not torch.equal(teacher[k], student[k]) for k in student if student[k].is_floating_point())
    shipped = load_file(tmp_path / "ddp" / "model" / "model.safetensors")
    assert all(torch.equal(shipped[k].float(), teacher[k].float()) for k in shipped)


@pytest.mark.slow
@pytest.mark.parametrize("method", [{"name": "entropy_min", "weight": 0.1},
                                    {"name": "self_training", "portion": 0.5, "round_epochs": 1},
                                    {"name": "scribble_crf", "weight": 0.5},
                                    {"name": "box_refresh", "warmup_epochs": 1, "round_epochs": 1, "threshold": 0.6}],
                         ids=lambda method: method["name"])
def test_every_other_method_trains_under_ddp(method, shapes_root, tmp_path):
    """Each training method but mean_teacher (above) under torchrun with 2 processes, 2 epochs: it finishes, its
    state is saved once with the global step count, and its rounds (self-training, box refresh) ran."""
    import shutil

    from tests.test_cli import pixelseg

    root = shapes_root
    if method["name"] in ("scribble_crf", "box_refresh"):
        kind = "scribbles" if method["name"] == "scribble_crf" else "boxes"
        for split in ("train", "val"):
            made = pixelseg("data", "weak", shapes_root, "--kind", kind, "--split", split, "--out", tmp_path / "weak")
            assert made.returncode == 0, made.stderr
        root = tmp_path / "weak"
    config = tiny_config(root, tmp_path / "unused", epochs=2, steps_per_epoch=2)
    if method["name"] in ("entropy_min", "self_training"):
        shutil.copytree(shapes_root / "images" / "val", tmp_path / "unlabelled")
        config["data"]["unlabelled"] = str(tmp_path / "unlabelled")
    config["method"] = method
    state = train_two_processes(config, tmp_path)
    assert state["epoch"] == 2 and (tmp_path / "ddp" / "model" / "model.safetensors").is_file()
    if method["name"] in ("self_training", "box_refresh"):
        assert state["method"]["round"] >= 1, state["method"]
