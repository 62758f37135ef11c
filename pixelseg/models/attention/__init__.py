from pixelseg.models.attention.model import CCNet, DANet, NonLocalNet

__all__ = ["CCNet", "DANet", "NonLocalNet"]
