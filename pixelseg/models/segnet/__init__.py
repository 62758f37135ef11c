from pixelseg.models.segnet.model import SegNet, SegNetBasic

__all__ = ["SegNet", "SegNetBasic"]
