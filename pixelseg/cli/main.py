"""The ``pixelseg`` command: train, eval, predict, export, cutout, serve, data check, models, benchmark, demo."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pixelseg.constants import REFINE_METHODS
from pixelseg.errors import PixelsegError

METHOD_NAMES = ("otsu", "multi_otsu", "adaptive", "split_merge", "region_growing", "kmeans", "felzenszwalb", "slic",
                "watershed", "grabcut")  # pixelseg.classical.METHODS, listed here to keep `--help` import-light


def _tile(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    parts = [int(v) for v in text.replace("x", ",").split(",")]
    return (parts[0], parts[-1])


def _progress(args) -> bool:
    return not getattr(args, "quiet", False)


def cmd_train(args) -> int:
    from pixelseg.engine import load_config, train

    overrides = list(args.set or [])
    if args.out:
        overrides.append(f"train.out_dir={args.out}")
    if args.data:
        overrides.append(f"data.root={args.data}")
    config = load_config(args.config, overrides)
    run = train(config, resume=Path(args.resume) if args.resume not in (None, True) else bool(args.resume),
                progress=_progress(args))
    print(f"run folder: {run}\n  checkpoints: {run / 'best.pt'}, {run / 'last.pt'}\n  model: {run / 'model'}\n"
          f"  log: {run / 'log.csv'}\n  curve: {run / 'curve.png'}")
    return 0


def _split_list(args) -> dict:
    """``--splits-dir`` as the dataset option it stands for (data.options.splits_dir), or nothing."""
    return {"splits_dir": args.splits_dir} if args.splits_dir else {}


def _open_eval_dataset(args, model):
    from pixelseg.data import open_dataset

    stored = model.meta.get("data", {})
    root = args.data or stored.get("root")
    layout = args.layout or (stored.get("layout") if not args.data else None) or "auto"
    split = args.split or stored.get("val_split") or "val"
    same_data = not args.data or (stored.get("root") and Path(args.data).resolve() == Path(stored["root"]).resolve())
    options = {**(stored.get("options", {}) if same_data else {}), **_split_list(args)}
    if root is None:
        raise PixelsegError("this model does not say which data it was trained on: pass --data PATH")
    return open_dataset(layout, root, split, **options)


def _key_values(args) -> dict:
    """The repeated --option KEY=VALUE arguments as a dict (values parsed as YAML, lists as tuples)."""
    from pixelseg.engine.config import parse_override

    options = {}
    for text in args.option or []:
        path, value = parse_override(text)
        options[".".join(path)] = tuple(value) if isinstance(value, list) else value
    return options


def _scales(args) -> tuple[float, ...]:
    if not args.scales:
        return (1.0,)
    try:
        return tuple(float(v) for v in args.scales.split(","))
    except ValueError:
        raise PixelsegError(f"--scales {args.scales!r}: expected numbers separated by commas, e.g. 0.75,1,1.25"
                            ) from None


def _load_for_inference(args, name: str | Path):
    """The model ``name`` (checkpoint, model folder, ONNX file or shipped name) on ``--backend`` / ``--precision``."""
    import pixelseg
    from pixelseg.engine.backends import with_backend

    if args.backend == "auto" and args.precision is None:
        from pixelseg.loading import load_fastest

        return load_fastest(name)
    model = pixelseg.load(name)
    if getattr(model, "backend", None) == "onnx" and args.backend in ("eager", "auto"):  # an .onnx file: onnxruntime
        return model
    return with_backend(model, "eager" if args.backend == "auto" else args.backend, args.precision or "fp32")


def _crf(args):
    from pixelseg.crf import DenseCRF

    return DenseCRF(iterations=args.crf_iterations) if args.crf else None


def _timed(function):
    """``function`` wrapped to add its seconds per call to ``function.seconds``."""
    import time

    def wrapper(*arguments, **keywords):
        started = time.perf_counter()
        result = function(*arguments, **keywords)
        wrapper.seconds.append(time.perf_counter() - started)
        return result

    wrapper.seconds = []
    return wrapper


def cmd_eval(args) -> int:
    from pixelseg.classical.scoring import evaluate_method
    from pixelseg.data import open_dataset, require_clean
    from pixelseg.engine import distributed, evaluate
    from pixelseg.inference import inference_rule

    if args.method:
        if args.checkpoint or args.crf:
            raise PixelsegError("--method scores a classical method: give no checkpoint and no --crf with it")
        if args.examples_by != "spread":
            raise PixelsegError("--examples-by score ranks a model's predictions: not with --method")
        if not args.data:
            raise PixelsegError("--method needs --data PATH (the dataset to score it on)")
        dataset = open_dataset(args.layout or "auto", args.data, args.split or "val", **_split_list(args))
        require_clean(dataset, progress=_progress(args))
        options = _key_values(args)
        result = evaluate_method(args.method, dataset, options, progress=_progress(args), examples=args.examples)
        source, classes = {"method": args.method, "options": options}, dataset.classes
        out = Path(args.out) if args.out else Path("runs") / f"eval_{args.method}_{dataset.name}_{dataset.split}"
        header = (f"{dataset.name} {dataset.split}: {len(dataset)} images, method {args.method}, "
                  f"{result.metrics['regions_per_image']:.1f} regions per image\nscored with "
                  f"{result.metrics['assignment']}")
    else:
        if not args.checkpoint:
            raise PixelsegError("give a checkpoint (or model folder) to evaluate, or --method NAME")
        distributed.setup("cpu")  # under torchrun: images are sharded, confusion matrices summed
        model = _load_for_inference(args, args.checkpoint)
        dataset = _open_eval_dataset(args, model)
        require_clean(dataset, progress=_progress(args))
        if dataset.classes.num_classes != model.classes.num_classes:
            raise PixelsegError(f"{args.checkpoint}: model has {model.classes.num_classes} classes, dataset "
                                f"{dataset.root} has {dataset.classes.num_classes}")
        result = evaluate(model, dataset, scale=args.scale, tile=_tile(args.tile), overlap=args.overlap,
                          progress=_progress(args), examples=args.examples, crf=_crf(args), flip=args.flip,
                          scales=_scales(args), boundary=args.boundary_f1, examples_by=args.examples_by)
        scale, long_side = inference_rule(model, args.scale)
        source, classes = {"checkpoint": str(args.checkpoint), "backend": getattr(model, "backend", "eager"),
                           "inference_precision": getattr(model, "precision", "fp32"),
                           "inference_scale": scale, "inference_long_side": long_side,
                           "tile": args.tile,
                           "crf": bool(args.crf), "flip": args.flip, "scales": list(_scales(args))}, model.classes
        suffix = ("_flip" if args.flip else "") + ("_ms" if args.scales else "") + ("_crf" if args.crf else "")
        out = Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval_{dataset.split}{suffix}"
        extras = "".join([", flip" if args.flip else "", f", scales {args.scales}" if args.scales else "",
                          ", dense CRF" if args.crf else ""])
        header = (f"{dataset.name} {dataset.split}: {len(dataset)} images at full resolution "
                  f"(network input {f'longer side {long_side} px' if long_side else f'scale {scale}'}{extras})")
    if not distributed.current().is_main:
        return 0
    paths = result.save(out, classes, {**source, "dataset": dataset.name, "root": str(dataset.root),
                                       "split": dataset.split, "images": len(dataset)})
    print(header + "\n")
    print(result.table())
    print("\n" + "\n".join(f"{name}: {path}" for name, path in paths.items()))
    return 0


def _report_skipped(failed: list[str], done: int) -> int:
    """List the files a batch skipped on stderr; exit status 1 only when nothing at all was done."""
    for failure in failed:
        print(f"skipped: {failure}", file=sys.stderr)
    return 1 if failed and not done else 0


def cmd_predict(args) -> int:
    import functools

    from pixelseg.classical import predict_regions
    from pixelseg.engine import predict_files, predict_image

    if args.method:
        if args.model or args.crf:
            raise PixelsegError("--method segments without a model: give no --model and no --crf with it")
        from pixelseg.classical import get_method

        get_method(args.method)  # an unknown name fails before any image is read
        predictor = functools.partial(predict_regions, args.method, **_key_values(args))
        what = f"method {args.method}"
    else:
        from pixelseg.loading import SHIPPED_DIR

        # The default is the shipped model's folder itself, so a ./camvid folder (a dataset) cannot shadow it.
        model = _load_for_inference(args, args.model or SHIPPED_DIR / "camvid")
        predictor = functools.partial(predict_image, model, scale=args.scale, tile=_tile(args.tile),
                                      overlap=args.overlap, crf=_crf(args), flip=args.flip, scales=_scales(args),
                                      probabilities=False)  # the class map only: large images in strips
        what = (f"model {args.model or 'camvid (shipped)'} on {getattr(model, 'backend', 'eager')} "
                f"({getattr(model, 'precision', 'fp32')}){' + dense CRF' if args.crf else ''}")
    from pixelseg.engine import distributed

    context = distributed.setup("cpu")  # under torchrun each rank writes its share of the images
    predictor = _timed(predictor)
    summary = predict_files(predictor, args.inputs, args.out, alpha=args.alpha, progress=_progress(args))
    if context.distributed:
        print(f"rank {context.rank}: {len(summary.written) // 3} image(s)")
        return 0
    images = len(summary.written) // 3
    per_image = f", {sum(predictor.seconds) / len(predictor.seconds):.2f} s per image" if predictor.seconds else ""
    print(f"{images} image(s) predicted by {what} into {Path(args.out).resolve()}{per_image} "
          f"(<stem>_labels.png index map, <stem>_color.png, <stem>_overlay.png)")
    return _report_skipped(summary.failed, images)


def cmd_export(args) -> int:
    import pixelseg
    from pixelseg.engine.backends import export_onnx, onnx_agreement

    source, target = Path(args.checkpoint).expanduser(), Path(args.output).expanduser()
    if target.suffix.lower() != ".onnx":
        raise PixelsegError(f"{target}: the output file must end in .onnx")
    if source.exists() and target.resolve() == source.resolve():
        raise PixelsegError(f"{target}: is the input; choose another output file")
    if target.exists() and not args.overwrite:
        raise PixelsegError(f"{target}: exists; pass --overwrite to replace it")
    if not target.parent.is_dir():
        raise PixelsegError(f"{target.parent}: no such folder")
    model = pixelseg.load(source)
    if args.int8:
        import tempfile

        from pixelseg.engine.backends import quantize_onnx
        from pixelseg.engine.predict import expand_inputs
        from pixelseg.io import read_image

        if not args.calibrate:
            raise PixelsegError("--int8 needs --calibrate IMAGES (training images: folders, files or globs)")
        files = expand_inputs(args.calibrate)[: args.calibration_images]
        images = [read_image(path, int(model.config.get("in_channels", 3))) for path in files]
        with tempfile.TemporaryDirectory() as folder:
            export_onnx(model, Path(folder) / "float.onnx", opset=args.opset)
            quantize_onnx(model, Path(folder) / "float.onnx", target, images)
        print(f"INT8: weights per channel, activations calibrated on {len(images)} images")
    else:
        export_onnx(model, target, opset=args.opset)
    height, width = _tile(args.check_size)
    difference, agreement = onnx_agreement(model, target, height, width)
    print(f"exported {source} to {target} ({target.stat().st_size / 2**20:.1f} MiB, opset {args.opset}, dynamic "
          f"batch/height/width)\ncheck on a random {height}x{width} input: largest logit difference "
          f"{difference:.2e}, {100 * agreement:.3f} % of pixels with the same class\n"
          f"run it: pixelseg predict IMAGES --model {target}   or   pixelseg.load({str(target)!r})")
    return 0


def cmd_cutout(args) -> int:
    from pixelseg.apps.cutout import (
        CutoutSettings,
        cutout_files,
        default_model,
        default_refine,
        parse_box,
        parse_class_names,
    )
    from pixelseg.loading import load_fastest

    box = parse_box(args.box)
    name = default_model(box, args.scribbles, args.model)  # nothing given: the shipped portrait model
    model = load_fastest(name) if name else None  # the fastest path that keeps the accuracy
    settings = CutoutSettings(box=box, scribbles=args.scribbles, model=model, classes=parse_class_names(args.classes),
                              refine=default_refine(args.refine, box, args.scribbles) or args.refine_method != "guided",
                              refine_method=args.refine_method, background=args.background)
    summary = cutout_files(args.inputs, args.out, settings, save_mask=args.mask, progress=_progress(args))
    images = len(summary.foreground_shares)
    share = f", foreground {100 * sum(summary.foreground_shares) / images:.1f} % of the pixels on average" if images \
        else ""
    print(f"{images} image(s) cut out into {Path(args.out).resolve()} (<stem>_cutout.png"
          f"{', <stem>_mask.png' if args.mask else ''}){share}")
    return _report_skipped(summary.failed, images)


def cmd_serve(args) -> int:
    from pixelseg.apps.server import ServerSettings, serve

    models_dir = Path(args.models_dir).expanduser().resolve() if args.models_dir else None
    if models_dir is not None and not models_dir.is_dir():
        raise PixelsegError(f"--models-dir {models_dir}: not a folder")
    settings = ServerSettings(models_dir=models_dir, max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                              max_concurrent=args.max_concurrent, queue_timeout=args.queue_timeout)
    print(f"pixelseg serving on http://{args.host}:{args.port}/ (API docs at /docs)", flush=True)
    serve(args.host, args.port, settings)
    return 0


def cmd_data_check(args) -> int:
    from pixelseg.data import check_dataset, open_dataset

    options: dict = {}
    if args.classes:
        options["classes"] = [c.strip() for c in args.classes.split(",")]
    if args.num_classes:
        options["num_classes"] = args.num_classes
    if args.value_map:
        options["value_map"] = json.loads(args.value_map)
    dataset = open_dataset(args.layout, args.path, args.split, **options)
    report = check_dataset(dataset, progress=_progress(args))
    print(report.format(max_problems=args.max_problems))
    return 0 if report.ok else 1


def cmd_data_split(args) -> int:
    from pixelseg.data import open_dataset
    from pixelseg.data.splits import count_groups, group_split, write_split

    sources = [s.strip() for s in args.source_splits.split(",") if s.strip()] or [None]
    stems = [sample.name for split in sources for sample in open_dataset(args.layout, args.path, split).samples]
    kept, held_out = group_split(stems, args.holdout.split(","), args.pattern)
    out = Path(args.out)
    names = {args.train_name: kept, args.val_name: held_out, args.all_name: sorted(kept + held_out)}
    existing = [str(out / f"{name}.txt") for name in names if (out / f"{name}.txt").exists()]
    if existing and not args.overwrite:
        raise PixelsegError(f"{', '.join(existing)}: already there; pass --overwrite to replace")
    command = " ".join(["pixelseg data split", args.path, "--holdout", args.holdout, "--pattern", repr(args.pattern),
                        "--from", args.source_splits])
    for name, stems_of_split in names.items():
        groups = ", ".join(f"{g} {n}" for g, n in count_groups(stems_of_split, args.pattern).items())
        path = write_split(out / f"{name}.txt", stems_of_split,
                           f"{len(stems_of_split)} files of {args.path} (groups: {groups})\nwritten by: {command}")
        print(f"{path}: {len(stems_of_split)} files ({groups})")
    print(f"use them with data.options.splits_dir: {out}")
    return 0


def cmd_data_weak(args) -> int:
    """Weak labels from a dataset's full masks, as a folder-layout dataset: the images linked, not copied."""
    import json as json_module

    from pixelseg.classical.weak_labels import TargetQuality, box_pseudo_mask, boxes_from_mask, scribbles_from_mask
    from pixelseg.data import open_dataset
    from pixelseg.io import label_image, write_image, write_text
    from pixelseg.utils import progress_bar

    dataset = open_dataset(args.layout, args.path, args.split, **_split_list(args))
    out = Path(args.out)
    if (out / "masks" / args.split).exists() and not args.overwrite:
        raise PixelsegError(f"{out / 'masks' / args.split}: already there; pass --overwrite to replace")
    (out / "images" / args.split).mkdir(parents=True, exist_ok=True)
    boxes_file, quality = {}, TargetQuality(dataset.classes.num_classes, dataset.classes.ignore_index)
    for index in progress_bar(range(len(dataset)), _progress(args), desc=f"{args.kind} from masks"):
        sample, mask = dataset.samples[index], dataset.read_mask(index)
        if args.kind == "scribbles":
            target = scribbles_from_mask(mask, dataset.classes.ignore_index)
        else:
            boxes = boxes_from_mask(mask, ignore_index=dataset.classes.ignore_index)
            boxes_file[sample.name] = [{"class": c, "box": [x0, y0, x1, y1]} for c, x0, y0, x1, y1 in boxes]
            try:
                target = box_pseudo_mask(dataset.read_image(index), boxes,
                                         ignore_index=dataset.classes.ignore_index, method=args.fill)
            except ValueError as error:
                raise PixelsegError(f"{sample.image}: no target from its boxes ({error})") from None
        quality.update(target, mask)
        write_image(out / "masks" / args.split / f"{sample.name}.png", label_image(target))
        link = out / "images" / args.split / Path(sample.image).name
        if not link.exists():
            link.symlink_to(Path(sample.image).resolve())
    write_text(out / "classes.json", json_module.dumps(dataset.classes.to_dict(), indent=2))
    if boxes_file:
        write_text(out / f"boxes_{args.split}.json", json_module.dumps(boxes_file))
    names = dataset.classes.names
    write_text(out / f"quality_{args.split}.json", json_module.dumps(quality.summary(names), indent=2))
    print(f"{out}: {len(dataset)} {args.kind} targets for {dataset.root} {args.split} (folder layout); against the "
          f"masks they come from ({out / f'quality_{args.split}.json'}):\n{quality.table(names)}")
    return 0


