"""The API over real HTTP: a `cityseg serve` process with a model that predicts flat everywhere."""

import re
import shutil

import cv2
import numpy as np
import pytest
import requests

from cityseg.components.labels import category_colors, category_lut
from tests.components.serve.conftest import BIN, HEIGHT, VAL_IDS, WIDTH, frame_image, label_ids
from tests.conftest import free_port, start_server, stop_server

FLAT = 1


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def predict(api_url: str, data: bytes, fmt: str = "ids", name: str = "street.png") -> requests.Response:
    return requests.post(
        f"{api_url}/predict", params={"format": fmt}, files={"file": (name, data)}, timeout=30
    )


@pytest.mark.parametrize(("height", "width"), [(HEIGHT, WIDTH), (37, 91), (480, 640), (7, 5)])
def test_predict_ids_come_back_at_the_upload_size(api_url, height, width):
    response = predict(api_url, png(np.full((height, width, 3), 90, np.uint8)))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-model-name"] == "constant_1"
    assert 0 < float(response.headers["x-inference-ms"]) <= float(response.headers["x-latency-ms"])
    np.testing.assert_array_equal(decode(response.content), np.full((height, width), FLAT, np.uint8))


def test_predict_color_and_overlay(api_url):
    image = frame_image(0)
    data = png(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    color = cv2.cvtColor(decode(predict(api_url, data, "color").content), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(color, np.broadcast_to(category_colors()[FLAT], (HEIGHT, WIDTH, 3)))
    blended = cv2.cvtColor(decode(predict(api_url, data, "overlay").content), cv2.COLOR_BGR2RGB)
    expected = cv2.addWeighted(image, 0.5, np.ascontiguousarray(color), 0.5, 0)
    np.testing.assert_array_equal(blended, expected)


def test_predict_json(api_url):
    jpeg = cv2.imencode(".jpg", np.full((40, 50, 3), 128, np.uint8))[1].tobytes()
    response = predict(api_url, jpeg, "json", name="street.jpg")
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "constant_1" and body["version"] is None
    assert (body["height"], body["width"]) == (40, 50)
    assert body["pixel_share"] == {
        "void": 0.0, "flat": 1.0, "construction": 0.0, "object": 0.0,
        "nature": 0.0, "sky": 0.0, "human": 0.0, "vehicle": 0.0,
    }  # fmt: skip
    assert 0 < body["inference_ms"] < body["latency_ms"] < 10_000


@pytest.mark.parametrize(
    "image",
    [
        np.full((10, 12), 200, np.uint8),  # grayscale
        np.full((10, 12, 4), 200, np.uint8),  # RGBA
        np.full((10, 12), 60_000, np.uint16),  # 16-bit grayscale
        np.full((10, 12, 3), 60_000, np.uint16),  # 16-bit colour
    ],
    ids=["gray", "rgba", "gray16", "rgb16"],
)
def test_other_pixel_formats_are_converted(api_url, image):
    response = predict(api_url, png(image))
    assert response.status_code == 200
    np.testing.assert_array_equal(decode(response.content), np.full((10, 12), FLAT, np.uint8))


@pytest.mark.parametrize(
    ("data", "status", "detail"),
    [
        (b"", 400, "street.png: the uploaded file is empty"),
        (b"this is text, not a picture", 415, "street.png: not a PNG or JPEG image"),
        (b"GIF89a" + bytes(40), 415, "street.png: not a PNG or JPEG image"),
        (b"\x89PNG\r\n\x1a\n" + bytes(30), 400, "street.png: corrupt PNG"),
        (
            png(np.zeros((1001, 1000), np.uint8)),
            413,
            "street.png: the image is 1000x1001 = 1001000 pixels, over",
        ),
    ],
    ids=["empty", "text", "gif", "corrupt-png", "too-many-pixels"],
)
def test_bad_uploads_get_a_4xx_json_error(api_url, data, status, detail):
    response = predict(api_url, data)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"].startswith(detail)


def test_body_over_the_limit_is_413(api_url):
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    response = predict(api_url, png(noise))  # about 360 KB, over the 256 KiB limit
    assert response.status_code == 413
    assert re.fullmatch(r"the request body is \d+ bytes, over 0.25 MiB", response.json()["detail"])


def test_missing_file_and_bad_format_are_422(api_url):
    assert requests.post(f"{api_url}/predict", timeout=10).status_code == 422
    assert requests.post(f"{api_url}/predict", data=b"raw", timeout=10).status_code == 422
    response = predict(api_url, png(np.zeros((4, 4), np.uint8)), fmt="jpeg")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "format"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image_id": VAL_IDS[0], "samples": "many"}, "samples"),
        ({"image_id": VAL_IDS[0], "x": [3], "y": 4}, "x"),
        ({"image_id": ["a", "b"]}, "image_id"),
        ({"image_id": VAL_IDS[0], "category": {"name": "sky"}}, "category"),
    ],
)
def test_explain_refuses_a_body_of_the_wrong_json_types_with_422(api_url, body, field):
    response = requests.post(f"{api_url}/explain", json=body, timeout=30)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


