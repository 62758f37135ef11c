from pixelseg.models.segformer.model import SegFormer

__all__ = ["SegFormer"]
