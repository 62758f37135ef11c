"""Labelme annotations rasterised as Labelme itself does, checked on Labelme's own example files.

The examples come from the labelme sdist on PyPI (fetched once with pip and cached; the test skips when no package
registry can be reached). Nothing of Labelme is copied into pixelseg: the test runs Labelme's own
``labelme/utils/shape.py`` (MIT licence) beside pixelseg's rasteriser.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest

from pixelseg.data import open_dataset
from pixelseg.io import read_label_image

VERSION = "6.3.1"
CACHE = Path.home() / ".cache" / "pixelseg-tests"


@pytest.fixture(scope="module")
def labelme_sdist(tmp_path_factory) -> Path:
    archive = CACHE / f"labelme-{VERSION}.tar.gz"
    if not archive.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
                                  ":all:", f"labelme=={VERSION}", "-d", str(CACHE)], capture_output=True, timeout=300)
        if fetched.returncode != 0 or not archive.is_file():
            pytest.skip(f"the labelme {VERSION} sdist could not be fetched from the package registry")
    folder = tmp_path_factory.mktemp("labelme")
    prefix = f"labelme-{VERSION}/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(
            (prefix + "examples/semantic_segmentation/", prefix + "labelme/utils/shape.py"))]
        tar.extractall(folder, members=members, filter="data")
    return folder / prefix


def labelmes_shape_to_mask(sdist: Path):
    """``shape_to_mask`` from Labelme's own source (its one import of the package stubbed: a type only)."""
    stub = types.ModuleType("labelme._label_file")
    stub.ShapeDict = dict
    sys.modules.setdefault("labelme", types.ModuleType("labelme"))
    sys.modules.setdefault("labelme._label_file", stub)
    spec = importlib.util.spec_from_file_location("labelme_shape", sdist / "labelme" / "utils" / "shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.shape_to_mask


def test_masks_equal_labelmes_own_rasterisation_and_labelme2voc(labelme_sdist):
    import json

    example = labelme_sdist / "examples" / "semantic_segmentation"
    dataset = open_dataset("labelme", example / "data_annotated", None)  # labels.txt beside the JSON folder
    assert len(dataset) == 3 and dataset.classes.names[0] == "_background_"
    shape_to_mask = labelmes_shape_to_mask(labelme_sdist)
    names = dataset.classes.names
    for index, sample in enumerate(dataset.samples):
        ours = dataset.read_mask(index)
        document = json.loads(sample.mask.read_text())
        theirs = np.zeros((document["imageHeight"], document["imageWidth"]), np.int64)
        for shape in document["shapes"]:
            value = 255 if shape["label"] == "__ignore__" else names.index(shape["label"])
            theirs[shape_to_mask(theirs.shape, shape["points"], shape.get("shape_type"))] = value
        assert np.array_equal(ours, theirs), sample.name  # pixel for pixel, same Pillow
        # labelme2voc's committed output (written with an older Pillow, whose polygon edges differ by a pixel)
        voc = read_label_image(example / "data_dataset_voc" / "SegmentationClass" / f"{sample.name}.png")
        assert (ours == voc).mean() > 0.99999, sample.name


def test_every_shape_type_is_drawn_as_labelme_draws_it(labelme_sdist):
    from pixelseg.data.masks import shape_mask

    shape_to_mask = labelmes_shape_to_mask(labelme_sdist)
    shapes = [("polygon", [[3.2, 4.7], [30.5, 6.1], [20.4, 25.9]]), ("rectangle", [[28.6, 22.2], [5.1, 3.9]]),
              ("circle", [[20.3, 15.2], [27.9, 18.4]]), ("line", [[2, 3], [35.5, 28.2]]),
              ("linestrip", [[2, 3], [18, 28], [35, 4]]), ("point", [[17.5, 12.5]]),
              ("oriented_rectangle", [[5, 5], [20, 2], [24, 18], [9, 21]])]
    for kind, points in shapes:
        assert np.array_equal(shape_mask((32, 40), points, kind), shape_to_mask((32, 40), points, kind)), kind