def cmd_models(args) -> int:
    from pixelseg.models import list_models
    from pixelseg.models.registry import parameter_count

    models = list_models()
    width = max(len(name) for name in models)
    print(f"{'name':<{width}}  {'params':>8}  paper (the architecture's docstring: what is faithful, what differs)")
    for name, summary in models.items():
        count = f"{parameter_count(name) / 1e6:.2f}M" if args.params else ""
        print(f"{name:<{width}}  {count:>8}  {summary}")
    return 0


def cmd_benchmark(args) -> int:
    import torch

    from pixelseg.engine.benchmark import benchmark, format_rows

    height, width = _tile(args.size)
    rows = benchmark(args.models, height, width, args.num_classes, args.repeats, args.encoder, args.threads,
                     _key_values(args), args.backend, args.precision)
    threads = args.threads or torch.get_num_threads()
    path = f"backend {args.backend} ({args.precision})" if args.backend else "the model as built (no backend)"
    print(f"1x3x{height}x{width}, {threads} CPU thread(s), median of {args.repeats} runs, {path}\n")
    print(format_rows(rows, height, width))
    return 0


def cmd_demo(args) -> int:
    from pixelseg.engine.demo import run_demo

    run_demo(Path(args.out), epochs=args.epochs, progress=_progress(args))
    return 0


