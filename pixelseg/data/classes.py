"""Class names, colour palettes and the ignore index that travel with every dataset and model."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

from pixelseg.constants import IGNORE_INDEX  # dataset-specific void labels are mapped to it on load


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct colours for ``num_classes`` classes (the Pascal VOC bit-interleaved colour map)."""
    colours = []
    for index in range(num_classes):
        red = green = blue = 0
        code = index
        for shift in range(7, -1, -1):
            red |= ((code >> 0) & 1) << shift
            green |= ((code >> 1) & 1) << shift
            blue |= ((code >> 2) & 1) << shift
            code >>= 3
        colours.append((red, green, blue))
    if num_classes > 256:  # beyond VOC's map: evenly spaced hues
        colours = [
            tuple(int(c * 255) for c in colorsys.hsv_to_rgb(i / num_classes, 0.8, 0.9)) for i in range(num_classes)
        ]
    return colours


@dataclass
class ClassInfo:
    """Names and colours of the classes of a dataset or model, in class-index order."""

    names: list[str]
    palette: list[tuple[int, int, int]] = field(default_factory=list)
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        self.names = [str(name) for name in self.names]
        if not self.palette:
            self.palette = default_palette(len(self.names))
        self.palette = [tuple(int(c) for c in colour) for colour in self.palette]
        if len(self.palette) != len(self.names):
            raise ValueError(f"{len(self.names)} class names but {len(self.palette)} palette colours")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def palette_array(self) -> np.ndarray:
        """(256, 3) uint8 lookup table: class colours, black for the ignore index and unused values."""
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: self.num_classes] = np.asarray(self.palette, dtype=np.uint8)[:256]
        return table

    def to_dict(self) -> dict:
        return {"names": self.names, "palette": [list(c) for c in self.palette], "ignore_index": self.ignore_index}

    @classmethod
    def from_dict(cls, data: dict) -> ClassInfo:
        return cls(names=data["names"], palette=data.get("palette") or [], ignore_index=data.get("ignore_index", 255))

    @classmethod
    def numbered(cls, num_classes: int) -> ClassInfo:
        return cls(names=[f"class_{i}" for i in range(num_classes)])


CAMVID = ClassInfo(
    names=["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
           "Bicyclist"],
    palette=[(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
             (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)],
)

VOC = ClassInfo(
    names=["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
           "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
           "tvmonitor"],
)

CITYSCAPES = ClassInfo(
    names=["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
           "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"],
    palette=[(128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
             (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
             (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32)],
)

# Cityscapes labelIds (0..33, -1) to the 19 train ids; every other id is ignored (official cityscapesScripts).
CITYSCAPES_LABEL_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13, 27: 14,
    28: 15, 31: 16, 32: 17, 33: 18,
}

ADE20K_NAMES = [
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher",
    "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier",
    "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
]
ADE20K = ClassInfo(names=ADE20K_NAMES)
