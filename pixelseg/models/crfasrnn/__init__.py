from pixelseg.models.crfasrnn.model import CRFasRNNModel

__all__ = ["CRFasRNNModel"]
