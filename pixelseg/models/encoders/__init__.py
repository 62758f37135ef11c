"""Encoders: any timm backbone, a timm ViT's patch tokens, and VGG16 for the FCN family."""

from pixelseg.models.encoders.pretrained import read_weights_file
from pixelseg.models.encoders.timm_encoder import PYRAMID_STRIDES, TimmEncoder
from pixelseg.models.encoders.vgg import VGG16Encoder, copy_into, vgg_fc_weights
from pixelseg.models.encoders.vit import ViTEncoder

__all__ = ["PYRAMID_STRIDES", "TimmEncoder", "VGG16Encoder", "ViTEncoder", "copy_into", "read_weights_file",
           "vgg_fc_weights"]
