from pixelseg.models.upernet.model import UPerNet

__all__ = ["UPerNet"]
