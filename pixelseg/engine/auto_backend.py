"""``--backend auto``: the fastest inference path on this CPU whose accuracy stays within 0.2 mIoU points of float32.

Candidates: eager float32 (always); eager bfloat16 where the CPU has AMX / AVX512-BF16; and the ONNX files exported
beside a model folder (``pixelseg export MODEL MODEL/model.onnx``, ``... MODEL/model_int8.onnx --int8``), run by
onnxruntime. Each is scored on the model's own validation data (the split it was trained with, first ``images``
images at full resolution) and timed on one of them (median of 3 after a warm-up). The choice, its mIoU loss and
speed-up are printed and cached per model and CPU in ``~/.cache/pixelseg/backends.json`` (``$PIXELSEG_CACHE``), so
the measurement runs once. With one candidate eager float32 is used. Without validation data here, the accuracy
each eager path kept when the model was released (``meta["backend_accuracy"]``, written by :func:`record_accuracy`
on its validation data: the shipped models carry it) stands in for the measurement, and only the speed is measured,
on a random image of the recorded size; a model with no such record runs in eager float32.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import statistics
import time
from pathlib import Path

from pixelseg.engine.hardware import cpu_has_fast_bf16, cpu_signature
from pixelseg.io import write_text

TOLERANCE_POINTS = 0.2


def cache_file() -> Path:
    return Path(os.environ.get("PIXELSEG_CACHE", Path.home() / ".cache" / "pixelseg")) / "backends.json"


def model_key(model) -> str:
    """A fingerprint of the weights and meta (the same model loaded from anywhere gets the same key)."""
    digest = hashlib.sha256(json.dumps(model.config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes()[:4096])
        digest.update(str(float(tensor.float().sum())).encode())
    return digest.hexdigest()[:24]


def candidates(model, folder: Path | None) -> list[tuple[str, str, Path | None]]:
    """(backend, precision, ONNX file) of every path worth measuring for ``model`` on this CPU."""
    found = [("eager", "fp32", None)]
    if cpu_has_fast_bf16():
        found.append(("eager", "bf16", None))
    if folder is not None and folder.is_dir():
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return found
        for onnx_file in sorted(folder.glob("*.onnx")):
            found.append(("onnx", "int8" if "int8" in onnx_file.stem else "fp32", onnx_file))
    return found


def _build(model, backend: str, precision: str, onnx_file: Path | None):
    from pixelseg.engine.backends import OnnxModel, with_backend

    return OnnxModel(onnx_file) if onnx_file is not None else with_backend(model, backend, precision)


def seconds_per_image(runner, example) -> float:
    """Median of 3 predictions of ``example`` after a warm-up."""
    runner.predict(example)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        runner.predict(example)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(model, dataset, paths, images: int = 20) -> list[dict]:
    """mIoU on the first ``images`` images of ``dataset`` and latency on its first image, per path."""
    from pixelseg.engine.evaluate import evaluate

    first = copy.copy(dataset)  # the same dataset, its first ``images`` samples
    first.samples = dataset.samples[:images]
    results = []
    for backend, precision, onnx_file in paths:
        runner = _build(model, backend, precision, onnx_file)
        miou = evaluate(runner, first, progress=False).metrics["miou"]
        results.append({"backend": backend, "precision": precision, "onnx": str(onnx_file) if onnx_file else None,
                        "miou": miou, "seconds": seconds_per_image(runner, dataset.read_image(0))})
    return results


def record_accuracy(model, dataset, images: int = 20) -> dict:
    """``model.meta["backend_accuracy"]``: the mIoU of eager float32 and bfloat16 on the first ``images`` images of
    ``dataset`` (its validation data), the change in points, and the image size; saved with the model, it lets
    ``--backend auto`` choose where that data is absent. bfloat16 is run as autocast, which gives the same results on
    any CPU (the hardware only changes its speed)."""
    results = measure(model, dataset, [("eager", "fp32", None), ("eager", "bf16", None)], images)
    reference = results[0]["miou"]
    record = {"images": min(images, len(dataset)), "split": getattr(dataset, "split", None),
              "size": list(dataset.read_image(0).shape[:2]),
              "paths": {f"{r['backend']} {r['precision']}": {"miou": round(r["miou"], 6),
                                                              "change_points": round(100 * (r["miou"] - reference), 3)}
                        for r in results}}
    model.meta["backend_accuracy"] = record
    return record


def choose_from_record(model, paths, record: dict, tolerance: float = TOLERANCE_POINTS) -> dict | None:
    """The fastest eager path whose recorded mIoU change is within ``tolerance`` points, timed here on a random
    image of the recorded size; None when the record leaves only float32."""
    import numpy as np

    kept = [(b, p, f) for b, p, f in paths if f is None and f"{b} {p}" in record["paths"]
            and record["paths"][f"{b} {p}"]["change_points"] >= -tolerance]
    if len(kept) < 2:
        return None
    example = np.random.default_rng(0).integers(0, 256, (*record["size"], 3), dtype=np.uint8)
    results = [{"backend": b, "precision": p, "onnx": None, "miou": record["paths"][f"{b} {p}"]["miou"],
                "seconds": seconds_per_image(_build(model, b, p, None), example)} for b, p, f in kept]
    return {"results": results, "chosen": min(results, key=lambda r: r["seconds"]), "images": record["images"],
            "split": record["split"], "recorded": True}


def choose(results: list[dict], tolerance: float = TOLERANCE_POINTS) -> dict:
    """The fastest result whose mIoU is at most ``tolerance`` points below the first (eager float32)'s."""
    reference = results[0]["miou"]
    kept = [r for r in results if 100 * (reference - r["miou"]) <= tolerance]
    return min(kept, key=lambda r: r["seconds"])


