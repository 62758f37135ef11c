"""``pixelseg serve``: a REST API and a single web page for segmentation and cutouts (FastAPI).

Endpoints (the OpenAPI schema is at ``/openapi.json``, the interactive docs at ``/docs``):

- ``GET /api/models``: the models (shipped ones and those in the models folder) and the classical methods.
- ``POST /api/segment``: an uploaded image segmented by a model (optionally with a dense CRF) or a method;
  ``output=labels`` (index PNG), ``color`` (colour PNG) or ``json`` (classes with pixel counts and shares).
- ``POST /api/cutout``: an RGBA PNG of the foreground, from a box (GrabCut), a model's classes, or both; neither:
  the shipped portrait model (one click).
- ``GET /``: the page (upload or drop an image, pick a model or method, draw a box, see the overlay and the
  cutout side by side, toggle classes, download). Its assets are served by the package; nothing from a CDN.

Input hygiene: uploads above ``max_upload_bytes`` get 413; files that are not images, truncated images and images
above ``max_pixels`` get 400 with the reason; at most ``max_concurrent`` inferences run at once and a request that
cannot start within ``queue_timeout`` seconds gets 503; an inference longer than ``inference_timeout`` gets 504;
models are looked up by name among the shipped ones and the files directly inside ``models_dir``, never by path.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from pixelseg.constants import REFINE_METHODS
from pixelseg.errors import PixelsegError
from pixelseg.io import encode_png

STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass
class ServerSettings:
    models_dir: Path | None = None
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_concurrent: int = 2
    queue_timeout: float = 10.0
    inference_timeout: float = 120.0


class ModelStore:
    """Models by name: the shipped ones and the model folders / checkpoints directly inside ``models_dir``.
    Loaded once, on first use."""

    def __init__(self, models_dir: Path | None) -> None:
        from pixelseg.loading import SHIPPED_DIR

        self.sources: dict[str, Path] = {}
        for directory in (SHIPPED_DIR, models_dir):
            if directory is None or not Path(directory).is_dir():
                continue
            for entry in sorted(Path(directory).iterdir()):
                if (entry / "config.json").is_file() or entry.suffix in (".pt", ".onnx"):
                    self.sources.setdefault(entry.stem if entry.is_file() else entry.name, entry.resolve())
        self.loaded: dict[str, object] = {}
        self.classes_of: dict[str, object] = {}
        self.lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self.sources)

    def classes(self, name: str):
        """A model's classes, read without choosing its backend (which measures speed and accuracy on first use)."""
        from pixelseg.loading import load

        if name not in self.classes_of:
            model = self.loaded.get(name) or load(self.sources[name])
            self.classes_of[name] = model.classes
        return self.classes_of[name]

    def get(self, name: str):
        """The model on the fastest path that keeps its accuracy (an .onnx file runs as it is), loaded once: two
        requests for a model not loaded yet wait for one load."""
        from pixelseg.loading import load_fastest

        if name not in self.sources:  # a name, never a path: nothing outside the folders can be reached
            raise KeyError(name)
        with self.lock:
            if name not in self.loaded:
                self.loaded[name] = load_fastest(self.sources[name])
        return self.loaded[name]


@dataclass
class Services:
    """What the routes share, one per application: the limits, the model store and the inference slots."""

    settings: ServerSettings
    store: ModelStore
    slots: asyncio.Semaphore

    async def read_upload(self, upload: UploadFile) -> np.ndarray:
        """The uploaded image, decoded safely within the upload and pixel limits (413 / 400 otherwise)."""
        from pixelseg.io import decode_image

        limit = self.settings.max_upload_bytes
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"upload is larger than the limit of {limit:,} bytes")
        if not data:
            raise HTTPException(400, "the upload is empty")
        try:
            return decode_image(data, Path(upload.filename or "upload").name, self.settings.max_pixels)
        except PixelsegError as error:
            raise HTTPException(400, str(error)) from None

    async def model_named(self, name: str):
        """A model by name, loaded in a worker thread: its first load chooses a backend, which measures speed and
        accuracy for seconds, and must not hold up the other requests."""
        return await run_in_threadpool(self._model_named, name)

    def _model_named(self, name: str):
        try:
            return self.store.get(name)
        except KeyError:
            available = ", ".join(self.store.names()) or "none"
            raise HTTPException(404, f"no model {name!r}; available: {available}") from None
        except PixelsegError as error:
            raise HTTPException(500, f"model {name!r} cannot be loaded: {error}") from None

    async def run_limited(self, function, *args):
        """Run ``function`` in a worker thread when one of the ``max_concurrent`` slots frees up."""
        settings = self.settings
        try:
            await asyncio.wait_for(self.slots.acquire(), timeout=settings.queue_timeout)
        except TimeoutError:
            raise HTTPException(503, "the server is busy; try again shortly",
                                headers={"Retry-After": "5"}) from None
        try:
            return await asyncio.wait_for(run_in_threadpool(function, *args), timeout=settings.inference_timeout)
        except TimeoutError:
            raise HTTPException(504, f"inference took longer than {settings.inference_timeout:.0f} s") from None
        except PixelsegError as error:
            raise HTTPException(400, str(error)) from None
        finally:
            self.slots.release()


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDependency = Annotated[Services, Depends(get_services)]
Output = Literal["labels", "color", "json"]
router = APIRouter()


@router.get("/", include_in_schema=False)
async def page():
    return FileResponse(STATIC_DIR / "index.html")


