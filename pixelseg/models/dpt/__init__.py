from pixelseg.models.dpt.model import DPT

__all__ = ["DPT"]
