"""Cut the foreground out of images: an RGBA PNG per image, the background transparent or replaced.

The foreground comes from a box (GrabCut, no model needed), from a segmentation model's classes, or from both
(the model's probabilities seed GrabCut inside the box). With none of them, the shipped ``portrait`` model cuts the
person out (rembg's one-click use). The alpha can be refined along the boundary with a guided filter (He, Sun &
Tang, ECCV 2010) so that fine structures such as hair get soft, not jagged, edges, or by closed-form matting
(Levin, Lischinski & Weiss, CVPR 2006 / TPAMI 2008, through pymatting) on the same band. Where the alpha is soft,
the foreground's own colours are estimated (blur-fusion, Forte & Pitié 2021) so that the old background does not
show through as a halo on the new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import ImageColor

from pixelseg.constants import REFINE_METHODS
from pixelseg.errors import ConfigError, DataError
from pixelseg.io import read_image, write_image
from pixelseg.utils import progress_bar

DEFAULT_MODEL = "portrait"
"""The shipped model that cuts out when nothing says what the foreground is."""


@dataclass
class CutoutSettings:
    box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in pixels
    scribbles: str | Path | None = None  # grey image, image-sized: 255 = surely foreground, 0 = surely background
    model: object | None = None  # a SegmentationModel
    classes: Sequence[str] = ()  # the model's classes that are foreground (default: all but "background")
    refine: bool = False  # soften the alpha along the boundary
    refine_radius: int = 8
    refine_method: str = "guided"  # guided (guided filter) | matting (closed-form matting, pymatting)
    background: str | None = None  # None (transparent), a colour (#rrggbb, "white", "0,255,0"), an image, "blur"
    iterations: int = 5


def parse_box(text: str | None) -> tuple[int, int, int, int] | None:
    """"x0,y0,x1,y1" (pixels) as a tuple; None for no text; a ConfigError otherwise."""
    if not text:
        return None
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"box {text!r}: expected x0,y0,x1,y1 in pixels, e.g. 40,20,300,260") from None
    return x0, y0, x1, y1


def parse_class_names(text: str | None) -> list[str]:
    """"car, pedestrian" as ["car", "pedestrian"]; [] for no text."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def default_model(box, scribbles, model: str | None) -> str | None:
    """The model to cut out with: the one named, else :data:`DEFAULT_MODEL` when no box or scribbles say what the
    foreground is, else none (GrabCut)."""
    return model if model or box is not None or scribbles else DEFAULT_MODEL


def default_refine(refine: bool | None, box, scribbles) -> bool:
    """Refine the alpha when asked to, and by default for a cutout by a model alone (its mask comes from a
    low-resolution prediction; GrabCut's follows the image's edges already)."""
    return refine if refine is not None else box is None and not scribbles


def class_indices(model, names: Sequence[str]) -> list[int]:
    """Indices of ``names`` among the model's classes (case-insensitive); an unknown name is a ConfigError. No
    names: every class but one called "background" (a portrait or binary model's foreground)."""
    known = {name.lower(): index for index, name in enumerate(model.classes.names)}
    if not names:
        if "background" not in known:
            raise ConfigError(f"--model needs --classes: the classes that are foreground, e.g. "
                              f"{','.join(model.classes.names[:2])} (the model has no 'background' class to leave "
                              f"out by default)")
        return [index for name, index in known.items() if name != "background"]
    missing = [name for name in names if name.lower() not in known]
    if missing:
        raise ConfigError(f"class {missing[0]!r} is not one of the model's classes: {', '.join(model.classes.names)}")
    return [known[name.lower()] for name in names]


def _check_foreground_given(settings: CutoutSettings) -> None:
    if settings.model is None and settings.box is None and settings.scribbles is None:
        raise ConfigError("say what the foreground is: --box x0,y0,x1,y1, --scribbles PNG and/or --model with "
                          "--classes")