def registered(module: str, registry: str):
    """An argparse ``type`` that accepts the names of a registry, imported only when the option is given (so that
    ``pixelseg --help`` stays instant), and names the closest one for a typo."""
    def check(value: str) -> str:
        import importlib

        from pixelseg.utils import closest

        names = getattr(importlib.import_module(module), registry)
        if value not in names:
            raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(names)}{closest(value, names)}")
        return value

    check.__name__ = registry.lower()
    return check


def backend_name(value: str) -> str:
    return value if value == "auto" else registered("pixelseg.engine.backends", "BACKENDS")(value)


def layout_name(value: str) -> str:
    return value if value == "auto" else registered("pixelseg.data.layouts", "LAYOUTS")(value)


SPLITS_DIR_HELP = ("split lists to take --split from (as data.options.splits_dir: a shipped list's name or a folder "
                   "of <split>.txt)")


def _add_train_parser(commands) -> None:
    """``pixelseg train CONFIG``."""
    train = commands.add_parser("train", help="train a model from a YAML config")
    train.add_argument("config", help="YAML config (see configs/)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config value, e.g. train.epochs=5")
    train.add_argument("--resume", nargs="?", const=True, default=None,
                       help="continue from out_dir/last.pt (or the checkpoint given)")
    train.add_argument("--out", help="run folder (train.out_dir)")
    train.add_argument("--data", help="dataset root (data.root)")
    train.set_defaults(func=cmd_train)

