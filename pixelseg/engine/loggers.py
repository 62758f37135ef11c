"""Experiment logging during training (``train.logger``): per optimizer step the loss, the learning rate, the time
spent waiting for data and the time of the step (kept apart, as torchvision's reference ``MetricLogger`` does),
and per epoch the row of ``log.csv`` (training loss, validation mIoU and pixel accuracy, seconds).

``none`` writes nothing beyond ``log.csv``; ``tensorboard`` writes event files into ``RUN/tensorboard/``
(``tensorboard --logdir runs``), needing ``pip install tensorboard`` (the ``tensorboard`` extra).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pixelseg.errors import ConfigError, DataError
from pixelseg.io import write_text


class NullLogger:
    """``train.logger: none``."""

    def step(self, step: int, values: dict[str, float]) -> None:
        pass

    def epoch(self, epoch: int, row: dict) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardLogger(NullLogger):
    """``train.logger: tensorboard``: scalars ``train/loss``, ``train/lr``, ``time/data``, ``time/step`` per step
    and ``epoch/<column>`` per epoch."""

    def __init__(self, out_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("train.logger: tensorboard needs the tensorboard package "
                              "(pip install tensorboard, or pixelseg[tensorboard])") from None
        self.writer = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"))

    def step(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def epoch(self, epoch: int, row: dict) -> None:
        for name, value in row.items():
            if name != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(f"epoch/{name}", value, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


LOGGERS = {"none": lambda out_dir: NullLogger(), "tensorboard": TensorBoardLogger}
"""The logger registry: ``train.logger`` takes any name here (a factory of the run folder)."""


def build_logger(name: str, out_dir: Path, is_main: bool) -> NullLogger:
    return LOGGERS[name](out_dir) if is_main else NullLogger()


def write_log(path: Path, history: list[dict]) -> None:
    """``log.csv``: one row per epoch of ``history``, the union of the rows' keys as columns."""
    buffer = io.StringIO()
    columns = list(dict.fromkeys(key for row in history for key in row))
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buffer.getvalue())


def read_log(run_dir: Path) -> dict:
    """A run folder's ``log.csv`` summed up: ``rows`` (the epochs' rows, as strings), ``epochs`` and ``minutes``
    (the sum of the epochs' ``seconds``: time a stopped or paused run spent stopped is in it)."""
    path = Path(run_dir) / "log.csv"
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        minutes = sum(float(row["seconds"]) for row in rows) / 60
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{path}: not a training log ({error})") from None
    return {"rows": rows, "epochs": len(rows), "minutes": minutes}