def auto_backend(model, folder: Path | None = None, dataset=None, images: int = 20, verbose: bool = True):
    """``model`` on the fastest path that keeps its accuracy (see the module docstring)."""
    paths = candidates(model, folder)
    record = model.meta.get("backend_accuracy")
    if len(paths) == 1 or (dataset is None and not record):
        if verbose and len(paths) > 1:
            print("pixelseg: backend auto: no validation data to compare paths on; eager float32")
        return _build(model, "eager", "fp32", None)
    key = f"{model_key(model)} | {cpu_signature()}" + (" | recorded" if dataset is None else "")
    cache = _read_cache()
    entry = cache.get(key)
    if dataset is None:
        entry = entry or choose_from_record(model, paths, record)
        if entry is None:
            if verbose:
                print("pixelseg: backend auto: the accuracy recorded with the model leaves only eager float32")
            return _build(model, "eager", "fp32", None)
    elif entry is None or {(r["backend"], r["precision"], r["onnx"]) for r in entry["results"]} != {
            (b, p, str(f) if f else None) for b, p, f in paths}:
        results = measure(model, dataset, paths, images)
        entry = {"results": results, "chosen": choose(results), "images": min(images, len(dataset)),
                 "split": getattr(dataset, "split", None)}
    if cache.get(key) != entry:
        cache[key] = entry
        write_text(cache_file(), json.dumps(cache, indent=1))
    chosen, reference = entry["chosen"], entry["results"][0]
    if verbose:
        print(f"pixelseg: backend auto: {chosen['backend']} {chosen['precision']} "
              f"({reference['seconds'] / chosen['seconds']:.2f}x eager float32, mIoU "
              f"{100 * (chosen['miou'] - reference['miou']):+.2f} points on {entry['images']} {entry['split']} "
              f"images{', recorded with the model' if entry.get('recorded') else ''}; cached in {cache_file()})")
    return _build(model, chosen["backend"], chosen["precision"], Path(chosen["onnx"]) if chosen["onnx"] else None)


def _read_cache() -> dict:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def model_validation_data(model):
    """The validation split the model was trained with (its meta), or None when it cannot be opened here."""
    from pixelseg.data import open_dataset  # engine may read data (the trainer does)
    from pixelseg.errors import PixelsegError

    stored = model.meta.get("data") or {}
    if not stored.get("root") or not stored.get("val_split"):
        return None
    try:
        return open_dataset(stored.get("layout") or "auto", stored["root"], stored["val_split"],
                            **(stored.get("options") or {}))
    except (PixelsegError, OSError):
        return None
