from pixelseg.models.fpn.model import FPN

__all__ = ["FPN"]
