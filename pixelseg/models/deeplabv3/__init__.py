from pixelseg.models.deeplabv3.model import DeepLabV3, DeepLabV3Plus

__all__ = ["DeepLabV3", "DeepLabV3Plus"]
