from pixelseg.models.segmenter.model import Segmenter

__all__ = ["Segmenter"]
