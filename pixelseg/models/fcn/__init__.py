from pixelseg.models.fcn.model import FCN, fcn8s, fcn16s, fcn32s

__all__ = ["FCN", "fcn8s", "fcn16s", "fcn32s"]
