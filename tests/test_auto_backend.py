"""--backend auto: the fastest path within 0.2 mIoU points of eager float32 on the model's validation data, measured
once per model and CPU and cached."""

from __future__ import annotations

import json

import pytest

from pixelseg.engine import auto_backend
from pixelseg.engine.config import config_from_dict
from pixelseg.engine.trainer import train
from pixelseg.loading import load_fastest
from tests.conftest import tiny_config


def test_the_fastest_path_that_keeps_the_accuracy_is_chosen():
    results = [{"backend": "eager", "precision": "fp32", "miou": 0.600, "seconds": 1.0},
               {"backend": "eager", "precision": "bf16", "miou": 0.599, "seconds": 0.5},  # -0.1 points: kept
               {"backend": "onnx", "precision": "int8", "miou": 0.590, "seconds": 0.3}]  # -1.0 point: too lossy
    assert auto_backend.choose(results)["precision"] == "bf16"
    results[1]["miou"] = 0.595  # -0.5 points
    assert auto_backend.choose(results)["precision"] == "fp32"


@pytest.fixture(scope="module")
def model_folder(shapes_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("auto_run")
    train(config_from_dict(tiny_config(shapes_root, run, epochs=1)), progress=False)
    return run / "model"


def test_auto_measures_once_caches_and_prints_its_choice(model_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIXELSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(auto_backend, "cpu_has_fast_bf16", lambda: True)  # two candidates on any CPU
    model = load_fastest(model_folder)
    printed = capsys.readouterr().out
    assert "backend auto:" in printed and "points on 4 val images" in printed
    cache = json.loads((tmp_path / "cache" / "backends.json").read_text())
    (entry,) = cache.values()
    assert [(r["backend"], r["precision"]) for r in entry["results"]] == [("eager", "fp32"), ("eager", "bf16")]
    assert (model.backend, model.precision) == (entry["chosen"]["backend"], entry["chosen"]["precision"])
    assert 100 * (entry["results"][0]["miou"] - entry["chosen"]["miou"]) <= 0.2

    def measured_again(*args, **kwargs):
        raise AssertionError("the cached choice should be used")

    monkeypatch.setattr(auto_backend, "measure", measured_again)
    again = load_fastest(model_folder)
    assert (again.backend, again.precision) == (model.backend, model.precision)


def test_without_validation_data_auto_is_eager_float32(model_folder, tmp_path, monkeypatch, capsys):
    import pixelseg

    monkeypatch.setattr(auto_backend, "cpu_has_fast_bf16", lambda: True)
    model = pixelseg.load(model_folder)
    model.meta["data"]["root"] = str(tmp_path / "gone")
    chosen = auto_backend.auto_backend(model, None, auto_backend.model_validation_data(model))
    assert (chosen.backend, chosen.precision) == ("eager", "fp32")
    assert "no validation data" in capsys.readouterr().out


def test_without_validation_data_the_accuracy_recorded_with_the_model_decides(model_folder, tmp_path, monkeypatch,
                                                                              capsys):
    """A shipped model carries the mIoU change of each eager path measured at release (``record_accuracy``): without
    the data here, auto keeps the paths within 0.2 points, times them on a random image, and says so."""
    import pixelseg

    monkeypatch.setenv("PIXELSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(auto_backend, "cpu_has_fast_bf16", lambda: True)
    model = pixelseg.load(model_folder)
    record = auto_backend.record_accuracy(model, auto_backend.model_validation_data(model))
    assert record["paths"]["eager fp32"]["change_points"] == 0 and "eager bf16" in record["paths"]
    assert record["images"] == 4 and len(record["size"]) == 2
    model.meta["data"]["root"] = str(tmp_path / "gone")  # a user's machine: no validation data

    record["paths"]["eager bf16"]["change_points"] = -0.1
    chosen = auto_backend.auto_backend(model, None, auto_backend.model_validation_data(model))
    assert "recorded with the model" in capsys.readouterr().out
    (entry,) = json.loads((tmp_path / "cache" / "backends.json").read_text()).values()
    assert [(r["backend"], r["precision"]) for r in entry["results"]] == [("eager", "fp32"), ("eager", "bf16")]
    assert (chosen.backend, chosen.precision) == (entry["chosen"]["backend"], entry["chosen"]["precision"])

    record["paths"]["eager bf16"]["change_points"] = -0.5  # too lossy: float32 without timing anything
    monkeypatch.setenv("PIXELSEG_CACHE", str(tmp_path / "other_cache"))
    chosen = auto_backend.auto_backend(model, None, None)
    assert (chosen.backend, chosen.precision) == ("eager", "fp32")
    assert "leaves only eager float32" in capsys.readouterr().out
