"""The REST API and the page, through FastAPI's test client, including every kind of bad input."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixelseg.apps.server import ServerSettings, create_app
from pixelseg.models import create, save_model
from tests.test_cutout import scene


def png_bytes(array: np.ndarray, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    model = create("enet", num_classes=2).eval()
    model.meta["classes"] = {"names": ["background", "thing"], "palette": [[0, 0, 0], [255, 0, 0]]}
    save_model(model, folder / "tiny")
    (folder / "notes.txt").write_text("not a model")
    return folder


@pytest.fixture(scope="module")
def client(models_dir):
    return TestClient(create_app(ServerSettings(models_dir=models_dir, max_upload_bytes=300_000,
                                                max_pixels=1_000_000)))


def upload(array=None, name="photo.png", data=None):
    return {"file": (name, data if data is not None else png_bytes(array if array is not None else scene()[0]),
                     "image/png")}


def test_page_assets_and_schema_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "pixelseg" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN: every asset comes from this server
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/api/segment", "/api/cutout", "/api/models"} <= set(schema["paths"])
    form = schema["components"]["schemas"]["Body_segment_api_segment_post"]["properties"]
    assert form["output"]["enum"] == ["labels", "color", "json"]  # the choices are in the schema, checked by FastAPI


def test_models_and_methods_are_listed(client):
    listing = client.get("/api/models").json()
    names = [m["name"] for m in listing["models"]]
    assert "tiny" in names and "notes" not in names
    tiny = next(m for m in listing["models"] if m["name"] == "tiny")
    assert tiny["classes"] == ["background", "thing"]
    assert "grabcut" in listing["methods"] and "otsu" in listing["methods"]


def test_listing_the_models_does_not_choose_their_backends(models_dir, monkeypatch):
    """The backend choice measures speed and accuracy on a model's first use (half a minute on 2 busy cores):
    the page's model list must not wait for it."""
    import pixelseg.loading

    def refuse(*args, **kwargs):
        raise AssertionError("listing the models chose a backend")

    monkeypatch.setattr(pixelseg.loading, "load_fastest", refuse)
    listing = TestClient(create_app(ServerSettings(models_dir=models_dir))).get("/api/models").json()
    assert {"camvid", "portrait", "tiny"} <= {m["name"] for m in listing["models"]}


def test_a_model_loading_for_its_first_request_does_not_hold_up_the_others(models_dir, monkeypatch):
    import pixelseg.loading

    loading, release, loaded = threading.Event(), threading.Event(), threading.Event()
    original = pixelseg.loading.load_fastest

    def slow(source, **kwargs):  # a backend choice measuring speed and accuracy
        loading.set()
        release.wait(10)
        loaded.set()
        return original(source, verbose=False)

    monkeypatch.setattr(pixelseg.loading, "load_fastest", slow)
    with TestClient(create_app(ServerSettings(models_dir=models_dir))) as client:
        results = {}
        worker = threading.Thread(target=lambda: results.update(
            segment=client.post("/api/segment", files=upload(), data={"model": "tiny"})))
        worker.start()
        assert loading.wait(10)
        health = client.get("/api/health").status_code
        answered_while_loading = not loaded.is_set()
        release.set()
        worker.join(30)
    assert health == 200 and answered_while_loading
    assert results["segment"].status_code == 200


def test_segment_with_a_model_in_every_output(client):
    image = scene()[0]
    labels = client.post("/api/segment", files=upload(image), data={"model": "tiny"})
    assert labels.status_code == 200 and labels.headers["content-type"] == "image/png"
    assert np.asarray(Image.open(io.BytesIO(labels.content))).shape == image.shape[:2]
    color = client.post("/api/segment", files=upload(image), data={"model": "tiny", "output": "color"})
    assert np.asarray(Image.open(io.BytesIO(color.content))).shape == image.shape
    summary = client.post("/api/segment", files=upload(image), data={"model": "tiny", "output": "json",
                                                                       "crf": "true"}).json()
    assert summary["width"] == 160 and abs(sum(c["share"] for c in summary["classes"]) - 1) < 1e-6
    assert {c["name"] for c in summary["classes"]} <= {"background", "thing"}


