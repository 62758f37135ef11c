"""Folder / glob / file prediction: an index PNG, a colour PNG and an overlay per image, never over the inputs."""

from __future__ import annotations

import functools
import glob
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixelseg.engine import distributed
from pixelseg.errors import DataError
from pixelseg.inference import Prediction, input_channels, predict_image
from pixelseg.io import IMAGE_EXTENSIONS, label_image, list_images, read_image, write_image
from pixelseg.models.base import SegmentationModel
from pixelseg.utils import progress_bar


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Files, folders (their images) and glob patterns, in the order given, without duplicates."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found += list_images(path)
        elif path.is_file():
            found.append(path)
        elif any(ch in str(item) for ch in "*?["):
            found += sorted(p for p in map(Path, glob.glob(str(item), recursive=True))
                            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            raise DataError(f"{path}: no such file, folder or matching glob")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise DataError(f"no images found in {', '.join(map(str, inputs))}")
    return unique


@dataclass
class PredictSummary:
    written: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def plan_outputs(inputs: list[str | Path], out_dir: str | Path, kinds: tuple[str, ...]) -> dict[Path, dict[str, Path]]:
    """Each input image with its output files ``out_dir/<stem>_<kind>.png``; refused before anything is written
    when an output would overwrite an input or two inputs share a stem."""
    out_dir = Path(out_dir).expanduser().resolve()
    images = expand_inputs(inputs)
    planned = {image: {kind: out_dir / f"{image.stem}_{kind}.png" for kind in kinds} for image in images}
    inputs_set = set(images)
    stems: dict[str, Path] = {}
    for image, outputs in planned.items():
        clash = [p for p in outputs.values() if p in inputs_set]
        if clash:
            raise DataError(f"{clash[0]}: output would overwrite an input image; choose another --out folder")
        if image.stem in stems:
            raise DataError(f"{image} and {stems[image.stem]} share the file stem {image.stem!r}; their outputs "
                            "would collide, write them into different --out folders")
        stems[image.stem] = image
    return planned


def _write_outputs(outputs: dict[str, Path], prediction: Prediction, image: np.ndarray, alpha: float) -> list[Path]:
    write_image(outputs["labels"], label_image(prediction.labels))
    write_image(outputs["color"], prediction.colorize())
    write_image(outputs["overlay"], prediction.overlay(image, alpha))
    return list(outputs.values())


def predict_files(predictor: SegmentationModel | Callable[[np.ndarray], Prediction], inputs: list[str | Path],
                  out_dir: str | Path, alpha: float = 0.5, progress: bool = True, prefetch: int = 2) -> PredictSummary:
    """Predict every input image with a model (default options) or ``predictor``, any function from an RGB array
    to a :class:`Prediction` (a model with options, a classical method); a file that cannot be read is reported
    and skipped.

    Decoding and writing run in background threads, overlapping the forward pass: up to ``prefetch`` images are
    read ahead and up to ``prefetch`` images' outputs are being encoded and written behind it (``prefetch=0``:
    one thing after the other).
    """
    read = read_image
    if isinstance(predictor, SegmentationModel):
        read = functools.partial(read_image, channels=input_channels(predictor))
        predictor = functools.partial(predict_image, predictor, probabilities=False)
    planned = plan_outputs(inputs, out_dir, ("labels", "color", "overlay"))
    summary = PredictSummary()
    context = distributed.current()  # under torchrun each rank predicts every world_size-th image
    mine = list(planned)[context.rank::context.world_size]
    with ThreadPoolExecutor(max_workers=2 if prefetch else 1, thread_name_prefix="pixelseg-io") as pool:
        reads = deque(pool.submit(read, path) for path in mine[:prefetch])
        writes: deque[Future] = deque()
        for position, image_path in enumerate(progress_bar(mine, progress and context.is_main, desc="predicting")):
            if position + prefetch < len(mine):
                reads.append(pool.submit(read, mine[position + prefetch]))
            try:
                image = reads.popleft().result() if prefetch else read(image_path)
            except DataError as error:
                summary.failed.append(str(error))
                continue
            try:
                prediction = predictor(image)
            except RuntimeError as error:  # out of memory for this image: report it, go on with the others
                if "memory" not in str(error).lower():
                    raise
                summary.failed.append(f"{image_path}: not enough memory to predict {image.shape[1]}x{image.shape[0]} "
                                      f"pixels; use a smaller --tile or --scale")
                continue
            if not prefetch:
                summary.written += _write_outputs(planned[image_path], prediction, image, alpha)
                continue
            writes.append(pool.submit(_write_outputs, planned[image_path], prediction, image, alpha))
            while len(writes) > prefetch:
                summary.written += writes.popleft().result()
        while writes:
            summary.written += writes.popleft().result()
    return summary
