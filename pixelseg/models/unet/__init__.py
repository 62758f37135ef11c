from pixelseg.models.unet.model import UNet, UNetOriginal

__all__ = ["UNet", "UNetOriginal"]