@router.get("/api/models")
def list_models(services: ServicesDependency) -> dict:
    """The models (shipped ones and those in the models folder) with their classes, and the classical methods.
    A plain function: FastAPI runs it in a worker thread, so reading the models never holds up other requests."""
    from pixelseg.classical import METHODS

    models = []
    for name in services.store.names():
        try:
            classes = services.store.classes(name)
        except PixelsegError:
            continue
        models.append({"name": name, "classes": classes.names, "palette": [list(c) for c in classes.palette]})
    return {"models": models, "methods": list(METHODS)}


def _summary(prediction) -> dict:
    labels, classes = prediction.labels, prediction.classes
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=classes.num_classes)
    total = int(labels.size)
    return {"width": int(labels.shape[1]), "height": int(labels.shape[0]),
            "classes": [{"index": i, "name": classes.names[i] if i < classes.num_classes else f"region_{i}",
                         "pixels": int(c), "share": c / total} for i, c in enumerate(counts.tolist()) if c]}


@router.post("/api/segment")
async def segment(services: ServicesDependency, file: UploadFile = File(...), model: str | None = Form(None),
                  method: str | None = Form(None), output: Output = Form("labels"), crf: bool = Form(False)):
    """Segment an image with ``model`` (default: the first available) or a classical ``method``."""
    from pixelseg import classical
    from pixelseg.classical import METHODS
    from pixelseg.inference import predict_image
    from pixelseg.io import label_image

    if method and method not in METHODS:
        raise HTTPException(404, f"no method {method!r}; available: {', '.join(METHODS)}")
    image = await services.read_upload(file)
    if method:
        prediction = await services.run_limited(classical.predict_regions, method, image)
    else:
        name = model or next(iter(services.store.names()), None)
        if name is None:
            raise HTTPException(404, "no model is available; start the server with --models-dir")
        chosen = await services.model_named(name)
        crf_model = None
        if crf:
            from pixelseg.crf import DenseCRF

            crf_model = DenseCRF()
        prediction = await services.run_limited(lambda: predict_image(chosen, image, crf=crf_model))
    if output == "json":
        return _summary(prediction)
    if output == "color":
        return Response(encode_png(prediction.colorize()), media_type="image/png")
    return Response(encode_png(label_image(prediction.labels)), media_type="image/png")


@router.post("/api/cutout")
async def cutout(services: ServicesDependency, file: UploadFile = File(...), box: str | None = Form(None),
                 model: str | None = Form(None), classes: str | None = Form(None), refine: bool | None = Form(None),
                 refine_method: str = Form(REFINE_METHODS[0]), background: str | None = Form(None)):
    """An RGBA PNG (or RGB over ``background``) of the foreground: ``box`` = "x0,y0,x1,y1" and/or ``model``
    with ``classes`` = "car,pedestrian" (default: all but "background"). Neither: the shipped portrait model cuts
    the person out, with soft edges unless ``refine`` is false; ``refine_method`` = guided (default) or matting
    (closed-form matting, where pymatting is installed)."""
    from pixelseg.apps.cutout import (
        CutoutSettings,
        cutout_image,
        default_model,
        default_refine,
        parse_box,
        parse_class_names,
        parse_colour,
    )

    try:
        parsed_box = parse_box(box)
    except PixelsegError:
        raise HTTPException(422, "box must be x0,y0,x1,y1 in pixels") from None
    if background and background != "blur" and parse_colour(background) is None:
        raise HTTPException(422, "background must be a colour (#rrggbb, r,g,b, white) or 'blur'; the server "
                                 "reads no files")
    if refine_method not in REFINE_METHODS:
        raise HTTPException(422, f"refine_method must be one of {', '.join(REFINE_METHODS)}")
    image = await services.read_upload(file)
    name = default_model(parsed_box, None, model)
    chosen = await services.model_named(name) if name else None
    cut = CutoutSettings(box=parsed_box, model=chosen, classes=parse_class_names(classes),
                         refine=default_refine(refine, parsed_box, None), refine_method=refine_method,
                         background=background)
    result, _ = await services.run_limited(cutout_image, image, cut)
    return Response(encode_png(result), media_type="image/png")


@router.get("/api/health")
async def health(services: ServicesDependency) -> dict:
    limits = json.loads(json.dumps(services.settings.__dict__, default=str))
    return {"status": "ok", "models": services.store.names(), "limits": limits}


async def pixelseg_error(_: Request, error: PixelsegError):
    return JSONResponse(status_code=400, content={"detail": str(error)})


async def validation_error(_: Request, error: RequestValidationError):
    """422 with one readable sentence per bad field ("output must be 'labels', 'color' or 'json'")."""
    problems = []
    for item in error.errors():
        field = str(item.get("loc", ["request"])[-1])
        expected = (item.get("ctx") or {}).get("expected")
        problems.append(f"{field} must be {expected}" if expected else f"{field}: {item.get('msg', 'invalid')}")
    return JSONResponse(status_code=422, content={"detail": "; ".join(problems)})


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI application; run it with uvicorn (``pixelseg serve`` does)."""
    settings = settings or ServerSettings()
    app = FastAPI(title="pixelseg", description="Semantic segmentation and cutouts.", version="0.1.0")
    app.state.services = Services(settings, ModelStore(settings.models_dir), asyncio.Semaphore(settings.max_concurrent))
    app.state.settings, app.state.store = settings, app.state.services.store
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(PixelsegError, pixelseg_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(router)
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, settings: ServerSettings | None = None) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
