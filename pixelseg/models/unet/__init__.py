from pixelseg.models.unet.model import UNet

__all__ = ["UNet"]
