from pixelseg.models.tiramisu.model import FCDenseNet, fcdensenet56, fcdensenet67, fcdensenet103

__all__ = ["FCDenseNet", "fcdensenet56", "fcdensenet67", "fcdensenet103"]
