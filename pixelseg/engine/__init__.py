"""Training, evaluation and prediction."""

from pixelseg.engine.config import Config, load_config
from pixelseg.engine.evaluate import Evaluation, evaluate
from pixelseg.engine.predict import predict_files
from pixelseg.engine.trainer import train
from pixelseg.inference import Prediction, predict_image

__all__ = ["Config", "Evaluation", "Prediction", "evaluate", "load_config", "predict_files", "predict_image", "train"]