def test_images_lists_the_val_split(api_url):
    body = requests.get(f"{api_url}/images", timeout=10).json()
    assert body == {"count": 3, "images": [{"id": i, "split": "val", "city": "aachen"} for i in VAL_IDS]}


def test_image_kinds(api_url, cityscapes_dir):
    url = f"{api_url}/images/{VAL_IDS[2]}"
    stored = cityscapes_dir / "leftImg8bit/val/aachen" / f"{VAL_IDS[2]}_leftImg8bit.png"
    assert requests.get(url, timeout=10).content == stored.read_bytes()
    true_mask = category_lut()[label_ids()]
    np.testing.assert_array_equal(
        decode(requests.get(url, params={"kind": "mask"}, timeout=10).content), true_mask
    )
    color = cv2.cvtColor(
        decode(requests.get(url, params={"kind": "color"}, timeout=10).content), cv2.COLOR_BGR2RGB
    )
    np.testing.assert_array_equal(color, category_colors()[true_mask])
    assert requests.get(url, params={"kind": "depth"}, timeout=10).status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/images/nowhere_000000_000000",
        "/images/bonn_000000_000000",  # exists on disk, but outside the served split
        "/images/..%2F..%2Fetc%2Fpasswd",
        "/images/%2E%2E",
        f"/images/{VAL_IDS[0]}_leftImg8bit.png",
        "/images/nowhere/scores",
    ],
)
def test_unknown_ids_are_404(api_url, path):
    response = requests.get(f"{api_url}{path}", timeout=10)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


def test_scores_of_an_indexed_image(api_url):
    body = requests.get(f"{api_url}/images/{VAL_IDS[0]}/scores", timeout=30).json()
    # The truth (row 0 void, then 9 rows sky, road with a 12x10 car) against flat everywhere.
    sky, car = 9 * WIDTH, 12 * 10
    flat = HEIGHT * WIDTH - WIDTH - sky - car
    assert body["id"] == VAL_IDS[0] and body["model"] == "constant_1"
    assert body["confusion_matrix"][1][1] == flat
    assert body["confusion_matrix"][5][1] == sky and body["confusion_matrix"][7][1] == car
    assert body["scores"]["iou_flat"] == pytest.approx(flat / (flat + sky + car))
    assert body["scores"]["iou_sky"] == 0.0 and body["scores"]["iou_vehicle"] == 0.0
    assert body["scores"]["iou_human"] is None
    assert body["scores"]["mean_iou"] == pytest.approx(flat / (flat + sky + car) / 3)


def test_health_ready_and_model(api_url, flat_model_path):
    assert requests.get(f"{api_url}/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{api_url}/readyz", timeout=10).json() == {
        "status": "ready", "model": "constant_1", "version": None,
    }  # fmt: skip
    model = requests.get(f"{api_url}/model", timeout=10).json()
    assert model["name"] == "constant_1" and model["ref"] == str(flat_model_path)
    assert (model["input_height"], model["input_width"], model["swaps"]) == (HEIGHT, WIDTH, 0)
    assert (model["registry_version"], model["failed_swaps"], model["last_error"]) == (None, 0, None)
    assert model["objects"] is None
    # Without --objects-model the classifier's routes say so; readiness is the segmenter's alone.
    classifier = requests.get(f"{api_url}/v2/models/cityseg-objects/ready", timeout=10)
    assert (classifier.status_code, classifier.json()) == (
        404,
        {"error": "this server serves no object classifier (start it with --objects-model)"},
    )


