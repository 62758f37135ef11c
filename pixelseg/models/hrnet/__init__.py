from pixelseg.models.hrnet.model import HRNet

__all__ = ["HRNet"]