def inference_options(sub) -> None:
    """The options of every command that runs a model on images (eval, predict)."""
    sub.add_argument("--scale", type=float, help="network input scale (default: the model's training scale)")
    sub.add_argument("--tile", help="sliding-window tile HEIGHT,WIDTH for large images")
    sub.add_argument("--overlap", type=float, default=0.33, help="sliding-window overlap (0..1)")
    sub.add_argument("--flip", action="store_true", help="test-time augmentation: average with the mirror image")
    sub.add_argument("--scales", help="test-time augmentation: average over these multiples of the scale, "
                                      "e.g. 0.75,1,1.25")
    sub.add_argument("--backend", default="auto", type=backend_name,
                     help="auto (default): the fastest of eager float32 / bf16 / the ONNX files beside the model "
                          "that keeps the mIoU within 0.2 points on the model's validation data (measured once, "
                          "cached); eager: PyTorch with batch norms folded and channels-last; onnx: onnxruntime; "
                          "compile: torch.compile (slow first call per image size)")
    sub.add_argument("--precision", choices=("fp32", "bf16"),
                     help="bf16: bfloat16 on CPUs that have it (about 2x faster, a few class-map pixels differ; "
                          "eager and compile only); default fp32, or the choice of --backend auto")

def method_options(sub) -> None:
    """The classical-method and CRF options of eval and predict."""
    sub.add_argument("--method", help="a classical method instead of a model: " + ", ".join(METHOD_NAMES))
    sub.add_argument("--option", action="append", metavar="KEY=VALUE",
                     help="an option of the method, e.g. segments=300 or box=[10,10,200,150]")
    sub.add_argument("--crf", action="store_true", help="refine the model's output with a dense CRF")
    sub.add_argument("--crf-iterations", type=int, default=5, help="mean-field iterations of the dense CRF")

