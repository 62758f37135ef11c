"""The permutohedral lattice's construction as compiled CPU loops (numba), for :class:`PermutohedralLattice`.

The vectorised tensor construction in :mod:`pixelseg.crf.permutohedral` sorts the N (d+1) vertex keys to find the
distinct lattice points: on a 360x480 image with the dense CRF's 5-d appearance features that is a sort of a
million keys, which costs more than the five mean-field iterations. Here the same steps run point by point, as in
Krähenbühl & Koltun's reference code: elevation, rounding, ranking, barycentric weights and the vertices' packed keys
per point (parallel over points), then one serial pass that inserts each key into an open-addressing hash table (the
table stays as small as the lattice, which is in cache), then the neighbour lookups of the blur and a counting sort
into the splat matrix (both parallel). Same lattice points, same weights; the
lattice points are numbered in order of first appearance instead of sorted key order.

Filtering is compiled too: the splat as a CSR matrix parallel over lattice points, the blur along the d+1 axes,
the slice parallel over points; and :func:`mean_field_potts` runs the dense CRF's whole Potts mean field in these
loops (each kernel's slice adds its weighted message straight into the logits). Used on CPU tensors (numba is a
dependency of pixelseg); the tensor construction and PyTorch filtering stay for CUDA tensors, for values that need
a gradient (CRF-as-RNN training), and as the fallback.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; the tensor construction is the fallback
    numba = None

AVAILABLE = numba is not None


def use_threads(count: int) -> None:
    """Run the compiled loops on ``count`` threads (pixelseg follows ``torch.get_num_threads()``), at most the
    number numba started with."""
    numba.set_num_threads(max(1, min(count, numba.config.NUMBA_NUM_THREADS)))


def build(features: np.ndarray) -> tuple[np.ndarray, ...]:
    """Lattice of ``features`` (N, d) float32, already divided by the kernel's standard deviations.

    Returns ``offsets`` (N, d+1) int64, the lattice point of every vertex of every point; ``weights`` (N, d+1)
    float32, their barycentric weights; ``neighbours`` (d+1, 2, M) int64, the lattice points one step forward and
    back along each axis (M where there is none); the splat matrix (M x N) in CSR form: ``row_starts`` (M+1,),
    ``points`` (N (d+1),) int64 and their ``entry_weights`` float32.
    """
    features = np.ascontiguousarray(features, dtype=np.float32)
    count, d = features.shape
    rem0, rank, weights = _simplices(features)
    smallest, largest = _bounds(rem0, d)  # NumPy's min over the columns of (N, d+1) is 7x slower
    low = smallest - 2 * (d + 1)
    extent = largest + 2 * (d + 1) - low + 1
    if float(np.prod(extent.astype(np.float64))) > 2.0**62:
        raise ValueError("features span too wide a range for the lattice hash; scale them down")
    strides = np.ones(d, dtype=np.int64)
    for axis in range(d - 2, -1, -1):
        strides[axis] = strides[axis + 1] * extent[axis + 1]
    offsets, keys, table_keys, table_values = _insert(_vertex_keys(rem0, rank, low, strides))
    deltas = np.empty(d + 1, dtype=np.int64)  # packed-key change of one step along each axis
    for axis in range(d + 1):
        step = np.full(d, -1, dtype=np.int64)
        if axis < d:
            step[axis] = d
        deltas[axis] = int((step * strides).sum())
    row_starts, points, entry_weights = _group(offsets, weights, keys.shape[0], numba.get_num_threads())
    return offsets, weights, _neighbours(keys, deltas, table_keys, table_values), row_starts, points, entry_weights


if AVAILABLE:

    @numba.njit(parallel=True, cache=True)
    def _simplices(features):  # pragma: no cover - compiled
        """Per point: the remainder-0 lattice point of its simplex, the ranks and the barycentric weights (the
        reference code's elevation and rounding). Rows of the outputs are the scratch space, indexed in place: no
        allocation and no array views in the loop (a view's reference count is an atomic shared by the threads)."""
        count, d = features.shape
        rem0 = np.empty((count, d + 1), dtype=np.int32)
        rank = np.empty((count, d + 1), dtype=np.int32)
        elevated = np.empty((count, d + 1), dtype=np.float32)
        barycentric = np.zeros((count, d + 2), dtype=np.float32)
        scale = np.empty(d, dtype=np.float32)
        for i in range(d):
            scale[i] = (d + 1) * np.sqrt(2.0 / 3.0) / np.sqrt((i + 1.0) * (i + 2.0))
        for point in numba.prange(count):
            total = np.float32(0.0)
            for i in range(d, 0, -1):
                scaled = features[point, i - 1] * scale[i - 1]
                elevated[point, i] = total - i * scaled
                total += scaled
            elevated[point, 0] = total
            remainder_sum = 0
            for i in range(d + 1):
                value = elevated[point, i] / (d + 1)
                up = np.ceil(value) * (d + 1)
                down = np.floor(value) * (d + 1)
                rem0[point, i] = int(up) if up - elevated[point, i] < elevated[point, i] - down else int(down)
                remainder_sum += rem0[point, i]
            remainder_sum //= d + 1
            # rank of coordinate i by decreasing differential, ties to the lower index (the reference's pairwise
            # comparisons), counted without branches: one store per coordinate
            for i in range(d + 1):
                difference = elevated[point, i] - rem0[point, i]
                above = 0
                for j in range(d + 1):
                    other = elevated[point, j] - rem0[point, j]
                    above += (other > difference) if j > i else (other >= difference) if j < i else False
                rank[point, i] = above
            for i in range(d + 1):
                if remainder_sum > 0 and rank[point, i] >= d + 1 - remainder_sum:
                    rem0[point, i] -= d + 1
                    rank[point, i] += remainder_sum - (d + 1)
                elif remainder_sum < 0 and rank[point, i] < -remainder_sum:
                    rem0[point, i] += d + 1
                    rank[point, i] += d + 1 + remainder_sum
                else:
                    rank[point, i] += remainder_sum
            for i in range(d + 1):
                value = (elevated[point, i] - rem0[point, i]) / (d + 1)
                barycentric[point, d - rank[point, i]] += value
                barycentric[point, d - rank[point, i] + 1] -= value
            barycentric[point, 0] += 1.0 + barycentric[point, d + 1]
        return rem0, rank, barycentric[:, : d + 1].copy()

    @numba.njit(cache=True)
    def _bounds(rem0, d):  # pragma: no cover - compiled
        smallest = np.full(d, np.iinfo(np.int64).max, dtype=np.int64)
        largest = np.full(d, np.iinfo(np.int64).min, dtype=np.int64)
        for point in range(rem0.shape[0]):
            for i in range(d):
                smallest[i] = min(smallest[i], rem0[point, i])
                largest[i] = max(largest[i], rem0[point, i])
        return smallest, largest

    @numba.njit(cache=True)
    def _slot(key, mask):  # pragma: no cover - compiled
        return ((key * 0x9E3779B97F4A7C15) >> 17) & mask  # Fibonacci hashing, wraps around in int64

    @numba.njit(parallel=True, cache=True)
    def _vertex_keys(rem0, rank, low, strides):  # pragma: no cover - compiled
        """The packed key of every vertex of every point's simplex (N, d+1), parallel over points."""
        count, width = rem0.shape
        d = width - 1
        total_stride = strides.sum()
        keys = np.empty((count, width), dtype=np.int64)
        for point in numba.prange(count):
            base = 0
            for i in range(d):
                base += (rem0[point, i] - low[i]) * strides[i]
            for remainder in range(width):
                key = base + remainder * total_stride
                for i in range(d):  # coordinates ranked above d - remainder wrap around by -(d+1)
                    if rank[point, i] > d - remainder:
                        key -= width * strides[i]
                keys[point, remainder] = key
        return keys

    @numba.njit(cache=True)
    def _insert(vertex_keys):  # pragma: no cover - compiled
        """Number the distinct keys of ``vertex_keys`` (N, d+1) in order of first appearance: returns each vertex's
        lattice point (N, d+1), the distinct keys, and the open-addressing hash table (keys, values) that maps
        them (one pass, serial; the table's load stays under one half)."""
        count, width = vertex_keys.shape
        capacity = 1 << 12
        table_keys = np.full(capacity, -1, dtype=np.int64)
        table_values = np.empty(capacity, dtype=np.int64)
        keys = np.empty(1 << 12, dtype=np.int64)
        size = 0
        offsets = np.empty((count, width), dtype=np.int64)
        last_keys = np.full(width, -1, dtype=np.int64)  # neighbouring pixels mostly share their simplex
        last_values = np.zeros(width, dtype=np.int64)
        for point in range(count):
            for remainder in range(width):
                key = vertex_keys[point, remainder]
                if key == last_keys[remainder]:
                    offsets[point, remainder] = last_values[remainder]
                    continue
                last_keys[remainder] = key
                mask = capacity - 1
                slot = _slot(key, mask)
                while table_keys[slot] != -1 and table_keys[slot] != key:
                    slot = (slot + 1) & mask
                if table_keys[slot] == -1:
                    table_keys[slot] = key
                    table_values[slot] = size
                    if size == keys.shape[0]:
                        grown = np.empty(2 * size, dtype=np.int64)
                        grown[:size] = keys
                        keys = grown
                    keys[size] = key
                    size += 1
                    if 2 * size > capacity:  # keep the load under one half: rehash into twice the slots
                        capacity *= 2
                        table_keys = np.full(capacity, -1, dtype=np.int64)
                        table_values = np.empty(capacity, dtype=np.int64)
                        for index in range(size):
                            slot = _slot(keys[index], capacity - 1)
                            while table_keys[slot] != -1:
                                slot = (slot + 1) & (capacity - 1)
                            table_keys[slot] = keys[index]
                            table_values[slot] = index
                        offsets[point, remainder] = last_values[remainder] = size - 1
                        continue
                offsets[point, remainder] = last_values[remainder] = table_values[slot]
        keys = keys[:size].copy()
        return offsets, keys, table_keys, table_values

    @numba.njit(parallel=True, cache=True)
    def _neighbours(keys, deltas, table_keys, table_values):  # pragma: no cover - compiled
        """Each lattice point's neighbours along the d+1 axes, looked up in the hash table :func:`_insert` built."""
        size = keys.shape[0]
        mask = table_keys.shape[0] - 1
        axes = deltas.shape[0]
        neighbours = np.empty((axes, 2, size), dtype=np.int64)
        for index in numba.prange(size):
            for axis in range(axes):
                for side in range(2):
                    key = keys[index] + deltas[axis] if side == 0 else keys[index] - deltas[axis]
                    slot = _slot(key, mask)
                    found = size
                    while table_keys[slot] != -1:
                        if table_keys[slot] == key:
                            found = table_values[slot]
                            break
                        slot = (slot + 1) & mask
                    neighbours[axis, side, index] = found
        return neighbours

    @numba.njit(parallel=True, cache=True)
    def _group(offsets, weights, size, chunks):  # pragma: no cover - compiled
        """The splat matrix in CSR form: a counting sort of the (point, vertex) entries by lattice point, stable
        (a lattice point's entries stay in point order); returns row starts, points and weights. Parallel over
        ``chunks`` runs of points: each counts its entries per row, and writes them after those of the runs
        before it, so the order is that of a serial pass."""
        count, vertices = offsets.shape
        per_chunk = -(-count // chunks)
        counts = np.zeros((chunks, size), dtype=np.int64)
        for chunk in numba.prange(chunks):
            for point in range(chunk * per_chunk, min(count, (chunk + 1) * per_chunk)):
                for vertex in range(vertices):
                    counts[chunk, offsets[point, vertex]] += 1
        row_starts = np.empty(size + 1, dtype=np.int64)
        running = 0
        for row in range(size):  # counts become each chunk's first position in the row
            row_starts[row] = running
            for chunk in range(chunks):
                entries = counts[chunk, row]
                counts[chunk, row] = running
                running += entries
        row_starts[size] = running
        points = np.empty(count * vertices, dtype=np.int64)
        entry_weights = np.empty(count * vertices, dtype=np.float32)
        for chunk in numba.prange(chunks):
            for point in range(chunk * per_chunk, min(count, (chunk + 1) * per_chunk)):
                for vertex in range(vertices):
                    row = offsets[point, vertex]
                    position = counts[chunk, row]
                    points[position] = point
                    entry_weights[position] = weights[point, vertex]
                    counts[chunk, row] = position + 1
        return row_starts, points, entry_weights

    @numba.njit(parallel=True, cache=True)
    def scale_weights(splat_points, splat_weights, slice_weights, scale):  # pragma: no cover - compiled
        """In place: splat entries times their point's ``scale``, slice rows times theirs."""
        for entry in numba.prange(splat_points.shape[0]):
            splat_weights[entry] *= scale[splat_points[entry]]
        for point in numba.prange(slice_weights.shape[0]):
            for vertex in range(slice_weights.shape[1]):
                slice_weights[point, vertex] *= scale[point]

    @numba.njit(parallel=True, cache=True)
    def splat_blur(values, splat_starts, splat_points, splat_weights, neighbours, reverse, out):  # pragma: no cover
        """Splat ``values`` (N, C) float32 onto the lattice and blur it along its d+1 axes, into ``out`` (M+1, C):
        row M is the empty vertex, kept at zero. Parallel over lattice points."""
        channels = values.shape[1]
        size = splat_starts.shape[0] - 1
        axes = neighbours.shape[0]
        lattice = out
        for row in numba.prange(size + 1):
            for channel in range(channels):
                lattice[row, channel] = 0.0
            if row < size:
                for entry in range(splat_starts[row], splat_starts[row + 1]):
                    point, weight = splat_points[entry], splat_weights[entry]
                    for channel in range(channels):
                        lattice[row, channel] += weight * values[point, channel]
        blurred = np.zeros_like(lattice)
        for step in range(axes):
            axis = axes - 1 - step if reverse else step
            forward, backward = neighbours[axis, 0], neighbours[axis, 1]
            for row in numba.prange(size):
                ahead, behind = forward[row], backward[row]
                for channel in range(channels):
                    blurred[row, channel] = lattice[row, channel] + 0.5 * (lattice[ahead, channel]
                                                                           + lattice[behind, channel])
            lattice, blurred = blurred, lattice
        if axes % 2 == 1:  # the last blur wrote into the scratch array
            for row in numba.prange(size):
                for channel in range(channels):
                    out[row, channel] = lattice[row, channel]

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def slice_into(offsets, slice_weights, factor, lattice, out, shift):  # pragma: no cover - compiled
        """``out[i] += factor * sum_v slice_weights[i, v] * lattice[offsets[i, v]]`` for every point i (parallel
        over points); with ``shift``, each row's largest value is then subtracted (the start of a softmax)."""
        count, channels = out.shape
        vertices = offsets.shape[1]
        for point in numba.prange(count):
            for vertex in range(vertices):
                row, weight = offsets[point, vertex], factor * slice_weights[point, vertex]
                for channel in range(channels):
                    out[point, channel] += weight * lattice[row, channel]
            if shift:
                _shift_row(out, point)

    @numba.njit(inline="always")
    def _shift_row(values, point):  # pragma: no cover - compiled
        largest = values[point, 0]
        for channel in range(1, values.shape[1]):
            largest = max(largest, values[point, channel])
        for channel in range(values.shape[1]):
            values[point, channel] -= largest

    @numba.njit(parallel=True, cache=True)
    def shift_rows(values):  # pragma: no cover - compiled
        """Subtract each row's largest value, in place (NumPy's max over a short last axis is 10x slower)."""
        for point in numba.prange(values.shape[0]):
            _shift_row(values, point)

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def normalise_rows(values):  # pragma: no cover - compiled
        count, channels = values.shape
        for point in numba.prange(count):
            total = np.float32(0.0)
            for channel in range(channels):
                total += values[point, channel]
            scale = np.float32(1.0) / total
            for channel in range(channels):
                values[point, channel] *= scale


def filter_rows(values: np.ndarray, splat_starts, splat_points, splat_weights, neighbours, offsets, slice_weights,
                reverse: bool, out: np.ndarray) -> None:
    """Splat, blur and slice of ``values`` (N, C) float32 (the operator of ``PermutohedralLattice.filter_rows``),
    written into ``out`` (N, C)."""
    lattice = np.empty((splat_starts.shape[0], values.shape[1]), dtype=np.float32)
    splat_blur(values, splat_starts, splat_points, splat_weights, neighbours, reverse, lattice)
    out[:] = 0.0
    slice_into(offsets, slice_weights, np.float32(1.0), lattice, out, False)


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Softmax over the classes of each row of (N, C) float32, in place."""
    shift_rows(logits)
    softmax_tail(logits)
    return logits


def mean_field_potts(negative_unary: np.ndarray, lattices: list[tuple], weights: list[float],
                     iterations: int) -> np.ndarray:
    """Parallel mean-field updates with Potts compatibilities, all in compiled loops: ``negative_unary`` (N, C)
    float32, ``lattices`` the :meth:`PermutohedralLattice.compiled_arrays` of each kernel, ``weights`` its Potts
    weight. Returns Q (N, C). Q <- softmax(-unary + sum_k w_k k_k * Q): each kernel's slice adds its weighted
    message straight into the logits (no filtered copy of Q); no PyTorch operation runs between the loops, whose
    threads would compete with them. Rows are padded to a multiple of 4 classes (whole SIMD registers: 11 classes
    filter 20 % slower than 12) with logits of -1e30, whose probabilities are 0."""
    count, classes = negative_unary.shape
    padded = np.full((count, -(-classes // 4) * 4), -1e30, dtype=np.float32)
    padded[:, :classes] = negative_unary
    lattice_rows = [np.empty((arrays[0].shape[0], padded.shape[1]), dtype=np.float32) for arrays in lattices]
    q = softmax_rows(padded.copy())
    for _ in range(iterations):
        for arrays, rows in zip(lattices, lattice_rows, strict=True):
            splat_blur(q, *arrays[:4], False, rows)
        q[:] = padded
        for kernel, (arrays, rows) in enumerate(zip(lattices, lattice_rows, strict=True)):
            slice_into(arrays[4], arrays[5], np.float32(weights[kernel]), rows, q, kernel == len(lattices) - 1)
        softmax_tail(q)
    return np.ascontiguousarray(q[:, :classes])


def softmax_tail(shifted: np.ndarray) -> None:
    """exp and normalisation of rows whose largest value is already subtracted, in place. The exponential is
    NumPy's (SIMD: about 4x numba's scalar exp on 172,800 x 11)."""
    np.exp(shifted, out=shifted)
    normalise_rows(shifted)
