"""Architectures behind one registry: ``pixelseg.models.create(name, num_classes=..., encoder=..., pretrained=...)``."""

from pixelseg.models import (  # noqa: F401 - registers the architectures
    attention,
    bisenet,
    crfasrnn,
    deconvnet,
    deeplab,
    deeplabv3,
    dilation,
    dpt,
    enet,
    fcn,
    fpn,
    gcn,
    hrnet,
    linknet,
    maskformer,
    pspnet,
    refinenet,
    segformer,
    segmenter,
    segnet,
    setr,
    tiramisu,
    unet,
    upernet,
)
from pixelseg.models.base import SegmentationModel
from pixelseg.models.registry import create, list_models, register_model
from pixelseg.models.serialization import save_model

__all__ = ["SegmentationModel", "create", "list_models", "register_model", "save_model"]
