"""The page in a real headless Chromium: upload an image, draw a box, cut out, download the result.

Needs Debian's chromium and the playwright package (`make test-browser` installs both and runs this file);
skipped where either is missing. The screenshot is kept in test-artifacts/cutout_page.png.
"""

from __future__ import annotations

import io
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_cutout import scene

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
pytestmark = pytest.mark.browser


@pytest.fixture()
def server_url(tmp_path):
    import uvicorn

    from pixelseg.apps.server import ServerSettings, create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(ServerSettings(models_dir=tmp_path)), host="127.0.0.1", port=port,
                            log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def open_page(playwright, server_url: str, image: Path):
    """(browser, page, page errors): the page in headless Chromium with ``image`` uploaded."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server_url)
    page.wait_for_selector("#source option", state="attached")
    page.set_input_files("#file", str(image))
    page.wait_for_function("!document.getElementById('cutout').disabled")
    return browser, page, errors


def screenshot_and_download(page, screenshot: str) -> np.ndarray:
    """Keep a screenshot in test-artifacts/ and return the downloaded cutout."""
    page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
    with page.expect_download() as download_info:
        page.click("#download-cutout")
    return np.asarray(Image.open(io.BytesIO(Path(download_info.value.path()).read_bytes())))


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test-browser installs it)")
def test_upload_draw_a_box_and_download_the_cutout(server_url, tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api")
    image, truth = scene()
    Image.fromarray(image).save(tmp_path / "photo.png")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser, page, errors = open_page(playwright, server_url, tmp_path / "photo.png")

        # Draw the box (25, 15) -> (135, 105) in image pixels on the displayed canvas.
        canvas = page.locator("#canvas").bounding_box()
        scale_x, scale_y = canvas["width"] / 160, canvas["height"] / 120
        page.mouse.move(canvas["x"] + 25 * scale_x, canvas["y"] + 15 * scale_y)
        page.mouse.down()
        page.mouse.move(canvas["x"] + 80 * scale_x, canvas["y"] + 60 * scale_y, steps=5)
        page.mouse.move(canvas["x"] + 135 * scale_x, canvas["y"] + 105 * scale_y, steps=5)
        page.mouse.up()
        assert "box" in page.locator("#status").inner_text()

        page.click("#cutout")
        page.wait_for_function("document.getElementById('status').textContent === 'cut out'", timeout=30_000)
        page.select_option("#source", "method:otsu")
        page.click("#segment")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('segmented')",
                               timeout=30_000)
        cutout = screenshot_and_download(page, "cutout_page.png")
        browser.close()
    assert not errors, errors
    assert cutout.shape == (120, 160, 4)
    assert ((cutout[..., 3] > 127) == truth).mean() > 0.95


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test-browser installs it)")
def test_one_click_cuts_a_person_out_of_a_real_portrait(server_url, tmp_path):
    from tests.test_shipped_model import portrait_photo

    playwright_api = pytest.importorskip("playwright.sync_api")
    image, truth = portrait_photo(5)  # a validation portrait: the shipped model never trained on it
    Image.fromarray(image).save(tmp_path / "portrait.jpg", quality=95)
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser, page, errors = open_page(playwright, server_url, tmp_path / "portrait.jpg")
        page.click("#cutout")  # one click: no box, no classes
        page.wait_for_function("document.getElementById('status').textContent === 'cut out'", timeout=60_000)
        cutout = screenshot_and_download(page, "portrait_page.png")
        browser.close()
    assert not errors, errors
    assert cutout.shape == (*truth.shape, 4)
    assert ((cutout[..., 3] > 127) == (truth == 1))[truth != 255].mean() > 0.93