def read_scribbles(path: str | Path, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(sure foreground, sure background) boolean masks from a grey scribble image: 255 and 0; other values
    (for example a mid-grey canvas) are unknown."""
    from pixelseg.io import read_label_image

    values = read_label_image(path)
    if values.ndim == 3:
        values = values[..., :3].mean(2)
    if values.shape != shape:
        raise ConfigError(f"{path}: scribbles are {values.shape[1]}x{values.shape[0]}, the image {shape[1]}x{shape[0]}")
    return values == 255, values == 0


def foreground_mask(image: np.ndarray, settings: CutoutSettings) -> np.ndarray:
    """(H, W) float mask in 0..1 from a box, a model's classes, or both."""
    from pixelseg.classical import grabcut

    _check_foreground_given(settings)
    prior = None
    if settings.model is not None:
        from pixelseg.inference import predict_image

        indices = class_indices(settings.model, settings.classes)
        prior = predict_image(settings.model, image).probabilities[indices].sum(0)
        if settings.box is None and settings.scribbles is None:
            return (prior > 0.5).astype(np.float32)
    foreground = background = None
    if settings.scribbles is not None:
        foreground, background = read_scribbles(settings.scribbles, image.shape[:2])
    try:
        return grabcut(image, box=settings.box, foreground=foreground, background=background, prior=prior,
                       iterations=settings.iterations).astype(np.float32)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, epsilon: float = 1e-3) -> np.ndarray:
    """Edge-preserving smoothing of ``source`` (H, W, 0..1) steered by the grey ``guide`` (H, W, 0..1)."""
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(x):
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = mean(guide), mean(source)
    covariance = mean(guide * source) - mean_i * mean_p
    variance = mean(guide * guide) - mean_i * mean_i
    a = covariance / (variance + epsilon)
    b = mean_p - a * mean_i
    return mean(a) * guide + mean(b)


def refine_alpha(image: np.ndarray, mask: np.ndarray, radius: int = 8) -> np.ndarray:
    """Soft alpha on a band of ``radius`` pixels around the mask's boundary; hard 0/1 elsewhere."""
    guide = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    binary, band = boundary_band(mask, radius)
    smooth = np.clip(guided_filter(guide, binary.astype(np.float32), radius), 0, 1)
    return np.where(band, smooth, binary.astype(np.float32))


def boundary_band(mask: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(hard 0/1 mask, band of ``radius`` pixels either side of its boundary)."""
    binary = (mask > 0.5).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return binary, cv2.dilate(binary, kernel) != cv2.erode(binary, kernel)


def matting_alpha(image: np.ndarray, mask: np.ndarray, radius: int = 8) -> np.ndarray:
    """Closed-form matting (Levin et al. 2008) with the band of ``radius`` pixels around the mask's boundary as the
    trimap's unknown region: the mask's inside is foreground, its outside background, the band solved for."""
    try:
        from pymatting import estimate_alpha_cf
    except ImportError:
        raise ConfigError("closed-form matting needs pymatting: pip install 'pixelseg[matting]'") from None
    binary, band = boundary_band(mask, radius)
    if not band.any():
        return binary.astype(np.float32)
    trimap = np.where(band, 0.5, binary.astype(np.float64))
    alpha = estimate_alpha_cf(image[..., :3].astype(np.float64) / 255, trimap)
    return np.where(band, np.clip(alpha, 0, 1), binary).astype(np.float32)


def refined_alpha(image: np.ndarray, mask: np.ndarray, method: str = "guided", radius: int = 8) -> np.ndarray:
    """The mask's alpha refined on its boundary band by ``method`` (:data:`REFINE_METHODS`)."""
    if method == "guided":
        return refine_alpha(image, mask, radius)
    if method == "matting":
        return matting_alpha(image, mask, radius)
    raise ConfigError(f"refinement {method!r} is not one of {', '.join(REFINE_METHODS)}")


def parse_colour(text: str) -> tuple[int, int, int] | None:
    """A colour as Pillow's ``ImageColor`` reads it ("#rrggbb", "#rgb", "rgb(0, 255, 0)", a CSS name such as
    "white"), or "r,g,b"; None when ``text`` is none of these."""
    text = text.strip().lower()
    parts = text.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() and int(p) <= 255 for p in parts):
        return tuple(int(p) for p in parts)  # type: ignore[return-value]
    try:
        return ImageColor.getrgb(text)[:3]  # type: ignore[return-value]
    except ValueError:
        return None


