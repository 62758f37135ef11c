"""High-dimensional Gaussian filtering on the permutohedral lattice (Adams, Baek & Davis, Eurographics 2010).

Filtering N values with a Gaussian kernel over d-dimensional features (position, or position and colour)
costs O(N d^2) instead of O(N^2): each point is splatted onto the d+1 vertices of its enclosing simplex in
a lattice of spacing one standard deviation, the lattice is blurred along its d+1 axes with a [1/2, 1, 1/2]
kernel, and the result is sliced back with the same barycentric weights. The construction follows the one in
Krähenbühl & Koltun's dense CRF code (the same elevation, rounding, ranking and blur order), written here as
vectorised tensor operations, so it runs on the CPU and on CUDA tensors and is differentiable in the values.

Splatting and slicing are two sparse matrices (lattice points x points, d+1 entries a point) built once with the
lattice, so each filtering is two sparse-dense products (multi-threaded, MKL on the CPU) and 2(d+1) row gathers
for the blur, on values laid out as rows (N, C): one index fetches all C channels of a point.
"""

from __future__ import annotations

import warnings

import torch


class PermutohedralLattice:
    """A lattice built once for ``features`` (N, d), then :meth:`filter` applies the Gaussian to any values.

    ``features`` are already divided by the kernel's standard deviations (``x / sxy``, ``r / srgb``, ...).
    """

    def __init__(self, features: torch.Tensor) -> None:
        if features.ndim != 2:
            raise ValueError(f"features must be (N, d), got shape {tuple(features.shape)}")
        features = features.float()
        device = features.device
        count, d = features.shape
        self.count, self.dim = count, d

        # Elevate onto the hyperplane x . 1 = 0 in d+1 dimensions, scaled so the lattice spacing is one std.
        index = torch.arange(d, device=device, dtype=torch.float32)
        scale = (d + 1) * (2.0 / 3.0) ** 0.5 / torch.sqrt((index + 2) * (index + 1))
        scaled = features * scale  # (N, d)
        prefix = torch.cumsum(scaled, 1)
        total_scaled = prefix[:, -1:]
        elevated = torch.empty(count, d + 1, device=device)
        elevated[:, :1] = total_scaled
        # elevated[:, j] = sum_{k >= j} scaled[:, k] - j * scaled[:, j - 1] for j = 1..d
        positions = torch.arange(1, d + 1, device=device, dtype=torch.float32)
        elevated[:, 1:] = (total_scaled - prefix) - positions * scaled

        # The closest lattice point of remainder 0, then the simplex that holds the point.
        down = torch.floor(elevated / (d + 1)) * (d + 1)
        up = torch.ceil(elevated / (d + 1)) * (d + 1)
        rem0 = torch.where(up - elevated < elevated - down, up, down)
        total = torch.round(rem0.sum(1) / (d + 1)).long()
        differential = elevated - rem0
        # rank[i]: the position of coordinate i when the differentials are sorted in decreasing order (stable).
        order = torch.argsort(differential, dim=1, descending=True, stable=True)
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(d + 1, device=device).expand(count, d + 1))
        total = total.unsqueeze(1)
        too_high = (total > 0) & (rank >= d + 1 - total)
        too_low = (total < 0) & (rank < -total)
        rem0 = rem0 - (d + 1) * too_high + (d + 1) * too_low
        rank = rank + total - (d + 1) * too_high + (d + 1) * too_low

        # Barycentric coordinates of the point in its simplex.
        contribution = (elevated - rem0) / (d + 1)
        barycentric = torch.zeros(count, d + 2, device=device)
        barycentric.scatter_add_(1, d - rank, contribution)
        barycentric.scatter_add_(1, d - rank + 1, -contribution)
        barycentric[:, 0] += 1.0 + barycentric[:, d + 1]
        weights = barycentric[:, : d + 1]  # (N, d+1)

        # The d+1 vertices are rem0 plus the canonical simplex's vertex r permuted by rank: coordinate k gets r, or
        # r - (d+1) where rank[k] > d - r. Keys drop the last coordinate and are packed into one integer.
        base = rem0[:, :d].long()
        self._low = base.amin(0) - 2 * (d + 1)
        extent = base.amax(0) + 2 * (d + 1) - self._low + 1
        if float(extent.double().prod()) > 2**62:
            raise ValueError("features span too wide a range for the lattice hash; scale them down")
        self._strides = torch.ones(d, dtype=torch.long, device=device)
        for axis in range(d - 2, -1, -1):
            self._strides[axis] = self._strides[axis + 1] * extent[axis + 1]
        packed_base = self._pack(base)
        stride_at_rank = torch.zeros(count, d + 2, dtype=torch.long, device=device)
        stride_at_rank.scatter_add_(1, rank[:, :d], self._strides.expand(count, d))
        # wrapped[:, t] = sum of the strides of the coordinates with rank >= t
        wrapped = self._strides.sum() - torch.cumsum(stride_at_rank, 1) + stride_at_rank
        remainder = torch.arange(d + 1, device=device)
        packed = (packed_base.unsqueeze(1) + remainder * self._strides.sum()
                  - (d + 1) * wrapped[:, d + 1 - remainder])  # (N, d+1)
        # One sort gives the distinct lattice points, each point's vertices, and the splat matrix in CSR order.
        flat_keys, order = torch.sort(packed.reshape(-1), stable=True)  # stable: radix sort, twice as fast
        first = torch.ones_like(flat_keys, dtype=torch.bool)
        first[1:] = flat_keys[1:] != flat_keys[:-1]
        vertex_index = torch.cumsum(first, 0) - 1
        self._lattice_keys = flat_keys[first]
        self.size = int(self._lattice_keys.numel())
        offsets = torch.empty_like(vertex_index)
        offsets[order] = vertex_index
        self.offsets = offsets.view(count, d + 1)  # (N, d+1): the lattice point of vertex r of every point
        self.alpha = 1.0 / (1.0 + 2.0 ** (-d))  # the reference code's normalisation of the slice
        self.weights = weights  # (N, d+1): its barycentric weight
        row_starts = torch.zeros(self.size + 1, dtype=torch.long, device=device)
        row_starts[1:] = torch.cumsum(torch.bincount(vertex_index, minlength=self.size), 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            # splat (M x N): row m holds the points that have lattice point m as a vertex, with their weights
            self._splat = torch.sparse_csr_tensor(row_starts, order // (d + 1), weights.reshape(-1)[order],
                                                  (self.size, count), check_invariants=False)
            # slice (N x M): row i holds point i's d+1 vertices with alpha times its barycentric weights
            self._slice = torch.sparse_csr_tensor(
                torch.arange(0, count * (d + 1) + 1, d + 1, device=device), self.offsets.reshape(-1),
                (weights * self.alpha).reshape(-1), (count, self.size), check_invariants=False)

        # Neighbours of every lattice point along each of the d+1 axes (index `size` is an empty vertex).
        lattice = self._unpack(self._lattice_keys)  # (M, d)
        self.neighbours = []
        for axis in range(d + 1):
            step = torch.full((d,), -1, dtype=torch.long, device=device)
            if axis < d:
                step[axis] = d
            self.neighbours.append((self._find(lattice + step), self._find(lattice - step)))

    def scale_points(self, scale: torch.Tensor) -> None:
        """Make :meth:`filter` compute ``scale * filter(scale * values)`` (``scale`` (N,) per point) at no extra
        cost: the factors go into the splat and slice matrices (the dense CRF's symmetric normalisation)."""
        scale = scale.reshape(-1).to(self._slice.values().dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self._splat = torch.sparse_csr_tensor(self._splat.crow_indices(), self._splat.col_indices(),
                                                  self._splat.values() * scale[self._splat.col_indices()],
                                                  self._splat.shape, check_invariants=False)
            self._slice = torch.sparse_csr_tensor(self._slice.crow_indices(), self._slice.col_indices(),
                                                  self._slice.values() * scale.repeat_interleave(self.dim + 1),
                                                  self._slice.shape, check_invariants=False)

    def _pack(self, keys: torch.Tensor) -> torch.Tensor:
        return ((keys - self._low) * self._strides).sum(-1)

    def _unpack(self, packed: torch.Tensor) -> torch.Tensor:
        rest, columns = packed.clone(), []
        for stride in self._strides.tolist():
            columns.append(rest // stride)
            rest = rest % stride
        return torch.stack(columns, 1) + self._low

    def _find(self, keys: torch.Tensor) -> torch.Tensor:
        packed = self._pack(keys)
        position = torch.searchsorted(self._lattice_keys, packed).clamp_(max=self.size - 1)
        found = self._lattice_keys[position] == packed
        return torch.where(found, position, torch.full_like(position, self.size))

    def filter(self, values: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """Gaussian-filtered ``values`` (C, N): sum over all points j of exp(-|f_i - f_j|^2 / 2) v_j, approximately.

        ``reverse`` blurs the axes in the opposite order (the transpose of the operator).
        """
        return self.filter_rows(values.T.contiguous(), reverse).T

    def filter_rows(self, values: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """:meth:`filter` for values laid out as rows, (N, C) in and out (no transposes: the fast layout)."""
        splat = self._splat.to(values.dtype) @ values  # (M, C)
        splat = torch.cat([splat, values.new_zeros(1, values.shape[1])])  # row M: the empty vertex
        order = range(self.dim, -1, -1) if reverse else range(self.dim + 1)
        for axis in order:
            forward, backward = self.neighbours[axis]
            neighbours = splat.index_select(0, forward) + splat.index_select(0, backward)
            splat = torch.cat([splat[:-1] + 0.5 * neighbours, splat[-1:]])
        return self._slice.to(values.dtype) @ splat[:-1]
