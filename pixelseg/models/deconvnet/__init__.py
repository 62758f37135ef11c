from pixelseg.models.deconvnet.model import DeconvNet

__all__ = ["DeconvNet"]
