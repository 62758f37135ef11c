"""Split-and-merge (Horowitz & Pavlidis, "Picture Segmentation by a Tree Traversal Algorithm", JACM 1976).

Split: a square region is cut into four quadrants, recursively, until it is homogeneous (the variance of its grey
levels, or the mean variance of its colour channels, at most ``max_variance``) or reaches ``min_size``. Merge:
adjacent regions are joined, most similar means first, while the union is still homogeneous.
"""

from __future__ import annotations

import heapq

import numpy as np

from pixelseg.classical.threshold import grey


class _Stats:
    """Pixel count, sum and sum of squares per channel: the variance of any union in O(channels)."""

    __slots__ = ("count", "total", "squares")

    def __init__(self, count: int, total: np.ndarray, squares: np.ndarray) -> None:
        self.count, self.total, self.squares = count, total, squares

    def merged(self, other: _Stats) -> _Stats:
        return _Stats(self.count + other.count, self.total + other.total, self.squares + other.squares)

    def variance(self) -> float:
        mean = self.total / self.count
        return float(np.mean(self.squares / self.count - mean**2))

    def mean(self) -> np.ndarray:
        return self.total / self.count


def split_and_merge(image: np.ndarray, max_variance: float = 250.0, min_size: int = 8,
                    colour: bool = False) -> np.ndarray:
    """(H, W) region labels 0..R-1. ``colour`` tests the RGB channels' variances instead of the grey level's."""
    values = np.asarray(image, dtype=np.float64)
    values = values[..., :3] if colour and values.ndim == 3 else grey(values)[..., None]
    height, width = values.shape[:2]
    integral = np.zeros((height + 1, width + 1, values.shape[2]))
    integral[1:, 1:] = values.cumsum(0).cumsum(1)
    integral_sq = np.zeros_like(integral)
    integral_sq[1:, 1:] = (values**2).cumsum(0).cumsum(1)

    def stats(top: int, left: int, bottom: int, right: int) -> _Stats:
        def box(table):
            return table[bottom, right] - table[top, right] - table[bottom, left] + table[top, left]
        return _Stats((bottom - top) * (right - left), box(integral), box(integral_sq))

    # Split: a quadtree over the image's bounding square, clipped to the image.
    labels = np.empty((height, width), np.int64)
    regions: list[_Stats] = []
    stack = [(0, 0, height, width)]
    while stack:
        top, left, bottom, right = stack.pop()
        region = stats(top, left, bottom, right)
        if region.variance() > max_variance and (bottom - top > min_size or right - left > min_size):
            middle_y, middle_x = (top + bottom + 1) // 2, (left + right + 1) // 2
            for quadrant in ((top, left, middle_y, middle_x), (top, middle_x, middle_y, right),
                             (middle_y, left, bottom, middle_x), (middle_y, middle_x, bottom, right)):
                if quadrant[2] > quadrant[0] and quadrant[3] > quadrant[1]:
                    stack.append(quadrant)
            continue
        labels[top:bottom, left:right] = len(regions)
        regions.append(region)

    # Merge: adjacent pairs in order of mean difference, while the union stays homogeneous (union-find).
    parent = list(range(len(regions)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    pairs = set()
    for first, second in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        different = first != second
        pairs.update((min(x, y), max(x, y)) for x, y in zip(first[different].tolist(), second[different].tolist(),
                                                            strict=True))

    def difference(a: int, b: int) -> float:
        return float(np.abs(regions[a].mean() - regions[b].mean()).sum())

    heap = [(difference(a, b), a, b) for a, b in pairs]
    heapq.heapify(heap)
    while heap:
        _, a, b = heapq.heappop(heap)
        ra, rb = root(a), root(b)
        if ra == rb:
            continue
        if (ra, rb) != (a, b):  # an end has grown since this pair was queued: queue the current regions
            heapq.heappush(heap, (difference(ra, rb), ra, rb))
            continue
        union = regions[ra].merged(regions[rb])
        if union.variance() <= max_variance:
            parent[rb] = ra
            regions[ra] = union
    roots = np.array([root(i) for i in range(len(regions))])
    _, relabelled = np.unique(roots[labels], return_inverse=True)
    return relabelled.reshape(height, width)
