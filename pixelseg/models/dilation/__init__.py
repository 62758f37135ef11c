from pixelseg.models.dilation.model import DilatedNet

__all__ = ["DilatedNet"]
