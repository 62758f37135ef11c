from pixelseg.models.bisenet.model import BiSeNetV1, BiSeNetV2

__all__ = ["BiSeNetV1", "BiSeNetV2"]
