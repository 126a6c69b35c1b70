"""The web app in real headless Chromium, against a real API; and its proxy's answers when things go wrong."""

import re
import socket
import threading
import time

import numpy as np
import pytest
import requests

from cityseg.components.labels import CATEGORY_NAMES, category_colors
from tests.components.serve.conftest import BIN, HEIGHT, VAL_IDS, WIDTH
from tests.conftest import free_port, start_server, stop_server

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
PICTURES = ("img-image", "img-true", "img-pred")


def start_app(api: str, log, *options: str) -> tuple[str, object]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(BIN / "cityseg"), "app", "--api", api, "--port", str(port), *options]
    return url, start_server(argv, f"{url}/", log)


@pytest.fixture(scope="module")
def app_url(api_url, tmp_path_factory):
    url, process = start_app(api_url, tmp_path_factory.mktemp("app") / "app.log")
    yield url
    stop_server(process)


def test_pick_an_image_and_compare_masks_in_chromium(app_url, chromium_path, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 700})
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(app_url)
            page.wait_for_function("document.querySelectorAll('#ids button').length === 3")
            assert page.locator("#ids button").all_inner_texts() == list(VAL_IDS)
            assert page.locator("#legend li").all_inner_texts() == list(CATEGORY_NAMES)

            page.get_by_role("button", name=VAL_IDS[1]).click()
            page.wait_for_function(
                "['img-image', 'img-true', 'img-pred'].every(id => {"
                " const img = document.getElementById(id); return img.complete && img.naturalWidth > 0; })"
            )
            page.wait_for_selector("#scores:not([hidden])")
            page.screenshot(path=tmp_path / "webapp.png", full_page=True)

            sizes = [
                page.eval_on_selector(f"#{i}", "img => [img.naturalWidth, img.naturalHeight]")
                for i in PICTURES
            ]
            assert sizes == [[WIDTH, HEIGHT]] * 3
            # The prediction is drawn in flat's colour everywhere (the served model predicts flat).
            colors = page.eval_on_selector(
                "#img-pred",
                """img => { const c = document.createElement('canvas'); c.width = img.naturalWidth;
                   c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
                   const d = g.getImageData(0, 0, c.width, c.height).data; const seen = new Set();
                   for (let i = 0; i < d.length; i += 4) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
                   return [...seen]; }""",
            )
            assert colors == [",".join(str(v) for v in category_colors()[1])]

            # Flat everywhere against the hand-drawn truth: flat IoU = flat pixels / all non-void pixels.
            sky, car = 9 * WIDTH, 12 * 10
            flat = HEIGHT * WIDTH - WIDTH - sky - car
            iou = {
                row: page.inner_text(f"#scores tr[data-category={row}] td.iou") for row in CATEGORY_NAMES[1:]
            }
            assert iou == {
                "flat": f"{flat / (flat + sky + car):.3f}", "construction": "–", "object": "–", "nature": "–",
                "sky": "0.000", "human": "–", "vehicle": "0.000",
            }  # fmt: skip
            assert page.inner_text("#mean-iou") == f"{flat / (flat + sky + car) / 3:.3f}"
            assert page.inner_text("#pred-caption").startswith("Predicted mask (constant_1, ")
            assert page.inner_text("#model") == "model: constant_1"
            assert page.url.endswith(f"#{VAL_IDS[1]}")
            assert errors == []
        finally:
            browser.close()
    assert (tmp_path / "webapp.png").stat().st_size > 10_000


def test_proxy_forwards_api_answers_and_errors(app_url):
    assert requests.get(f"{app_url}/api/images", timeout=10).json()["count"] == 3
    missing = requests.get(f"{app_url}/api/images/nowhere", timeout=10)
    assert (missing.status_code, missing.json()) == (404, {"detail": "no image with id 'nowhere'"})
    bad = requests.post(f"{app_url}/api/predict", files={"file": ("a.txt", b"text")}, timeout=10)
    assert (bad.status_code, bad.json()["detail"]) == (415, "a.txt: not a PNG or JPEG image")
    assert requests.get(f"{app_url}/api/metrics", timeout=10).status_code == 404
    assert requests.get(f"{app_url}/secret.txt", timeout=10).status_code == 404
    assert (
        requests.get(f"{app_url}/webapp.js", timeout=10).headers["content-type"].startswith("text/javascript")
    )


def test_unreachable_api_is_a_502_with_its_url(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    url, process = start_app(dead, tmp_path / "app.log")
    try:
        response = requests.get(f"{url}/api/images", timeout=30)
    finally:
        stop_server(process)
    assert response.status_code == 502
    assert response.json()["detail"].startswith(f"the prediction API at {dead} cannot be reached")


@pytest.fixture
def hung_api():
    """A real socket that accepts connections and never answers; yields (its URL, the accepted sockets)."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    accepted = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    server.close()
    for connection in accepted:
        connection.close()


def test_hung_api_gets_504s_a_fast_503_and_the_page_still_loads(hung_api, tmp_path):
    api, accepted = hung_api
    options = ("--read-timeout", "3", "--max-in-flight", "2")
    url, process = start_app(api, tmp_path / "app.log", *options)
    answers = []

    def call() -> None:
        response = requests.get(f"{url}/api/images", timeout=30)
        answers.append((response.status_code, response.json()["detail"]))

    waiting = [threading.Thread(target=call) for _ in range(2)]
    try:
        for thread in waiting:
            thread.start()
        deadline = time.monotonic() + 10
        while len(accepted) < 2:
            assert time.monotonic() < deadline, "the app did not forward the two calls"
            time.sleep(0.05)
        # Both places are taken by calls the API never answers: the next call is refused at once.
        refused = requests.get(f"{url}/api/model", timeout=2)
        page = requests.get(f"{url}/", timeout=2)
        script = requests.get(f"{url}/webapp.js", timeout=2)
        for thread in waiting:
            thread.join()
    finally:
        stop_server(process)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert (
        refused.json()["detail"] == f"2 calls are already waiting on the prediction API at {api}; try again"
    )
    assert (page.status_code, script.status_code) == (200, 200)
    assert answers == [(504, f"the prediction API at {api} did not answer within 3 s")] * 2


def noise_png(height: int, width: int) -> bytes:
    import cv2

    noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.imencode(".png", noise)[1].tobytes()


def test_upload_over_the_apps_limit_is_413_before_it_reaches_the_api(api_url, tmp_path):
    url, process = start_app(api_url, tmp_path / "app.log", "--max-upload-mb", "0.25")
    data = noise_png(600, 800)  # about 1.4 MB
    try:
        declared = requests.post(f"{url}/api/predict", files={"file": ("big.png", data)}, timeout=30)
        streamed = requests.post(
            f"{url}/api/predict",
            data=iter([data[i : i + 65536] for i in range(0, len(data), 65536)]),
            timeout=30,
        )
    finally:
        stop_server(process)
    assert declared.status_code == 413
    size = int(re.fullmatch(r"the request body is (\d+) bytes, over 0.25 MiB", declared.json()["detail"])[1])
    assert len(data) < size < len(data) + 500  # the file and its multipart envelope
    assert (streamed.status_code, streamed.json()) == (413, {"detail": "the request body is over 0.25 MiB"})


def test_the_apis_own_413_passes_through(app_url):
    data = noise_png(300, 400)  # about 360 KB: under the app's default limit, over the API's 0.25 MiB
    response = requests.post(f"{app_url}/api/predict", files={"file": ("big.png", data)}, timeout=30)
    assert response.status_code == 413
    assert response.json()["detail"].startswith("the request body is ")
    assert response.json()["detail"].endswith(" bytes, over 0.25 MiB")
