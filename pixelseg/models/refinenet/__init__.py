from pixelseg.models.refinenet.model import RefineNet

__all__ = ["RefineNet"]
