from pixelseg.models.linknet.model import LinkNet

__all__ = ["LinkNet"]
