"""Constants every part of pixelseg shares; this module imports nothing, so any module may import it."""

IGNORE_INDEX = 255
"""The label of pixels that no loss and no metric counts (void, unlabelled, outside the field of view)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""The RGB normalisation of torchvision's and most of timm's ImageNet weights (a model's own is in its meta)."""

REFINE_METHODS = ("guided", "matting")
"""How a cutout's alpha is refined on its boundary band: guided filter (fast, the default) or closed-form matting."""
