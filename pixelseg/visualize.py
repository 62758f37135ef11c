"""The plots written with runs and evaluations: training curve, confusion matrix, per-class IoU, examples.

Matplotlib's object API (a ``Figure`` per plot, saved by its Agg canvas): no pyplot state and no process-wide
``matplotlib.use``, so importing pixelseg changes nothing in a user's own plotting. The colour mapping of label
maps is numpy only, in :mod:`pixelseg.colours`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from pixelseg.colours import colorize, overlay  # noqa: F401 - also importable from here, as before
from pixelseg.data.classes import ClassInfo
from pixelseg.io import atomic_path, rgb_view


def _figure(**options) -> Figure:
    figure = Figure(**options)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path) -> None:
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=path.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")


def plot_training_curve(history: Sequence[dict], path: str | Path) -> None:
    """Training loss per epoch and validation mIoU, side by side (the loss alone for a run without validation)."""
    validated = [row for row in history if row.get("val_miou") is not None]
    figure = _figure(figsize=(10, 3.8) if validated else (5.5, 3.8))
    axes = figure.subplots(1, 2 if validated else 1, squeeze=False)[0]
    epochs = [row["epoch"] for row in history]
    axes[0].plot(epochs, [row["train_loss"] for row in history], marker="o", ms=3)
    axes[0].set(xlabel="epoch", ylabel="training loss", title="Training loss")
    if validated:
        axes[1].plot([r["epoch"] for r in validated], [100 * r["val_miou"] for r in validated], marker="o", ms=3,
                     color="tab:green")
        axes[1].set(xlabel="epoch", ylabel="val mIoU (%)", title="Validation mIoU")
    for axis in axes:
        axis.grid(alpha=0.3)
    _save(figure, path)


def plot_confusion(matrix: np.ndarray, names: Sequence[str], path: str | Path) -> None:
    """Row-normalised confusion matrix (rows = true class), with the percentages written in."""
    matrix = np.asarray(matrix, dtype=np.float64)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    size = max(4.0, 0.55 * len(names) + 2)
    figure = _figure(figsize=(size + 1, size))
    axis = figure.subplots()
    shown = axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    axis.set(xlabel="predicted", ylabel="true", title="Confusion (row-normalised)")
    if len(names) <= 25:
        for i in range(len(names)):
            for j in range(len(names)):
                if normalised[i, j] >= 0.005:
                    axis.text(j, i, f"{100 * normalised[i, j]:.0f}", ha="center", va="center", fontsize=7,
                              color="white" if normalised[i, j] > 0.5 else "black")
    figure.colorbar(shown, ax=axis, fraction=0.046)
    _save(figure, path)


def plot_class_iou(iou: Sequence[float], names: Sequence[str], path: str | Path, palette=None) -> None:
    """Horizontal bars of per-class IoU, with the mean drawn as a line."""
    values = np.nan_to_num(np.asarray(iou, dtype=np.float64) * 100, nan=0.0)
    figure = _figure(figsize=(7, max(2.5, 0.32 * len(names) + 1)))
    axis = figure.subplots()
    colours = [tuple(c / 255 for c in colour) for colour in palette] if palette else None
    axis.barh(range(len(names)), values, color=colours, edgecolor="black", linewidth=0.5)
    axis.set_yticks(range(len(names)), names)
    axis.invert_yaxis()
    mean = np.nanmean(np.asarray(iou, dtype=np.float64)) * 100
    axis.axvline(mean, color="black", linestyle="--", linewidth=1)
    axis.set(xlabel="IoU (%)", xlim=(0, 100), title=f"Per-class IoU (mIoU {mean:.1f} %)")
    for index, value in enumerate(values):
        axis.text(min(value + 1, 92), index, f"{value:.1f}", va="center", fontsize=8)
    _save(figure, path)


def plot_examples(examples: Sequence[tuple], classes: ClassInfo, path: str | Path) -> None:
    """Rows of (image, ground truth, prediction[, caption]) with a colour legend of the classes; a caption (the
    image's name and score, say) is written above its row's image."""
    rows = len(examples)
    figure = _figure(figsize=(11, 2.9 * rows + 0.6))
    axes = figure.subplots(rows, 3, squeeze=False)
    for row, (image, truth, predicted, *caption) in enumerate(examples):
        for column, (picture, title) in enumerate(((rgb_view(image), "image"),
                                                   (colorize(truth, classes), "ground truth"),
                                                   (colorize(predicted, classes), "prediction"))):
            axes[row, column].imshow(picture)
            axes[row, column].set_axis_off()
            if caption and column == 0:
                axes[row, column].set_title(caption[0] if row else f"{title} ({caption[0]})", fontsize=9)
            elif row == 0:
                axes[row, column].set_title(title)
    shown = sorted({int(v) for example in examples for v in np.unique(np.concatenate(
        [np.ravel(example[1]), np.ravel(example[2])])) if 0 <= v < classes.num_classes})  # classes in the pictures
    handles = [Rectangle((0, 0), 1, 1, color=tuple(c / 255 for c in classes.palette[i])) for i in shown]
    columns = min(6, max(len(shown), 1))
    figure.legend(handles, [classes.names[i] for i in shown], loc="lower center", ncol=columns, fontsize=8,
                  frameon=False)
    legend_inches = 0.3 + 0.2 * -(-len(shown) // columns)
    figure.tight_layout(rect=(0, min(0.5, legend_inches / figure.get_figheight()), 1, 1))
    _save(figure, path)


def plot_panels(rows: Sequence[Sequence[tuple[np.ndarray, str]]], path: str | Path, panel_size: float = 3.0) -> None:
    """A grid of RGB pictures, each with its title: one list of (picture, title) per row."""
    columns = max(len(row) for row in rows)
    figure = _figure(figsize=(panel_size * columns, 1.2 * panel_size * len(rows)))
    axes = figure.subplots(len(rows), columns, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(columns):
            axes[r, c].set_axis_off()
            if c < len(row):
                axes[r, c].imshow(row[c][0])
                axes[r, c].set_title(row[c][1], fontsize=9)
    figure.tight_layout()
    _save(figure, path)
