from pixelseg.models.gcn.model import GCN

__all__ = ["GCN"]
