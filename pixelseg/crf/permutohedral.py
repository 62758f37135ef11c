"""High-dimensional Gaussian filtering on the permutohedral lattice (Adams, Baek & Davis, Eurographics 2010).

Filtering N values with a Gaussian kernel over d-dimensional features (position, or position and colour)
costs O(N d^2) instead of O(N^2): each point is splatted onto the d+1 vertices of its enclosing simplex in
a lattice of spacing one standard deviation, the lattice is blurred along its d+1 axes with a [1/2, 1, 1/2]
kernel, and the result is sliced back with the same barycentric weights. The construction follows the one in
Krähenbühl & Koltun's dense CRF code (the same elevation, rounding, ranking and blur order), written here twice:
as vectorised tensor operations (CPU and CUDA tensors, differentiable in the values) and as compiled CPU loops
(:mod:`pixelseg.crf.lattice_cpu`, numba: the default on CPU tensors, 2x the reference C++ code in the dense CRF).

On the tensor path, splatting and slicing are two sparse matrices (lattice points x points, d+1 entries a point),
so each filtering is two sparse-dense products (multi-threaded, MKL on the CPU) and 2(d+1) row gathers for the
blur, on values laid out as rows (N, C): one index fetches all C channels of a point.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from pixelseg.crf import lattice_cpu


def match_torch_threads() -> None:
    """Run the compiled loops on as many threads as PyTorch has. Launching numba's OpenMP pool (the first time)
    resets PyTorch's thread count, as both use the same OpenMP runtime: it is put back."""
    threads = torch.get_num_threads()
    lattice_cpu.use_threads(threads)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class PermutohedralLattice:
    """A lattice built once for ``features`` (N, d), then :meth:`filter` applies the Gaussian to any values.

    ``features`` are already divided by the kernel's standard deviations (``x / sxy``, ``r / srgb``, ...).
    The lattice is kept as ``offsets`` and ``weights`` (N, d+1), each point's vertices and barycentric weights;
    ``neighbours``, each lattice point's neighbours along the d+1 axes; and the splat matrix (lattice points x
    points) in CSR form. Both constructions give the same lattice; the slice is the splat's transpose times alpha.
    """

    def __init__(self, features: torch.Tensor, compiled: bool | None = None) -> None:
        """``compiled``: build with the compiled CPU loops of :mod:`pixelseg.crf.lattice_cpu` (default: for CPU
        tensors when numba is installed) or with tensor operations (any device); both give the same lattice."""
        if features.ndim != 2:
            raise ValueError(f"features must be (N, d), got shape {tuple(features.shape)}")
        features = features.float()
        self.count, self.dim = features.shape
        if compiled is None:
            compiled = features.device.type == "cpu" and lattice_cpu.AVAILABLE
        self._compiled_neighbours = None
        # splat (M x N) in CSR form, _splat_starts, _splat_points, _splat_weights: row m holds the points that
        # have lattice point m as a vertex, with their weights
        if compiled:
            self._build_compiled(features)
        else:
            row_starts, order = self._build_tensors(features)
            self._splat_starts, self._splat_points = row_starts, order // (self.dim + 1)
            self._splat_weights = self.weights.reshape(-1)[order]
        self.alpha = 1.0 / (1.0 + 2.0 ** (-self.dim))  # the reference code's normalisation of the slice
        self._slice_weights = self.weights * self.alpha  # (N, d+1): the slice's entries, point by point
        self._matrices = None  # the torch sparse matrices, made when the tensor path first filters

    def _build_compiled(self, features: torch.Tensor) -> None:
        match_torch_threads()
        offsets, weights, neighbours, *splat = lattice_cpu.build(features.detach().numpy())
        self.offsets, self.weights = torch.from_numpy(offsets), torch.from_numpy(weights)
        self._splat_starts, self._splat_points, self._splat_weights = (torch.from_numpy(array) for array in splat)
        self.size = int(splat[0].shape[0] - 1)
        self.neighbours = [(torch.from_numpy(pair[0]), torch.from_numpy(pair[1])) for pair in neighbours]
        self._compiled_neighbours = neighbours  # (d+1, 2, M) for lattice_cpu.filter_rows

    def _build_tensors(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sets offsets, weights, size and neighbours; returns the splat matrix's row starts and entry order."""
        count, d = features.shape
        elevated, rem0, rank = _simplices(features)
        # Barycentric coordinates of the point in its simplex.
        contribution = (elevated - rem0) / (d + 1)
        barycentric = torch.zeros(count, d + 2, device=features.device)
        barycentric.scatter_add_(1, d - rank, contribution)
        barycentric.scatter_add_(1, d - rank + 1, -contribution)
        barycentric[:, 0] += 1.0 + barycentric[:, d + 1]
        self.weights = barycentric[:, : d + 1]  # (N, d+1): each vertex's barycentric weight
        # One sort gives the distinct lattice points, each point's vertices, and the splat matrix in CSR order.
        flat_keys, order = torch.sort(self._vertex_keys(rem0, rank).reshape(-1), stable=True)  # stable: radix sort
        first = torch.ones_like(flat_keys, dtype=torch.bool)
        first[1:] = flat_keys[1:] != flat_keys[:-1]
        vertex_index = torch.cumsum(first, 0) - 1
        self._lattice_keys = flat_keys[first]
        self.size = int(self._lattice_keys.numel())
        offsets = torch.empty_like(vertex_index)
        offsets[order] = vertex_index
        self.offsets = offsets.view(count, d + 1)  # (N, d+1): the lattice point of vertex r of every point
        row_starts = torch.zeros(self.size + 1, dtype=torch.long, device=features.device)
        row_starts[1:] = torch.cumsum(torch.bincount(vertex_index, minlength=self.size), 0)
        # Neighbours of every lattice point along each of the d+1 axes (index `size` is an empty vertex).
        lattice = self._unpack(self._lattice_keys)  # (M, d)
        self.neighbours = []
        for axis in range(d + 1):
            step = torch.full((d,), -1, dtype=torch.long, device=features.device)
            if axis < d:
                step[axis] = d
            self.neighbours.append((self._find(lattice + step), self._find(lattice - step)))
        return row_starts, order

    def _vertex_keys(self, rem0: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
        """(N, d+1) packed keys of each point's vertices: rem0 plus the canonical simplex's vertex r permuted by
        rank (coordinate k gets r, or r - (d+1) where rank[k] > d - r), the last coordinate dropped."""
        count, d = rem0.shape[0], self.dim
        base = rem0[:, :d].long()
        self._low = base.amin(0) - 2 * (d + 1)
        extent = base.amax(0) + 2 * (d + 1) - self._low + 1
        if float(extent.double().prod()) > 2**62:
            raise ValueError("features span too wide a range for the lattice hash; scale them down")
        self._strides = torch.ones(d, dtype=torch.long, device=rem0.device)
        for axis in range(d - 2, -1, -1):
            self._strides[axis] = self._strides[axis + 1] * extent[axis + 1]
        stride_at_rank = torch.zeros(count, d + 2, dtype=torch.long, device=rem0.device)
        stride_at_rank.scatter_add_(1, rank[:, :d], self._strides.expand(count, d))
        # wrapped[:, t] = sum of the strides of the coordinates with rank >= t
        wrapped = self._strides.sum() - torch.cumsum(stride_at_rank, 1) + stride_at_rank
        remainder = torch.arange(d + 1, device=rem0.device)
        return (self._pack(base).unsqueeze(1) + remainder * self._strides.sum()
                - (d + 1) * wrapped[:, d + 1 - remainder])

    def scale_points(self, scale: torch.Tensor) -> None:
        """Make :meth:`filter` compute ``scale * filter(scale * values)`` (``scale`` (N,) per point) at no extra
        cost: the factors go into the splat and slice weights (the dense CRF's symmetric normalisation)."""
        scale = scale.reshape(-1).to(self._slice_weights.dtype)
        if self.compiled and not scale.requires_grad:  # the lattice's own arrays, scaled in place
            lattice_cpu.scale_weights(self._splat_points.numpy(), self._splat_weights.numpy(),
                                      self._slice_weights.numpy(), scale.contiguous().numpy())
        else:
            self._splat_weights = self._splat_weights * scale[self._splat_points]
            self._slice_weights = self._slice_weights * scale[:, None]
        self._matrices = None

    @property
    def compiled(self) -> bool:
        """Whether the lattice was built by the compiled CPU loops (and can filter with them)."""
        return self._compiled_neighbours is not None

    def compiled_arrays(self) -> tuple:
        """The arrays :func:`lattice_cpu.filter_rows` takes after the values (splat CSR, neighbours, slice)."""
        return (self._splat_starts.numpy(), self._splat_points.numpy(), self._splat_weights.numpy(),
                self._compiled_neighbours, self.offsets.numpy(), self._slice_weights.numpy())

    def _sparse(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The splat (M x N) and slice (N x M) as torch sparse CSR matrices, for the tensor path."""
        if self._matrices is None:
            count, vertices = self.count, self.dim + 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                splat = torch.sparse_csr_tensor(self._splat_starts, self._splat_points, self._splat_weights,
                                                (self.size, count), check_invariants=False)
                slice_ = torch.sparse_csr_tensor(
                    torch.arange(0, count * vertices + 1, vertices, device=self.offsets.device),
                    self.offsets.reshape(-1), self._slice_weights.reshape(-1), (count, self.size),
                    check_invariants=False)
            self._matrices = splat, slice_
        return self._matrices

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
        """:meth:`filter` for values laid out as rows, (N, C) in and out (no transposes: the fast layout).

        CPU float32 values that need no gradient go through the compiled loops when the lattice was built by them.
        """
        needs_grad = torch.is_grad_enabled() and values.requires_grad
        if self.compiled and values.dtype == torch.float32 and values.device.type == "cpu" and not needs_grad:
            values = values.detach().contiguous().numpy()
            out = np.empty_like(values)
            match_torch_threads()
            lattice_cpu.filter_rows(values, *self.compiled_arrays(), reverse, out)
            return torch.from_numpy(out)
        splat_matrix, slice_matrix = self._sparse()
        splat = splat_matrix.to(values.dtype) @ values  # (M, C)
        splat = torch.cat([splat, values.new_zeros(1, values.shape[1])])  # row M: the empty vertex
        order = range(self.dim, -1, -1) if reverse else range(self.dim + 1)
        for axis in order:
            forward, backward = self.neighbours[axis]
            neighbours = splat.index_select(0, forward) + splat.index_select(0, backward)
            splat = torch.cat([splat[:-1] + 0.5 * neighbours, splat[-1:]])
        return slice_matrix.to(values.dtype) @ splat[:-1]


def _simplices(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per point: its elevation onto the hyperplane x . 1 = 0 in d+1 dimensions (scaled so that the lattice
    spacing is one standard deviation), the remainder-0 lattice point of its simplex, and the ranks."""
    count, d = features.shape
    device = features.device
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
    return elevated, rem0, rank
