"""Upload checks, decoding, resizing and rendering on hand-built images."""

import cv2
import numpy as np
import pytest

from cityseg.components.labels import category_colors
from cityseg.components.serve.config import ServeConfig
from cityseg.components.serve.core import (
    BadImageError,
    decode_image,
    encode_png,
    image_header,
    overlay,
    pixel_share,
    render,
)


def png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def decode_png(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def test_header_gives_format_and_size_without_decoding():
    assert image_header(png(np.zeros((5, 7), np.uint8))) == ("png", 5, 7)
    jpeg = cv2.imencode(".jpg", np.zeros((9, 11, 3), np.uint8))[1].tobytes()
    assert image_header(jpeg) == ("jpeg", 9, 11)
    progressive = cv2.imencode(".jpg", np.zeros((13, 3, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    assert image_header(progressive.tobytes()) == ("jpeg", 13, 3)


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"", 400, "empty"),
        (b"GIF89a\x01\x00\x01\x00", 415, "not a PNG or JPEG"),
        (b"hello, world", 415, "not a PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", 400, "corrupt PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", 400, "corrupt JPEG"),
    ],
)
def test_bad_uploads_get_their_status(data, status, message):
    with pytest.raises(BadImageError, match=message) as caught:
        decode_image(data, max_pixels=10_000)
    assert caught.value.status == status


def test_truncated_png_is_corrupt_not_a_crash():
    data = png(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(BadImageError, match="corrupt PNG: the pixels cannot be decoded") as caught:
        decode_image(data[: len(data) // 2], max_pixels=10_000)
    assert caught.value.status == 400


def test_huge_declared_size_is_refused_before_decoding():
    # A valid 1x1 PNG whose header is rewritten to claim 100000x100000 pixels (a decompression bomb).
    data = bytearray(png(np.zeros((1, 1), np.uint8)))
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    with pytest.raises(
        BadImageError, match="100000x100000 = 10000000000 pixels, over the limit of 10000"
    ) as caught:
        decode_image(bytes(data), max_pixels=10_000)
    assert caught.value.status == 413


def test_gray_rgba_and_16_bit_are_converted_to_rgb():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(decode_image(png(gray), 100), np.repeat(gray[..., None], 3, axis=2))

    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 0
    np.testing.assert_array_equal(decode_image(png(bgra), 100), np.full((2, 2, 3), (30, 20, 10), np.uint8))

    sixteen = np.full((2, 3), 200 * 256 + 17, np.uint16)
    np.testing.assert_array_equal(decode_image(png(sixteen), 100), np.full((2, 3, 3), 200, np.uint8))


def test_color_png_comes_back_as_rgb():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 255
    np.testing.assert_array_equal(decode_image(png(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), 100), rgb)


def test_render_formats():
    mask = np.array([[0, 1], [5, 7]], np.uint8)
    image = np.full((2, 2, 3), 100, np.uint8)
    np.testing.assert_array_equal(decode_png(render(image, mask, "ids")), mask)
    color = cv2.cvtColor(decode_png(render(image, mask, "color")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(color, category_colors()[mask])
    blended = cv2.cvtColor(decode_png(render(image, mask, "overlay")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(blended, overlay(image, mask))
    with pytest.raises(ValueError, match="format must be one of"):
        render(image, mask, "json")


def test_overlay_blends_half_and_keeps_void_pixels():
    mask = np.array([[0, 5]], np.uint8)
    image = np.full((1, 2, 3), 100, np.uint8)
    result = overlay(image, mask)
    np.testing.assert_array_equal(result[0, 0], (100, 100, 100))
    sky = category_colors()[5].astype(int)
    np.testing.assert_allclose(result[0, 1], (100 + sky) / 2, atol=1)


def test_pixel_share_sums_to_one_per_category():
    share = pixel_share(np.array([[1, 1, 1, 7]], np.uint8))
    assert share == {
        "void": 0.0, "flat": 0.75, "construction": 0.0, "object": 0.0,
        "nature": 0.0, "sky": 0.0, "human": 0.0, "vehicle": 0.25,
    }  # fmt: skip


def test_encode_png_round_trips_gray_and_rgb():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(decode_png(encode_png(gray)), gray)
    rgb = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(cv2.cvtColor(decode_png(encode_png(rgb)), cv2.COLOR_BGR2RGB), rgb)


@pytest.mark.parametrize("field", ["poll_seconds", "max_upload_mb", "max_megapixels"])
def test_config_rejects_non_positive_limits(field):
    with pytest.raises(ValueError, match=f"{field} must be positive, got 0"):
        ServeConfig(**{field: 0})


def test_config_limits_in_bytes_and_pixels():
    config = ServeConfig(max_upload_mb=0.5, max_megapixels=2)
    assert (config.max_upload_bytes, config.max_pixels) == (524288, 2_000_000)