def _add_eval_parser(commands) -> None:
    """``pixelseg eval [CHECKPOINT]``."""
    evaluate = commands.add_parser("eval", help="evaluate a checkpoint (or a classical method) at full resolution")
    evaluate.add_argument("checkpoint", nargs="?", help="best.pt / last.pt or a model folder")
    evaluate.add_argument("--data", help="dataset root (default: the one the model was trained on)")
    evaluate.add_argument("--layout", type=layout_name, help="dataset layout (default: detected)")
    evaluate.add_argument("--split", help="split to evaluate (default: the validation split)")
    evaluate.add_argument("--splits-dir", help=SPLITS_DIR_HELP)
    evaluate.add_argument("--out", help="folder for metrics.json and plots (default: beside the checkpoint)")
    evaluate.add_argument("--examples", type=int, default=4,
                          help="images shown as image / truth / prediction in examples.png (0: none)")
    evaluate.add_argument("--examples-by", choices=("spread", "score"), default="spread",
                          help="which images examples.png shows: spread over the split, or (a model's evaluation) "
                               "the best half and the worst half by the image's own mIoU, captioned")
    evaluate.add_argument("--boundary-f1", action="store_true",
                          help="also the boundary F1 score per class (Csurka et al. 2013; tolerance 0.75%% of the "
                               "image diagonal)")
    inference_options(evaluate)
    method_options(evaluate)
    evaluate.set_defaults(func=cmd_eval)

