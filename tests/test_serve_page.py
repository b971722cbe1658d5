"""The page ``edgecls serve`` ships, in a real headless Chromium (Debian's ``chromium`` driven by Playwright).

It loads, shows live frames from an ffmpeg MJPEG stream on loopback with labels that change as the stream's hue
turns, and classifies an image dropped on it; a screenshot is saved (``EDGECLS_SCREENSHOT=FILE`` keeps a copy).
Playwright never downloads a browser here: it launches the system's chromium (``make stream-tools`` installs it).
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="the page test needs the dev extra (playwright)")
pytest.importorskip("starlette", reason="edgecls serve needs the serve extra: pip install 'edgecls[serve]'")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

DROP_FILE = """async ([b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "image/jpeg" }));
  document.getElementById("drop").dispatchEvent(
    new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
}"""


@pytest.mark.stream
def test_page_shows_live_labels_and_classifies_a_dropped_image(colour_model, colour_stream, serve_process,
                                                               tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make stream-tools installs it)")
    server = serve_process(str(colour_model), "--source", colour_stream.url)
    ok, buf = cv2.imencode(".jpg", np.full((90, 120, 3), (220, 40, 30), np.uint8))  # BGR: blue dominates
    assert ok
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 620})
            page.goto(server.url + "/")
            page.wait_for_selector("#live:not([hidden])", timeout=10_000)
            page.wait_for_function("document.getElementById('stream').naturalWidth === 160", timeout=10_000)
            labels, frames = set(), set()
            deadline = time.monotonic() + 10
            while (len(labels) < 2 or len(frames) < 5) and time.monotonic() < deadline:
                top = page.inner_text("#live-labels li:first-child") if page.query_selector("#live-labels li") else ""
                if top:
                    labels.add(top.split()[0])
                    frames.add(page.inner_text("#live-meta").split(" · ")[0])
                time.sleep(0.1)
            assert len(labels) >= 2 and labels <= {"red", "green", "blue"}, labels  # the hue turns
            assert len(frames) >= 5, frames  # new frames keep arriving
            page.evaluate(DROP_FILE, [base64.b64encode(buf.tobytes()).decode(), "blue.jpg"])
            page.wait_for_function("document.querySelectorAll('#upload-labels li').length === 3", timeout=10_000)
            assert page.inner_text("#upload-labels li:first-child").startswith("blue 100.0%")
            assert page.inner_text("#upload-meta").startswith("blue.jpg")
            assert page.inner_text("#model").startswith("colour.onnx")
            shot = tmp_path / "serve_page.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (620, 1100)
    if os.environ.get("EDGECLS_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["EDGECLS_SCREENSHOT"])
