from pixelseg.models.setr.model import SETR

__all__ = ["SETR"]
