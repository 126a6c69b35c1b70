"""The web app's objects view in headless Chromium: a frame's instances, true and predicted, its errors."""

import json

import numpy as np
import pytest
import requests

from cityseg.components.synth.config import SynthConfig
from cityseg.components.synth.core import generate
from tests.components.serve.conftest import BIN, constant_model, start_serve
from tests.components.serve.test_webapp import CHROMIUM_ARGS, start_app
from tests.conftest import free_port, stop_server


def write_classifier(folder) -> None:
    """A classifier that calls every crop a car: the frame's cars are right, its other objects wrong."""
    import keras

    inputs = keras.Input((16, 16, 3), name="crop")
    bias = np.zeros(8, np.float32)
    bias[2] = 5.0
    dense = keras.layers.Dense(
        8, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(bias)
    )
    folder.mkdir()
    keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs))).save(folder / "model.keras")
    (folder / "train_info.json").write_text(json.dumps({"crop_margin": 0.3}))


@pytest.fixture(scope="module")
def urls(tmp_path_factory):
    """(API, app) URLs: a flat segmenter, the red classifier and one synthetic object frame in val."""
    root = tmp_path_factory.mktemp("objects-app")
    generate(
        SynthConfig(out=str(root / "src"), cities=3, frames_per_city=1, height=128, width=256, objects=True)
    )
    write_classifier(root / "classifier")
    constant_model(1, 128, 256).save(root / "flat.keras")
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    argv = [
        str(BIN / "cityseg"), "serve", "--model", str(root / "flat.keras"), "--port", str(port),
        "--images", str(root / "src"), "--objects-model", str(root / "classifier"),
    ]  # fmt: skip
    api_process = start_serve(argv, api, root / "serve.log")
    app, app_process = start_app(api, root / "app.log")
    yield api, app
    stop_server(app_process)
    stop_server(api_process)


def test_the_objects_view_lists_the_instances_and_filters_to_the_errors(urls, chromium_path):
    from playwright.sync_api import sync_playwright

    api, app = urls
    (image,) = requests.get(f"{api}/images", timeout=30).json()["images"]
    expected = requests.get(f"{api}/objects/{image['id']}", timeout=60).json()["objects"]
    wrong = [o for o in expected if o["true"] != o["class"]]
    assert expected and wrong and len(wrong) < len(expected)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(app)
            page.get_by_role("button", name=image["id"]).click()
            page.wait_for_selector("#objects:not([hidden])", timeout=60_000)
            rows = page.locator("#objects-table tbody tr")
            assert rows.count() == len(expected)
            assert page.locator("#objects-table td.true").all_inner_texts() == [o["true"] for o in expected]
            assert page.locator("#objects-table td.predicted").all_inner_texts() == [
                o["class"] for o in expected
            ]
            assert (
                page.eval_on_selector("#objects-table img.crop", "img => img.complete && img.naturalWidth")
                == 16
            )
            page.check("#errors-only")
            assert rows.count() == len(wrong)
            assert [
                int(r)
                for r in page.locator("#objects-table tbody tr").evaluate_all(
                    "rs => rs.map(r => r.dataset.instance)"
                )
            ] == [o["instance_id"] for o in wrong]
            assert page.inner_text("#objects-count") == f"{len(expected)} objects, {len(wrong)} misclassified"
            assert not errors
        finally:
            browser.close()


def test_a_click_on_the_predicted_mask_then_explain_shows_the_overlay(urls, chromium_path):
    from playwright.sync_api import sync_playwright

    api, app = urls
    (image,) = requests.get(f"{api}/images", timeout=30).json()["images"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(app)
            page.get_by_role("button", name=image["id"]).click()
            page.wait_for_function("document.getElementById('img-pred').naturalWidth > 0", timeout=60_000)
            assert page.is_disabled("#explain")
            page.click("#img-pred", position={"x": 5, "y": 5})
            page.click("#explain")
            page.wait_for_function(
                "document.getElementById('img-explain').complete"
                " && document.getElementById('img-explain').naturalWidth > 0",
                timeout=120_000,
            )
            size = page.eval_on_selector("#img-explain", "img => [img.naturalWidth, img.naturalHeight]")
            assert size == [256, 128]
            # The served segmenter predicts flat everywhere: the clicked region is the whole image.
            assert page.inner_text("#status").startswith(f"{image['id']}: flat region of {128 * 256} pixels")
        finally:
            browser.close()