def test_segment_with_a_method_and_cut_out(client):
    image, truth = scene()
    regions = client.post("/api/segment", files=upload(image), data={"method": "otsu", "output": "json"}).json()
    assert len(regions["classes"]) == 2
    cut = client.post("/api/cutout", files=upload(image), data={"box": "25,15,135,105"})
    assert cut.status_code == 200
    rgba = np.asarray(Image.open(io.BytesIO(cut.content)))
    assert rgba.shape == (120, 160, 4) and ((rgba[..., 3] > 127) == truth).mean() > 0.97
    green = client.post("/api/cutout", files=upload(image), data={"box": "25,15,135,105", "background": "#00ff00"})
    assert np.asarray(Image.open(io.BytesIO(green.content))).shape == (120, 160, 3)
    # no classes: all but "background"; nothing at all: the shipped portrait model
    for data in ({"model": "tiny"}, {}):
        cut = client.post("/api/cutout", files=upload(image), data=data)
        assert cut.status_code == 200, cut.text
        assert np.asarray(Image.open(io.BytesIO(cut.content))).shape == (120, 160, 4)


@pytest.mark.parametrize(("files", "data", "status", "message"), [
    (upload(data=b"x" * 400_000), {}, 413, "larger than the limit"),
    (upload(data=b""), {}, 400, "empty"),
    (upload(name="notes.png", data=b"plain text, not an image"), {}, 400, "not a readable image"),
    (upload(data=png_bytes(np.zeros((2000, 1000, 3), np.uint8))), {}, 400, "more than the limit"),
    (upload(), {"model": "../../etc/passwd"}, 404, "no model"),
    (upload(), {"model": "nope"}, 404, "no model"),
    (upload(), {"method": "otsy"}, 404, "no method"),
    (upload(), {"output": "gif"}, 422, "output must be"),
])
def test_bad_segment_requests_get_4xx_with_a_reason(client, files, data, status, message):
    response = client.post("/api/segment", files=files, data=data)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_truncated_images_are_rejected(client):
    whole = png_bytes(scene()[0], "JPEG")
    response = client.post("/api/segment", files=upload(data=whole[: len(whole) // 2], name="cut.jpg"))
    assert response.status_code == 400 and "not a readable image" in response.json()["detail"]


@pytest.mark.parametrize(("data", "status", "message"), [
    ({"box": "1,2,3"}, 422, "box must be"),
    ({"box": "5,5,5,50"}, 400, "empty"),
    ({"model": "tiny", "classes": "car"}, 400, "not one of the model's classes"),
    ({"box": "25,15,135,105", "background": "/etc/passwd"}, 422, "reads no files"),
])
def test_bad_cutout_requests_get_4xx_with_a_reason(client, data, status, message):
    response = client.post("/api/cutout", files=upload(), data=data)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_excess_requests_wait_then_get_503_and_the_server_stays_up(models_dir):
    app = create_app(ServerSettings(models_dir=models_dir, max_concurrent=1, queue_timeout=0.2))
    release = threading.Event()
    started = threading.Event()

    import pixelseg.classical as inference

    original = inference.predict_regions

    def slow(method, image, **options):
        started.set()
        release.wait(5)
        return original(method, image, **options)

    inference.predict_regions = slow
    try:
        with TestClient(app) as client:
            results = {}

            def first():
                results["first"] = client.post("/api/segment", files=upload(), data={"method": "otsu"})

            worker = threading.Thread(target=first)
            worker.start()
            assert started.wait(5)
            second = client.post("/api/segment", files=upload(), data={"method": "otsu"})
            assert second.status_code == 503 and "busy" in second.json()["detail"]
            release.set()
            worker.join(10)
            assert results["first"].status_code == 200
            assert client.get("/api/health").json()["status"] == "ok"
    finally:
        inference.predict_regions = original
        release.set()
