from pixelseg.models.maskformer.model import MaskFormer

__all__ = ["MaskFormer"]