def _add_predict_parser(commands) -> None:
    """``pixelseg predict INPUTS``."""
    predict = commands.add_parser("predict", help="predict images, folders or globs")
    predict.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    predict.add_argument("--model", help="checkpoint, model folder or shipped model name (default: camvid)")
    predict.add_argument("--out", default="predictions", help="output folder (default: ./predictions)")
    predict.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    inference_options(predict)
    method_options(predict)
    predict.set_defaults(func=cmd_predict)

def _add_export_parser(commands) -> None:
    """``pixelseg export CHECKPOINT OUTPUT``."""
    export = commands.add_parser("export", help="write a model as ONNX (dynamic batch, height and width)")
    export.add_argument("checkpoint", help="checkpoint, model folder or shipped model name")
    export.add_argument("output", help="the .onnx file to write")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18, the current exporter's)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    export.add_argument("--int8", action="store_true", help="INT8 static quantisation (onnxruntime): per-channel "
                        "weights, activations calibrated on --calibrate images")
    export.add_argument("--calibrate", nargs="+", metavar="IMAGES",
                        help="with --int8: training images (folders, files or globs) to calibrate on")
    export.add_argument("--calibration-images", type=int, default=32, help="with --int8: at most this many (32)")
    export.add_argument("--check-size", default="256,320",
                        help="HEIGHT,WIDTH of the random input the export is checked on (default 256,320)")
    export.set_defaults(func=cmd_export)

