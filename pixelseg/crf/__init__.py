"""Conditional random fields: dense CRF post-processing, the CRF-as-RNN layer and a cheap grid CRF."""

from pixelseg.crf.dense import DenseCRF, mean_field, mean_field_energy
from pixelseg.crf.permutohedral import PermutohedralLattice

__all__ = ["DenseCRF", "PermutohedralLattice", "mean_field", "mean_field_energy"]
