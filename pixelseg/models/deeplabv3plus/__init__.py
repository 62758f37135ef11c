from pixelseg.models.deeplabv3plus.model import DeepLabV3Plus

__all__ = ["DeepLabV3Plus"]
