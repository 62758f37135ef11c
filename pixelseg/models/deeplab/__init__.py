from pixelseg.models.deeplab.model import DeepLabV1, DeepLabV2

__all__ = ["DeepLabV1", "DeepLabV2"]
