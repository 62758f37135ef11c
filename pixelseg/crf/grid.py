"""Grid CRF: a Potts model on the 4- or 8-connected pixel grid, the cheap alternative to the dense CRF.

Energy: sum_i -log p_i(x_i) + weight * sum_{i~j} [x_i != x_j], over neighbouring pixels i~j (diagonal neighbours
at 1/sqrt(2) of the weight). Solved either exactly for two classes / by alpha-expansion for more (graph cuts,
Boykov, Veksler & Zabih, PAMI 2001, through PyMaxflow), or approximately by mean field with a 3x3 convolution.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from pixelseg.errors import ConfigError


def _unary(probabilities: np.ndarray, clip: float = 1e-5) -> np.ndarray:
    return -np.log(np.clip(probabilities, clip, 1.0))


def grid_crf_graphcut(probabilities: np.ndarray, weight: float = 1.0, connectivity: int = 4,
                      max_cycles: int = 3) -> np.ndarray:
    """(H, W) labels minimising the grid Potts energy for (C, H, W) ``probabilities``.

    Two classes: the exact minimum by one s-t min cut (4- or 8-connected). More classes: alpha-expansion on the
    4-connected grid (a local minimum within a factor 2 of the optimum).
    """
    import maxflow

    if connectivity not in (4, 8):
        raise ConfigError(f"grid CRF connectivity must be 4 or 8, got {connectivity}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    unary = _unary(probabilities)
    num_classes = probabilities.shape[0]
    if num_classes == 2:
        graph = maxflow.Graph[float]()
        nodes = graph.add_grid_nodes(probabilities.shape[1:])
        structure = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=float)
        if connectivity == 8:
            structure = np.array([[0, 0, 0], [0, 0, 1], [1 / math.sqrt(2), 1, 1 / math.sqrt(2)]])
        graph.add_grid_edges(nodes, weights=weight, structure=structure, symmetric=True)
        # Source side = label 0: cutting the sink edge (cost of label 0) puts the node on the source side.
        graph.add_grid_tedges(nodes, unary[1], unary[0])
        graph.maxflow()
        return graph.get_grid_segments(nodes).astype(np.int64)
    if connectivity != 4:
        raise ConfigError("alpha-expansion runs on the 4-connected grid; use connectivity 4 or method mean_field")
    from maxflow import fastmin

    potts = weight * (1.0 - np.eye(num_classes))
    labels = unary.argmin(0).astype(np.int64)
    return fastmin.aexpansion_grid(np.ascontiguousarray(np.moveaxis(unary, 0, -1)), potts, max_cycles=max_cycles,
                                   labels=labels)


def grid_crf_mean_field(probabilities: torch.Tensor, weight: float = 1.0, connectivity: int = 4,
                        iterations: int = 5) -> torch.Tensor:
    """(C, H, W) marginals of the grid Potts model by parallel mean field (any device, differentiable)."""
    if connectivity not in (4, 8):
        raise ConfigError(f"grid CRF connectivity must be 4 or 8, got {connectivity}")
    probabilities = torch.as_tensor(probabilities).float()
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], device=probabilities.device)
    if connectivity == 8:
        kernel = kernel + (1 / math.sqrt(2)) * torch.tensor([[1.0, 0, 1], [0, 0, 0], [1, 0, 1]],
                                                            device=probabilities.device)
    num_classes = probabilities.shape[0]
    kernel = kernel.expand(num_classes, 1, 3, 3)
    log_p = torch.log(probabilities.clamp_min(1e-5)).unsqueeze(0)
    q = probabilities.unsqueeze(0)
    for _ in range(iterations):
        # Potts: the energy of label l at i falls by `weight` times the expected number of neighbours with l.
        neighbours = F.conv2d(F.pad(q, (1, 1, 1, 1), mode="replicate"), kernel, groups=num_classes)
        q = torch.softmax(log_p + weight * neighbours, 1)
    return q[0]
