"""Encoders: any timm backbone, and VGG16 for the FCN family."""

from pixelseg.models.encoders.timm_encoder import TimmEncoder
from pixelseg.models.encoders.vgg import VGG16Encoder, load_weights_file

__all__ = ["TimmEncoder", "VGG16Encoder", "load_weights_file"]
