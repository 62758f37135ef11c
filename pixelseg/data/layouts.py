"""Readers for the common dataset layouts. Each builds a :class:`SegmentationDataset` for one split.

| layout | files |
|---|---|
| ``folder`` | ``images/`` + ``masks/`` paired by stem; split by sub-folder (``images/train``) or ``splits/train.txt`` |
| ``camvid`` | SegNet layout: ``train/``, ``trainannot/``, ``val/``, ``valannot/``, ``test/``, ``testannot/`` |
| ``voc`` | Pascal VOC: ``JPEGImages/``, ``SegmentationClass/`` palette PNGs, ``ImageSets/Segmentation/{split}.txt`` |
| ``cityscapes`` | ``leftImg8bit/{split}/{city}/*_leftImg8bit.png``, ``gtFine/{split}/{city}/*_gtFine_labelIds.png`` |
| ``ade20k`` | ``ADEChallengeData2016/images/{training,validation}``, ``annotations/...`` (150 classes, 0 ignored) |
| ``labelme`` | Labelme ``*.json`` files beside their images, class names in ``labels.txt`` or the config |
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from pixelseg.data.classes import (
    ADE20K,
    CAMVID,
    CITYSCAPES,
    CITYSCAPES_LABEL_TO_TRAIN_ID,
    IGNORE_INDEX,
    VOC,
    ClassInfo,
)
from pixelseg.data.dataset import Problem, Sample, SegmentationDataset
from pixelseg.data.masks import LabelmeDecoder, MaskDecoder
from pixelseg.errors import ConfigError, DataError
from pixelseg.io import IMAGE_EXTENSIONS, list_images
from pixelseg.utils import closest

SHARED_DATA_FALLBACK = Path("../shared/data")
SHIPPED_SPLITS = Path(__file__).resolve().parent / "split_lists"
"""Split lists that ship with pixelseg, named by folder (``splits_dir: camvid_sequences``)."""


def data_root() -> Path:
    """Where named datasets live: ``$PIXELSEG_DATA``, else ``../shared/data``."""
    return Path(os.environ.get("PIXELSEG_DATA", SHARED_DATA_FALLBACK))


def resolve_root(root: str | Path | None, layout: str) -> Path:
    """A dataset root: as given when it exists, else looked up under :func:`data_root`."""
    if root is None:
        candidate = data_root() / layout
        if not candidate.exists():
            raise DataError(f"no data root given for {layout!r} and {candidate} does not exist "
                            f"(pass --data PATH or set PIXELSEG_DATA)")
        return candidate
    path = Path(root).expanduser()
    if not path.exists() and not path.is_absolute() and (data_root() / path).exists():
        path = data_root() / path
    if not path.exists():
        raise DataError(f"{path}: dataset folder does not exist")
    return path


def _pair_by_stem(
    images: list[Path], masks: list[Path], mask_suffix: str = ""
) -> tuple[list[Sample], list[Problem]]:
    masks_by_stem = {m.name[: -len(mask_suffix)] if mask_suffix and m.name.endswith(mask_suffix) else m.stem: m
                     for m in masks}
    samples, problems, used = [], [], set()
    for image in images:
        mask = masks_by_stem.get(image.stem)
        if mask is None:
            problems.append(Problem(image, "missing pair: no mask with this file stem"))
            continue
        used.add(mask)
        samples.append(Sample(image, mask))
    problems += [Problem(m, "missing pair: no image with this file stem") for m in masks if m not in used]
    return samples, problems


def splits_folder(root: Path, splits_dir: str | Path | None) -> Path:
    """Where a dataset's split lists are: ``splits_dir`` as a path, else the shipped lists of that name
    (:data:`SHIPPED_SPLITS`), else ``ROOT/splits``."""
    if splits_dir is None:
        return root / "splits"
    path = Path(splits_dir).expanduser()
    if not path.is_dir() and len(path.parts) == 1 and (SHIPPED_SPLITS / path.name).is_dir():
        return SHIPPED_SPLITS / path.name
    return path


def _read_split_list(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _folder_classes(root: Path, num_classes: int | None, class_names: list[str] | None) -> tuple[ClassInfo, tuple]:
    """Classes of a folder dataset: ``classes.json``, ``classes.txt``, explicit names, or a count."""
    void_colours: tuple = ()
    if (root / "classes.json").is_file():
        try:
            spec = json.loads((root / "classes.json").read_text())
            classes = ClassInfo(names=spec["names"], palette=spec.get("palette") or [],
                                ignore_index=spec.get("ignore_index", IGNORE_INDEX))
            void_colours = tuple(tuple(c) for c in spec.get("void_colours", []))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise DataError(f"{root / 'classes.json'}: invalid classes file ({error}); expected "
                            '{"names": [...], "palette": [[r, g, b], ...], "ignore_index": 255}') from None
    elif (root / "classes.txt").is_file():
        classes = ClassInfo(names=[n.strip() for n in (root / "classes.txt").read_text().splitlines() if n.strip()])
    elif class_names:
        classes = ClassInfo(names=list(class_names))
    elif num_classes:
        classes = ClassInfo.numbered(int(num_classes))
    else:
        raise DataError(f"{root}: no classes.json or classes.txt; name the classes (--classes a,b or "
                        "data.options.classes) or give their number (--num-classes or data.options.num_classes)")
    if num_classes and classes.num_classes != num_classes:
        raise DataError(f"{root}: classes file lists {classes.num_classes} classes but num_classes is {num_classes}")
    return classes, void_colours


def _find_subfolder(root: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"{root}: no {' or '.join(n + '/' for n in names)} folder (expected by the folder layout)")


def _all_files(folder: Path) -> list[Path]:
    """Every image in ``folder`` and, when the images are in split sub-folders, in those."""
    return sorted(set(list_images(folder)) | {p for sub in folder.iterdir() if sub.is_dir() for p in list_images(sub)})


def _listed_files(list_file: Path, folder: Path) -> list[Path]:
    wanted = set(_read_split_list(list_file))
    return [p for p in _all_files(folder) if p.stem in wanted]


def _split_files(root: Path, folder: Path, split: str | None, splits_dir: Path | None = None) -> list[Path]:
    """Files of one split: the stems of ``splits_dir``'s list (it names the lists to use, even where the data has
    split sub-folders), else a sub-folder named after the split, else the list in ``ROOT/splits/`` or
    ``ROOT/SPLIT.txt``; all files for no split."""
    if split is None:
        return _all_files(folder)
    listed = splits_folder(root, splits_dir) / f"{split}.txt"
    if splits_dir is not None and listed.is_file():
        return _listed_files(listed, folder)
    if (folder / split).is_dir():
        return list_images(folder / split)
    for list_file in (listed, root / f"{split}.txt"):
        if list_file.is_file():
            return _listed_files(list_file, folder)
    raise DataError(f"{root}: no split {split!r}: expected {folder / split}/ or {listed}")


def folder(root: str | Path, split: str | None = None, *, num_classes: int | None = None,
           classes: list[str] | None = None, value_map: dict | None = None, splits_dir: str | Path | None = None,
           channels: int = 3, extra_channels: list[str] | None = None, **_: object) -> SegmentationDataset:
    """Generic layout: ``images/`` + ``masks/`` (or ``labels/``, ``annotations/``) paired by stem.

    ``value_map`` maps raw mask values to class indices when the files use other values
    (for example ``{255: 0, 0: 1}`` for a 0/255 binary mask); it must list every valid value.
    ``channels``: read the images as 1 (grey), 3 (RGB) or 4 (RGBA) channels. ``extra_channels``: folders under the
    root (``nir``, ``depth``) holding one more grey band per image, same file stem (in ``FOLDER/SPLIT/`` when the
    images are in split sub-folders); the model then takes ``channels + len(extra_channels)`` input channels.
    """
    root = resolve_root(root, "folder")
    class_info, void_colours = _folder_classes(root, num_classes, classes)
    image_dir = _find_subfolder(root, ("images", "image", "img"))
    mask_dir = _find_subfolder(root, ("masks", "mask", "labels", "label", "annotations"))
    images = _split_files(root, image_dir, split, splits_dir)
    masks = _split_files(root, mask_dir, split, splits_dir)
    if split is not None and not (mask_dir / split).is_dir():  # a split list filters the masks as well
        stems = {p.stem for p in images}
        masks = [m for m in masks if m.stem in stems]
    samples, problems = _pair_by_stem(images, masks)
    if value_map is not None:
        value_map = {int(raw): int(mapped) for raw, mapped in value_map.items()}
    decoder = MaskDecoder(class_info, value_map=value_map, void_colours=void_colours)
    bands = []
    for name in extra_channels or []:
        band_dir = root / name
        if not band_dir.is_dir():
            raise DataError(f"{band_dir}: extra channel folder not found (data.options.extra_channels)")
        bands.append(band_dir / split if split is not None and (band_dir / split).is_dir() else band_dir)
    return SegmentationDataset(samples, class_info, decoder, name="folder", root=root, split=split,
                               problems=problems, image_channels=int(channels), extra_channels=bands)


def _camvid_pool(root: Path) -> dict[str, tuple[Path, Path]]:
    """Every (image, label) pair under the split folders of a CamVid root (``train/`` + ``trainannot/``, ...)."""
    pool: dict[str, tuple[Path, Path]] = {}
    for folder_path in sorted(p for p in root.iterdir() if p.is_dir() and (root / f"{p.name}annot").is_dir()):
        labels = {m.stem: m for m in list_images(root / f"{folder_path.name}annot")}
        pool.update({image.stem: (image, labels.get(image.stem)) for image in list_images(folder_path)})
    return pool


def camvid(root: str | Path | None = None, split: str = "train", *, splits_dir: str | Path | None = None,
           **_: object) -> SegmentationDataset:
    """CamVid in the SegNet tutorial layout (11 classes; label 11 is void and ignored).

    A split is a folder pair (``val/`` + ``valannot/``) or a list of file stems, ``SPLITS_DIR/{split}.txt``
    (``splits_dir`` option, default ``ROOT/splits``), drawn from all the folder pairs: this is how whole sequences
    are held out (``pixelseg data split``)."""
    root = resolve_root(root, "camvid")
    value_map = {**{i: i for i in range(11)}, 11: IGNORE_INDEX}
    list_file = splits_folder(root, splits_dir) / f"{split}.txt"
    if (root / split).is_dir() and (root / f"{split}annot").is_dir():
        samples, problems = _pair_by_stem(list_images(root / split), list_images(root / f"{split}annot"))
    elif list_file.is_file():
        pool = _camvid_pool(root)
        samples, problems = [], []
        for stem in _read_split_list(list_file):
            image, mask = pool.get(stem, (None, None))
            if image is None or mask is None:
                problems.append(Problem(list_file, f"{stem}: listed, but no image and label with this stem under "
                                                   f"{root}"))
            else:
                samples.append(Sample(image, mask))
    else:
        raise DataError(f"{root}: CamVid split {split!r} needs {split}/ and {split}annot/ folders or a list "
                        f"of stems in {list_file}")
    return SegmentationDataset(samples, CAMVID, MaskDecoder(CAMVID, value_map=value_map), name="camvid",
                               root=root, split=split, problems=problems)


def voc(root: str | Path | None = None, split: str = "train", **_: object) -> SegmentationDataset:
    """Pascal VOC 2012 segmentation (21 classes; the 255 object border is ignored)."""
    root = resolve_root(root, "voc")
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir():
            root = candidate
            break
    list_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not list_file.is_file():
        raise DataError(f"{list_file}: VOC split list not found")
    samples, problems = [], []
    for stem in _read_split_list(list_file):
        image, mask = root / "JPEGImages" / f"{stem}.jpg", root / "SegmentationClass" / f"{stem}.png"
        if not image.is_file():
            problems.append(Problem(image, f"missing pair: listed in {list_file.name} but not found"))
        elif not mask.is_file():
            problems.append(Problem(mask, f"missing pair: listed in {list_file.name} but not found"))
        else:
            samples.append(Sample(image, mask))
    decoder = MaskDecoder(VOC, void_colours=((224, 224, 192),))
    return SegmentationDataset(samples, VOC, decoder, name="voc", root=root, split=split, problems=problems)


def cityscapes(root: str | Path | None = None, split: str = "train", **_: object) -> SegmentationDataset:
    """Cityscapes fine annotations, labelIds mapped to the 19 train ids (everything else ignored)."""
    root = resolve_root(root, "cityscapes")
    image_root, mask_root = root / "leftImg8bit" / split, root / "gtFine" / split
    if not image_root.is_dir():
        raise DataError(f"{image_root}: Cityscapes split folder not found")
    images = sorted(image_root.glob("*/*_leftImg8bit.png"))
    samples, problems = [], []
    for image in images:
        stem = image.name[: -len("_leftImg8bit.png")]
        mask = mask_root / image.parent.name / f"{stem}_gtFine_labelIds.png"
        if mask.is_file():
            samples.append(Sample(image, mask))
        else:
            problems.append(Problem(image, f"missing pair: {mask} not found"))
    value_map = {label: CITYSCAPES_LABEL_TO_TRAIN_ID.get(label, IGNORE_INDEX) for label in range(34)}
    value_map[255] = IGNORE_INDEX
    return SegmentationDataset(samples, CITYSCAPES, MaskDecoder(CITYSCAPES, value_map=value_map),
                               name="cityscapes", root=root, split=split, problems=problems)


def ade20k(root: str | Path | None = None, split: str = "train", **_: object) -> SegmentationDataset:
    """ADE20K SceneParsing (ADEChallengeData2016): 150 classes, annotation 0 ("other") ignored."""
    root = resolve_root(root, "ade20k")
    if (root / "ADEChallengeData2016").is_dir():
        root = root / "ADEChallengeData2016"
    folder_name = {"train": "training", "val": "validation"}.get(split, split)
    image_dir, mask_dir = root / "images" / folder_name, root / "annotations" / folder_name
    if not image_dir.is_dir() or not mask_dir.is_dir():
        raise DataError(f"{root}: ADE20K split {split!r} needs images/{folder_name}/ and annotations/{folder_name}/")
    samples, problems = _pair_by_stem(list_images(image_dir), list_images(mask_dir))
    value_map = {0: IGNORE_INDEX, **{i: i - 1 for i in range(1, 151)}}
    return SegmentationDataset(samples, ADE20K, MaskDecoder(ADE20K, value_map=value_map), name="ade20k",
                               root=root, split=split, problems=problems)


def _labelme_classes(root: Path, class_names: list[str] | None) -> ClassInfo:
    if class_names:
        return ClassInfo(names=list(class_names))
    labels_file = next((p for p in (root / "labels.txt", root.parent / "labels.txt") if p.is_file()), None)
    if labels_file is None:  # beside the JSON files, or beside their folder as in Labelme's examples
        raise DataError(f"{root}: Labelme datasets need labels.txt (one class per line, background first) in it or "
                        "beside it, --classes a,b or data.options.classes")
    names = [n.strip() for n in labels_file.read_text().splitlines() if n.strip() and n.strip() != "__ignore__"]
    return ClassInfo(names=names)


def labelme(root: str | Path | None = None, split: str | None = None, *, classes: list[str] | None = None,
            **_: object) -> SegmentationDataset:
    """Labelme JSON annotations: polygons, rectangles and circles rasterised to class masks."""
    root = resolve_root(root, "labelme")
    class_info = _labelme_classes(root, classes)
    folder_path = root / split if split and (root / split).is_dir() else root
    files = sorted(folder_path.glob("*.json"))
    if split and folder_path == root:
        list_file = next((p for p in (root / "splits" / f"{split}.txt", root / f"{split}.txt") if p.is_file()), None)
        if list_file is None:
            raise DataError(f"{root}: no split {split!r}: expected {root / split}/ or {root / (split + '.txt')}")
        wanted = set(_read_split_list(list_file))
        files = [f for f in files if f.stem in wanted]
    samples = []
    for json_file in files:
        image = next((json_file.with_suffix(ext) for ext in IMAGE_EXTENSIONS
                      if json_file.with_suffix(ext).is_file()), None)
        samples.append(Sample(image, json_file))
    return SegmentationDataset(samples, class_info, LabelmeDecoder(class_info), name="labelme", root=root,
                               split=split)


LAYOUTS: dict[str, Callable[..., SegmentationDataset]] = {
    "folder": folder, "camvid": camvid, "voc": voc, "cityscapes": cityscapes, "ade20k": ade20k, "labelme": labelme,
}
"""The layout registry: name -> reader(root, split, **options). ``data.layout`` and ``--layout`` take any name."""


def register_layout(name: str) -> Callable:
    """Decorator: register a dataset reader ``reader(root, split, **options) -> SegmentationDataset`` as ``name``."""

    def decorator(reader: Callable[..., SegmentationDataset]) -> Callable[..., SegmentationDataset]:
        if name in LAYOUTS:
            raise ValueError(f"dataset layout {name!r} is registered twice")
        LAYOUTS[name] = reader
        return reader

    return decorator


def detect_layout(root: str | Path) -> str:
    """Guess a dataset's layout from the folders it holds."""
    root = Path(root)
    if any(p.is_dir() and p.name.endswith("annot") and (root / p.name[: -len("annot")]).is_dir()
           for p in root.iterdir()):  # train/ + trainannot/, or only test/ + testannot/
        return "camvid"
    if any((root / p / "JPEGImages").is_dir() for p in (".", "VOC2012", "VOCdevkit/VOC2012")):
        return "voc"
    if (root / "leftImg8bit").is_dir():
        return "cityscapes"
    if (root / "ADEChallengeData2016").is_dir() or (root / "images" / "training").is_dir():
        return "ade20k"
    has_images = any((root / name).is_dir() for name in ("images", "image", "img"))
    if has_images and any((root / name).is_dir() for name in ("masks", "mask", "labels", "label", "annotations")):
        return "folder"
    if any(p.name != "classes.json" for p in (*root.glob("*.json"), *root.glob("*/*.json"))):
        return "labelme"
    return "folder"


def open_dataset(layout: str | None, root: str | Path | None, split: str | None, **options: object
                 ) -> SegmentationDataset:
    """Build the dataset of ``layout`` (detected from ``root`` when None) for ``split``."""
    if layout in (None, "auto"):
        if root is None:
            raise DataError("give a dataset root (--data PATH) or a layout name")
        layout = detect_layout(resolve_root(root, "folder"))
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown dataset layout {layout!r}{closest(layout, LAYOUTS)}; "
                          f"choose one of {', '.join(LAYOUTS)}")
    if split is None and layout not in ("folder", "labelme"):
        split = "train"
    dataset = LAYOUTS[layout](root, split, **options)
    if len(dataset) == 0 and not dataset.problems:
        raise DataError(f"{dataset.root}: split {split!r} of the {layout} layout holds no samples")
    return dataset