def test_categories(api_url):
    body = requests.get(f"{api_url}/categories", timeout=10).json()
    assert [c["name"] for c in body] == [
        "void", "flat", "construction", "object", "nature", "sky", "human", "vehicle",
    ]  # fmt: skip
    assert body[1]["color"] == "#{:02x}{:02x}{:02x}".format(*category_colors()[1])


def _counter(text: str, route: str, status: int) -> float:
    pattern = (
        rf'cityseg_http_requests_total\{{method="POST",route="{re.escape(route)}",status="{status}"\}} (\S+)'
    )
    match = re.search(pattern, text)
    return float(match[1]) if match else 0.0


def test_metrics_count_requests_by_route_and_status(api_url):
    before = requests.get(f"{api_url}/metrics", timeout=10).text
    for _ in range(3):
        predict(api_url, png(np.zeros((4, 4), np.uint8)))
    predict(api_url, b"nonsense")
    after = requests.get(f"{api_url}/metrics", timeout=10).text
    assert _counter(after, "/predict", 200) - _counter(before, "/predict", 200) == 3
    assert _counter(after, "/predict", 415) - _counter(before, "/predict", 415) == 1
    assert 'cityseg_http_request_duration_seconds_bucket{le="+Inf",route="/predict"}' in after
    assert 'cityseg_model_info{name="constant_1",version="None"} 1.0' in after
    assert "cityseg_inference_duration_seconds_count" in after


def test_val_split_by_default_and_frames_damaged_after_start_get_json_errors(
    cityscapes_dir, flat_model_path, tmp_path
):
    root = shutil.copytree(cityscapes_dir, tmp_path / "cityscapes")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(BIN / "cityseg"),
        "serve",
        "--model",
        str(flat_model_path),
        "--images",
        str(root),
        "--port",
        str(port),
    ]
    server = start_server(argv, f"{url}/readyz", tmp_path / "serve.log", timeout_s=120)
    labels = root / "gtFine/val/aachen"
    try:
        listed = [item["id"] for item in requests.get(f"{url}/images", timeout=10).json()["images"]]
        cv2.imwrite(str(labels / f"{VAL_IDS[0]}_gtFine_labelIds.png"), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
        (labels / f"{VAL_IDS[1]}_gtFine_labelIds.png").unlink()
        (root / "leftImg8bit/val/aachen" / f"{VAL_IDS[2]}_leftImg8bit.png").unlink()
        answers = {
            (image_id, path): requests.get(f"{url}/images/{image_id}{path}", timeout=30)
            for image_id in VAL_IDS
            for path in ("?kind=mask", "/scores", "?kind=image")
        }
    finally:
        stop_server(server)
    assert listed == list(VAL_IDS)  # the val split only, without --images-split
    label = labels / f"{VAL_IDS[0]}_gtFine_labelIds.png"
    rgb = f"frame {VAL_IDS[0]}: cannot read its label: {label}: not a single-channel"
    for path in ("?kind=mask", "/scores"):
        assert answers[VAL_IDS[0], path].status_code == 500
        assert answers[VAL_IDS[0], path].json()["detail"].startswith(rgb)
        assert answers[VAL_IDS[1], path].status_code == 404
        assert (
            answers[VAL_IDS[1], path]
            .json()["detail"]
            .startswith(f"frame {VAL_IDS[1]}: its label file is gone")
        )
    assert answers[VAL_IDS[0], "?kind=image"].status_code == 200
    for path in ("?kind=image", "/scores"):
        assert answers[VAL_IDS[2], path].status_code == 404
        assert (
            answers[VAL_IDS[2], path]
            .json()["detail"]
            .startswith(f"frame {VAL_IDS[2]}: its image file is gone")
        )
