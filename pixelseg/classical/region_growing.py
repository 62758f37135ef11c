"""Seeded region growing (Adams & Bischof, "Seeded Region Growing", PAMI 1994).

Regions start at seed pixels and grow one pixel at a time: of all pixels bordering a region, the one whose grey
level (or colour) is closest to its region's mean joins next. With ``tolerance``, pixels further than that from
every neighbouring region's mean stay unlabelled (-1) instead.
"""

from __future__ import annotations

import heapq

import numpy as np

from pixelseg.classical.threshold import grey


def grid_seeds(shape: tuple[int, int], count: int = 16) -> list[tuple[int, int]]:
    """About ``count`` seeds (row, column) on a regular grid."""
    height, width = shape
    per_side = max(1, round(count**0.5))
    rows = np.linspace(0, height - 1, per_side + 2)[1:-1].round().astype(int)
    columns = np.linspace(0, width - 1, per_side + 2)[1:-1].round().astype(int)
    return [(int(r), int(c)) for r in rows for c in columns]


def region_growing(image: np.ndarray, seeds: list[tuple[int, int]] | None = None, tolerance: float | None = None,
                   colour: bool = False) -> np.ndarray:
    """(H, W) labels: region k grows from ``seeds[k]`` (row, column); default seeds: a 4x4 grid."""
    values = np.asarray(image, dtype=np.float64)
    values = values[..., :3] if colour and values.ndim == 3 else grey(values)[..., None]
    height, width = values.shape[:2]
    seeds = seeds or grid_seeds((height, width))
    labels = np.full((height, width), -1, np.int64)
    totals = np.zeros((len(seeds), values.shape[2]))
    counts = np.zeros(len(seeds))
    heap: list[tuple[float, int, int, int, int]] = []
    order = 0
    for index, (row, column) in enumerate(seeds):
        if not (0 <= row < height and 0 <= column < width):
            raise ValueError(f"seed {(row, column)} lies outside the {height}x{width} image")
        labels[row, column] = index
        totals[index] += values[row, column]
        counts[index] += 1

    def push_neighbours(row: int, column: int, region: int) -> None:
        nonlocal order
        mean = totals[region] / counts[region]
        for r, c in ((row - 1, column), (row + 1, column), (row, column - 1), (row, column + 1)):
            if 0 <= r < height and 0 <= c < width and labels[r, c] < 0:
                distance = float(np.abs(values[r, c] - mean).max())
                order += 1
                heapq.heappush(heap, (distance, order, r, c, region))

    for index, (row, column) in enumerate(seeds):
        push_neighbours(row, column, index)
    while heap:
        distance, _, row, column, region = heapq.heappop(heap)
        if labels[row, column] >= 0:
            continue
        if tolerance is not None and distance > tolerance:
            continue
        labels[row, column] = region
        totals[region] += values[row, column]
        counts[region] += 1
        push_neighbours(row, column, region)
    return labels
