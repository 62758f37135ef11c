from pixelseg.models.enet.model import ENet

__all__ = ["ENet"]
