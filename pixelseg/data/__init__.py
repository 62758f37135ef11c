"""Datasets, mask decoding, joint augmentation and dataset checks."""

from pixelseg.data.check import DatasetReport, check_dataset, require_clean
from pixelseg.data.classes import CAMVID, CITYSCAPES, IGNORE_INDEX, VOC, ClassInfo
from pixelseg.data.dataset import Problem, Sample, SegmentationDataset
from pixelseg.data.layouts import LAYOUTS, data_root, detect_layout, open_dataset, register_layout
from pixelseg.data.synthetic import make_shapes_dataset

__all__ = [
    "CAMVID", "CITYSCAPES", "IGNORE_INDEX", "LAYOUTS", "VOC", "ClassInfo", "DatasetReport", "Problem", "Sample",
    "SegmentationDataset", "check_dataset", "data_root", "detect_layout", "make_shapes_dataset", "open_dataset",
    "register_layout", "require_clean",
]
