"""``pixelseg data check``: read every file of a dataset and list each problem by file."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pixelseg.data.classes import IGNORE_INDEX
from pixelseg.data.dataset import Problem, SegmentationDataset
from pixelseg.errors import DataError
from pixelseg.utils import progress_bar


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found: counts, sizes, class pixel counts and problems."""

    dataset: SegmentationDataset
    num_samples: int = 0
    image_sizes: Counter = field(default_factory=Counter)
    class_pixels: np.ndarray | None = None
    ignored_pixels: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def class_frequencies(self) -> np.ndarray:
        total = self.class_pixels.sum()
        return self.class_pixels / total if total else np.zeros_like(self.class_pixels, dtype=np.float64)

    def format(self, max_problems: int = 50) -> str:
        data = self.dataset
        lines = [f"dataset: {data.name} at {data.root} (split {data.split})",
                 f"samples: {self.num_samples} pairs, {len(self.problems)} problem(s)"]
        sizes = ", ".join(f"{w}x{h} ({n})" for (w, h), n in self.image_sizes.most_common(5))
        lines.append(f"image sizes (width x height): {sizes or '-'}"
                     + (f" and {len(self.image_sizes) - 5} more" if len(self.image_sizes) > 5 else ""))
        if self.class_pixels is not None and self.class_pixels.sum():
            total = self.class_pixels.sum() + self.ignored_pixels
            lines.append(f"{'class':<20} {'pixels':>14} {'share':>8}")
            for name, count in zip(data.classes.names, self.class_pixels, strict=True):
                lines.append(f"{name[:20]:<20} {int(count):>14,} {count / total:>8.2%}")
            lines.append(f"{'(ignored)':<20} {self.ignored_pixels:>14,} {self.ignored_pixels / total:>8.2%}")
        if self.problems:
            lines.append("problems:")
            lines += [f"  {p}" for p in self.problems[:max_problems]]
            if len(self.problems) > max_problems:
                lines.append(f"  ... and {len(self.problems) - max_problems} more")
        else:
            lines.append("no problems found")
        return "\n".join(lines)


def check_dataset(dataset: SegmentationDataset, progress: bool = True) -> DatasetReport:
    """Read every image and mask; collect sizes, class pixel counts and every problem, file by file."""
    report = DatasetReport(dataset, problems=list(dataset.problems))
    report.class_pixels = np.zeros(dataset.classes.num_classes, dtype=np.int64)
    if len(dataset) == 0:
        report.problems.append(Problem(dataset.root, f"empty dataset: split {dataset.split!r} has no image/mask pairs"))
        return report
    for index in progress_bar(range(len(dataset)), progress, desc=f"checking {dataset.name}"):
        sample = dataset.samples[index]
        try:
            image = dataset.read_image(index)
        except DataError as error:
            report.problems.append(Problem(sample.image or sample.mask, _strip_path(error, sample.image)))
            continue
        try:
            raw = dataset.decoder.read_raw(sample.mask)
        except DataError as error:
            report.problems.append(Problem(sample.mask, _strip_path(error, sample.mask)))
            continue
        report.image_sizes[(image.shape[1], image.shape[0])] += 1
        if raw.shape[:2] != image.shape[:2]:
            report.problems.append(Problem(sample.mask, f"size mismatch: mask {raw.shape[1]}x{raw.shape[0]}, "
                                                        f"image {image.shape[1]}x{image.shape[0]}"))
            continue
        bad = dataset.decoder.invalid_values(raw)
        if bad:
            shown = ", ".join(str(v) for v in bad[:8]) + (" ..." if len(bad) > 8 else "")
            what = "colours not in the palette" if raw.ndim == 3 else "label values outside the classes"
            report.problems.append(Problem(sample.mask, f"{what}: {shown}"))
            continue
        labels = dataset.decoder.map_raw(raw, sample.mask)
        counts = np.bincount(labels.ravel(), minlength=256)
        report.class_pixels += counts[: dataset.classes.num_classes]
        report.ignored_pixels += int(counts[IGNORE_INDEX])
        report.num_samples += 1
    return report


def _strip_path(error: DataError, path) -> str:
    message = str(error)
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def require_clean(dataset: SegmentationDataset, progress: bool = True) -> DatasetReport:
    """Check ``dataset`` and raise :class:`DataError` listing the problems, as training does before it starts."""
    report = check_dataset(dataset, progress=progress)
    if not report.ok:
        listed = "\n".join(f"  {p}" for p in report.problems[:20])
        more = f"\n  ... and {len(report.problems) - 20} more" if len(report.problems) > 20 else ""
        raise DataError(f"dataset {dataset.name} at {dataset.root} (split {dataset.split}) has "
                        f"{len(report.problems)} problem(s); run `pixelseg data check` for the full report:\n"
                        f"{listed}{more}")
    return report
