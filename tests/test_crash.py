"""A run killed with SIGKILL, or stopped with Ctrl-C, leaves a usable last checkpoint, and --resume reaches the
uninterrupted run's weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from pixelseg.engine.checkpoint import load_checkpoint
from pixelseg.errors import CheckpointError
from tests.conftest import tiny_config


@pytest.mark.parametrize("checkpoint_every", [None, 1])
def test_sigkill_mid_run_then_resume_gives_the_same_final_weights(shapes_root, tmp_path, checkpoint_every):
    """Killed as soon as the first checkpoint exists: after epoch 1 (mid-epoch 2, or while writing), or, with
    ``checkpoint_every: 1``, after the first optimizer step (mid-epoch 1, resumed from inside the epoch)."""
    config = tiny_config(shapes_root, tmp_path / "unused", epochs=4)
    config["train"]["threads"] = 1
    config["train"]["checkpoint_every"] = checkpoint_every
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def command(out: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "pixelseg", "--quiet", "train", str(path), "--out", str(tmp_path / out), *extra]

    straight = subprocess.run(command("straight"), capture_output=True, text=True, env=env, timeout=600)
    assert straight.returncode == 0, straight.stderr

    # Kill without warning as soon as the first checkpoint exists: mid-epoch 2, or while writing a checkpoint.
    victim = subprocess.Popen(command("killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    last = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    assert victim.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    state = load_checkpoint(last)  # readable: never a half-written file under the final name
    assert state["epoch"] < 4 and (state["epoch"] >= 1 or state["partial_epoch"])
    resumed = subprocess.run(command("killed", "--resume"), capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr

    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(last)
    assert a["epoch"] == b["epoch"] == 4
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    assert not list(last.parent.glob(".*.tmp*"))  # a temporary file the kill interrupted is cleared on resume


def test_ctrl_c_mid_epoch_saves_and_resume_gives_the_same_final_weights(shapes_root, tmp_path):
    """Ctrl-C as a terminal sends it (to the whole process group, loader workers included)."""
    # Batches of 2: 8 steps an epoch, so that a Ctrl-C sent after the first step of epoch 2 lands inside that epoch
    # even when a loaded machine lets the run take several steps before the signal arrives.
    config = tiny_config(shapes_root, tmp_path / "unused", epochs=3, batch_size=2)
    config["train"]["threads"] = 1
    config["data"]["workers"] = 1
    config["train"]["checkpoint_every"] = 1  # last.pt after every step: the test can see where the run is
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def command(out: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "pixelseg", "--quiet", "train", str(path), "--out", str(tmp_path / out), *extra]

    straight = subprocess.run(command("straight"), capture_output=True, text=True, env=env, timeout=600)
    assert straight.returncode == 0, straight.stderr

    victim = subprocess.Popen(command("stopped"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              start_new_session=True)
    last = tmp_path / "stopped" / "last.pt"
    deadline = time.time() + 300

    def epoch_two_under_way() -> bool:
        try:
            state = load_checkpoint(last)
        except CheckpointError:  # not written yet
            return False
        # At least one step of epoch 2 saved (a fast step can be overwritten by the next before this reads it).
        return state["epoch"] == 1 and (state["partial_epoch"] or {}).get("steps", 0) >= 1

    while not epoch_two_under_way() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.01)
    if victim.poll() is not None:  # ended before it could be stopped: show why rather than a failed kill
        out, err = victim.communicate()
        pytest.fail(f"the run to be stopped ended by itself (exit {victim.returncode}): {err[-2000:]}")
    os.killpg(victim.pid, signal.SIGINT)
    out, err = victim.communicate(timeout=120)
    assert victim.returncode == 130, err
    assert "stopped" in out and "--resume" in out and "Traceback" not in err
    state = load_checkpoint(last)
    assert state["epoch"] == 1 and 2 <= state["partial_epoch"]["steps"] < 8, state["partial_epoch"]  # mid-epoch 2
    resumed = subprocess.run(command("stopped", "--resume"), capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr

    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(last)
    assert a["epoch"] == b["epoch"] == 3
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