def _add_cutout_parser(commands) -> None:
    """``pixelseg cutout INPUTS``."""
    cutout = commands.add_parser("cutout", help="cut the foreground out of images (RGBA PNG)")
    cutout.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    cutout.add_argument("--out", default="cutouts", help="output folder (default: ./cutouts)")
    cutout.add_argument("--box", help="x0,y0,x1,y1: the object lies inside (GrabCut; no model needed)")
    cutout.add_argument("--scribbles", help="grey PNG the size of the image: 255 = surely foreground, 0 = surely "
                                            "background, other values unknown (GrabCut)")
    cutout.add_argument("--model", help="checkpoint, model folder or shipped model name (default, without --box or "
                                        "--scribbles: portrait, which cuts the person out)")
    cutout.add_argument("--classes", help="with --model: the foreground classes, e.g. car,pedestrian (default: all "
                                          "but 'background')")
    cutout.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None,
                        help="soft alpha along the boundary (guided filter; default: on for a model alone)")
    cutout.add_argument("--refine-method", choices=REFINE_METHODS, default=REFINE_METHODS[0],
                        help="how the boundary is refined: guided filter (default, fast) or closed-form matting "
                             "(pymatting: pip install 'pixelseg[matting]'; implies --refine)")
    cutout.add_argument("--background", help="a colour (#rrggbb, r,g,b, white), an image file or 'blur' "
                                             "instead of transparency")
    cutout.add_argument("--mask", action="store_true", help="also write <stem>_mask.png (the alpha)")
    cutout.set_defaults(func=cmd_cutout)

def _add_serve_parser(commands) -> None:
    """``pixelseg serve``."""
    server = commands.add_parser("serve", help="web page and REST API for segmentation and cutouts")
    server.add_argument("--host", default="127.0.0.1", help="interface (default: localhost only)")
    server.add_argument("--port", type=int, default=8000)
    server.add_argument("--models-dir", help="folder of model folders / checkpoints offered besides the shipped ones")
    server.add_argument("--max-upload-mb", type=float, default=20.0)
    server.add_argument("--max-concurrent", type=int, default=2, help="inferences running at once")
    server.add_argument("--queue-timeout", type=float, default=10.0,
                        help="seconds a request waits for a free slot before 503")
    server.set_defaults(func=cmd_serve)

