"""Encoders: any timm backbone, and VGG16 for the FCN family."""

from pixelseg.models.encoders.pretrained import read_weights_file
from pixelseg.models.encoders.timm_encoder import TimmEncoder
from pixelseg.models.encoders.vgg import VGG16Encoder

__all__ = ["TimmEncoder", "VGG16Encoder", "read_weights_file"]