def foreground_colours(image: np.ndarray, alpha: np.ndarray, radii: tuple[int, ...] = (30, 4)) -> np.ndarray:
    """The foreground's own colours F (uint8 RGB) under a soft ``alpha``, from image = alpha F + (1 - alpha) B:
    blur-fusion foreground estimation (Forte & Pitié, "Approximate fast foreground colour estimation", ICIP 2021),
    their two passes, with box sizes 30 and 4 instead of the paper's 90 and 6 (chosen on portraits of 300x400
    composited over other photos with a known soft alpha: the colour error under the alpha fell to 0.71x that of
    the plain image, 0.80x with 90 and 6; docs/models/portrait.md). Each pass takes local means of F (weighted by
    alpha) and B (by 1 - alpha) and corrects F so that alpha F + (1 - alpha) B gives the image back. F is only
    estimated where alpha is soft: where it is 1, F is the image; where it is 0, F is not seen (the image is kept)."""
    weights = np.ascontiguousarray(alpha, dtype=np.float32)
    soft = np.flatnonzero((weights > 0) & (weights < 1))  # flat indices: gathers 3x faster than a boolean mask
    if not soft.size:
        return image
    pixels = image.astype(np.float32) * np.float32(1 / 255)
    soft_alpha, soft_pixels = weights.reshape(-1)[soft, None], pixels.reshape(-1, 3)[soft]
    foreground_weighted = pixels * weights[..., None]  # F alpha and B (1 - alpha), F = B = the image to start
    background_weighted = pixels - foreground_weighted
    for step, radius in enumerate(radii):
        size = (radius, radius)
        blurred_alpha = cv2.blur(weights, size).reshape(-1, 1)
        blurred_background = cv2.blur(background_weighted, size).reshape(-1, 3)
        mean_foreground = cv2.blur(foreground_weighted, size).reshape(-1, 3)[soft] / (blurred_alpha[soft] + 1e-5)
        mean_background = blurred_background[soft] / (1 - blurred_alpha[soft] + 1e-5)
        estimate = np.clip(mean_foreground + soft_alpha * (soft_pixels - soft_alpha * mean_foreground
                                                           - (1 - soft_alpha) * mean_background), 0, 1)
        if step < len(radii) - 1:  # the next pass's F alpha and B (1 - alpha), B the mean background everywhere
            foreground_weighted.reshape(-1, 3)[soft] = estimate * soft_alpha  # elsewhere: the image, or 0
            background = blurred_background / (1 - blurred_alpha + 1e-5)
            background_weighted = background.reshape(pixels.shape) * (1 - weights[..., None])
    colours = image.copy()
    colours.reshape(-1, 3)[soft] = np.round(estimate * 255).astype(np.uint8)
    return colours


def composite(image: np.ndarray, alpha: np.ndarray, background: str | None,
              foreground: np.ndarray | None = None) -> np.ndarray:
    """RGBA (transparent background) or RGB over a colour, an image (resized to fit) or the image blurred. Where
    the alpha is soft, the foreground's colours (``foreground``, by default :func:`foreground_colours`) replace the
    image's, which still hold some of the old background."""
    if foreground is None:
        foreground = foreground_colours(image, alpha)
    if background is None:
        return np.dstack([foreground, np.round(alpha * 255).astype(np.uint8)])
    height, width = image.shape[:2]
    if background == "blur":
        behind = cv2.GaussianBlur(image, (0, 0), sigmaX=max(3.0, max(height, width) / 60))
    elif (colour := parse_colour(background)) is not None:
        behind = np.empty_like(image)
        behind[:] = colour
    elif Path(background).expanduser().is_file():
        behind = cv2.resize(read_image(Path(background).expanduser()), (width, height), interpolation=cv2.INTER_AREA)
    else:
        raise ConfigError(f"--background {background!r}: not a colour (#rrggbb, r,g,b, white...), 'blur' or an "
                          "existing image file")
    weight = alpha[..., None]
    return np.round(foreground * weight + behind * (1 - weight)).astype(np.uint8)


@dataclass
class CutoutSummary:
    written: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    foreground_shares: list[float] = field(default_factory=list)


def cutout_image(image: np.ndarray, settings: CutoutSettings) -> tuple[np.ndarray, np.ndarray]:
    """(result image, alpha 0..1) for one RGB image."""
    mask = foreground_mask(image, settings)
    alpha = refined_alpha(image, mask, settings.refine_method, settings.refine_radius) if settings.refine else mask
    return composite(image, alpha, settings.background), alpha


def cutout_files(inputs: list[str | Path], out_dir: str | Path, settings: CutoutSettings, save_mask: bool = False,
                 progress: bool = True) -> CutoutSummary:
    """Cut out every input image into ``out_dir`` (``<stem>_cutout.png``, optionally ``<stem>_mask.png``);
    an unreadable image is reported and skipped; nothing is written over an input."""
    from pixelseg.engine.predict import plan_outputs

    _check_foreground_given(settings)
    if settings.model is not None:
        class_indices(settings.model, settings.classes)
    planned = plan_outputs(inputs, out_dir, ("cutout", "mask"))
    summary = CutoutSummary()
    for path in progress_bar(planned, progress, desc="cutting out"):
        try:
            image = read_image(path)
        except DataError as error:
            summary.failed.append(str(error))
            continue
        try:
            result, alpha = cutout_image(image, settings)
        except ConfigError as error:  # for example a box outside this image
            summary.failed.append(f"{path}: {error}")
            continue
        write_image(planned[path]["cutout"], result)
        summary.written.append(planned[path]["cutout"])
        if save_mask:
            write_image(planned[path]["mask"], np.round(alpha * 255).astype(np.uint8))
            summary.written.append(planned[path]["mask"])
        summary.foreground_shares.append(float(alpha.mean()))
    return summary