def _add_data_parser(commands) -> None:
    """``pixelseg data check|split|weak PATH``."""
    data = commands.add_parser("data", help="dataset tools")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    check = data_commands.add_parser("check", help="list counts, sizes, class frequencies and every problem")
    check.add_argument("path", help="dataset root")
    check.add_argument("--layout", default="auto", type=layout_name, help="dataset layout (default: detected)")
    check.add_argument("--split", help="split (default: all for folder/labelme, train otherwise)")
    check.add_argument("--classes", help="comma-separated class names (folder/labelme without a classes file)")
    check.add_argument("--num-classes", type=int, help="number of classes (folder layout without a classes file)")
    check.add_argument("--value-map", help='JSON raw value -> class, e.g. \'{"255": 0, "0": 1}\'')
    check.add_argument("--max-problems", type=int, default=50)
    check.set_defaults(func=cmd_data_check)
    split = data_commands.add_parser("split", help="split lists that hold out whole groups of files (sequences, "
                                                   "scenes, patients) named by a pattern on the file names")
    split.add_argument("path", help="dataset root")
    split.add_argument("--holdout", required=True, help="comma-separated groups to hold out, e.g. 0006R0")
    split.add_argument("--pattern", default=r"^[^_]+",
                       help="regular expression on the file stem giving its group (its first capturing group, or the "
                            "whole match; default: the stem up to the first underscore)")
    split.add_argument("--layout", default="auto", type=layout_name, help="dataset layout (default: detected)")
    split.add_argument("--from", dest="source_splits", default="train",
                       help="comma-separated splits to draw the files from (default train; e.g. train,val)")
    split.add_argument("--out", required=True, help="folder for the split lists (data.options.splits_dir)")
    split.add_argument("--train-name", default="train", help="list of the files kept (default train)")
    split.add_argument("--val-name", default="val", help="list of the files held out (default val)")
    split.add_argument("--all-name", default="all", help="list of every file (default all)")
    split.add_argument("--overwrite", action="store_true", help="replace existing lists")
    split.set_defaults(func=cmd_data_split)
    weak = data_commands.add_parser("weak", help="weak labels (boxes with GrabCut pseudo-masks, or scribbles) from a "
                                                 "dataset's masks: what training on them costs")
    weak.add_argument("path", help="dataset root")
    weak.add_argument("--kind", choices=("boxes", "scribbles"), required=True)
    weak.add_argument("--split", default="train", help="split to convert (default train)")
    weak.add_argument("--splits-dir", help=SPLITS_DIR_HELP + "; a validation list then stays out")
    weak.add_argument("--fill", choices=("grabcut", "box"), default="grabcut",
                      help="boxes: GrabCut inside each box (the rest of the box ignored) or the whole box")
    weak.add_argument("--layout", default="auto", type=layout_name, help="dataset layout (default: detected)")
    weak.add_argument("--out", required=True, help="folder for the new dataset (images are linked, not copied)")
    weak.add_argument("--overwrite", action="store_true", help="replace existing targets")
    weak.set_defaults(func=cmd_data_weak)

def _add_models_parser(commands) -> None:
    """``pixelseg models``."""
    models = commands.add_parser("models", help="list the architectures: paper, year, parameters at the defaults")
    models.add_argument("--no-params", dest="params", action="store_false",
                        help="leave out the parameter counts (they take seconds to count)")
    models.set_defaults(func=cmd_models)

def _add_benchmark_parser(commands) -> None:
    """``pixelseg benchmark [MODELS]``."""
    bench = commands.add_parser("benchmark", help="parameters, GFLOPs, CPU latency and peak memory per architecture")
    bench.add_argument("models", nargs="*", help="architectures (default: all)")
    bench.add_argument("--size", default="360,480", help="input HEIGHT,WIDTH (default 360,480)")
    bench.add_argument("--num-classes", type=int, default=11)
    bench.add_argument("--repeats", type=int, default=10, help="timed forward passes (the median is reported)")
    bench.add_argument("--encoder", help="timm encoder for the architectures that take one")
    bench.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    bench.add_argument("--option", action="append", metavar="KEY=VALUE",
                       help="a model option for every architecture, e.g. decoder_channels=[128,64,32,16,16]")
    bench.add_argument("--backend", type=registered("pixelseg.engine.backends", "BACKENDS"),
                       help="time an inference backend (default: the model as built, plain PyTorch)")
    bench.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="with --backend")
    bench.set_defaults(func=cmd_benchmark)

def _add_demo_parser(commands) -> None:
    """``pixelseg demo``."""
    demo = commands.add_parser("demo", help="generate a small dataset, train, evaluate and predict on it")
    demo.add_argument("--out", default="runs/demo", help="demo folder")
    demo.add_argument("--epochs", type=int, default=12)
    demo.set_defaults(func=cmd_demo)


COMMAND_PARSERS = (
    _add_train_parser, _add_eval_parser, _add_predict_parser, _add_export_parser, _add_cutout_parser,
    _add_serve_parser, _add_data_parser, _add_models_parser, _add_benchmark_parser, _add_demo_parser,
)
"""One function per command, in the order ``pixelseg --help`` lists them: a new command adds its own here."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixelseg", description="Semantic segmentation: train, evaluate, predict, "
                                                                  "cut out, serve.")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True)
    for add_parser in COMMAND_PARSERS:
        add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    succeeded = False
    try:
        status = args.func(args)
        succeeded = True
        return status
    except PixelsegError as error:
        print(f"pixelseg: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pixelseg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        if "torch.distributed" in sys.modules:  # under torchrun: leave the process group together
            from pixelseg.engine import distributed

            distributed.teardown(wait=succeeded)
