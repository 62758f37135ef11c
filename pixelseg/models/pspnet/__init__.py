from pixelseg.models.pspnet.model import PSPNet

__all__ = ["PSPNet"]
