"""The experiment scripts build the training command each row names (a fake ``pixelseg`` records it): a row that
trains the wrong thing would otherwise show only as a wrong figure in the docs, an hour later."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def unseen_row_command(row: str, tmp_path: Path) -> tuple[int, list[str], str]:
    """scripts/unseen_camvid.sh ROW with a ``pixelseg`` that records its arguments and fails, so the row stops
    before training: (exit code, the recorded arguments, stderr)."""
    record = tmp_path / "arguments"
    fake = tmp_path / "bin" / "pixelseg"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {shlex.quote(str(record))}\nexit 1\n')
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "unseen_camvid.sh"), row], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "BIN": str(fake.parent)}, timeout=60)
    arguments = record.read_text().splitlines() if record.exists() else []
    return done.returncode, arguments, done.stderr


def settings(arguments: list[str]) -> list[str]:
    return [arguments[i + 1] for i, a in enumerate(arguments) if a == "--set"]


@pytest.mark.parametrize(("row", "expected"), [
    ("recipe", []),
    ("seed1", ["train.seed=1"]),
    ("fp32_seed1", ["train.amp=off", "train.seed=1"]),
    ("deeplabv3plus_seed1", ["model.name=deeplabv3plus", "train.seed=1"]),
    ("enet_seed1", ["model={name: enet}", "train.seed=1"]),
    ("fcdensenet56", ["model={name: fcdensenet56}"]),
    ("refinenet", ["model.name=refinenet", "train.grad_clip=1.0"]),
    ("label_smoothing_seed1", ["loss.ce_label_smoothing=0.1", "train.seed=1"]),
    ("da_mean_teacher", ["data.unlabelled=runs/unseen_short/target_0006R0", "method.name=mean_teacher"]),
    ("sup_sixteenth", ["data.train_split=train_sixteenth", "train.epochs=160", "train.val_every=160"]),
])
def test_each_unseen_row_trains_what_it_names(row, expected, tmp_path):
    code, arguments, _ = unseen_row_command(row, tmp_path)
    assert code != 0 and arguments[:3] == ["--quiet", "train", "configs/camvid_unseen_short.yaml"]
    assert settings(arguments) == [f"train.out_dir=runs/unseen_short/{row}", *expected]
    assert "--resume" not in arguments or (ROOT / "runs" / "unseen_short" / row / "last.pt").exists()


def test_an_unknown_row_is_refused_by_name(tmp_path):
    code, arguments, stderr = unseen_row_command("deeplabv9", tmp_path)
    assert code == 2 and arguments == [] and "unknown row deeplabv9" in stderr
