"""The serving work without HTTP: settings, checking and decoding uploads, turning masks into responses."""

import cv2
import numpy as np

from cityseg.components.labels import CATEGORY_NAMES, NUM_CLASSES, VOID, colorize

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); they carry the size.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class BadImageError(ValueError):
    """An upload that cannot be served, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from the first JPEG frame header, or None when the markers are broken."""
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
        elif marker in _JPEG_SOF:
            return int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big")
        elif 0xD0 <= marker <= 0xD8 or marker == 0x01:  # markers without a length field
            i += 2
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def image_header(data: bytes) -> tuple[str, int, int]:
    """(format, height, width) of PNG or JPEG bytes, read from the header without decoding pixels.

    Raises:
        BadImageError: 400 for an empty or corrupt file, 415 for anything but PNG and JPEG.
    """
    if not data:
        raise BadImageError(400, "the uploaded file is empty")
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise BadImageError(400, "corrupt PNG: no IHDR header")
        return "png", int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")
    if data.startswith(b"\xff\xd8"):
        size = _jpeg_size(data)
        if size is None:
            raise BadImageError(400, "corrupt JPEG: no frame header")
        return "jpeg", *size
    raise BadImageError(415, "not a PNG or JPEG image")


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """PNG or JPEG bytes -> HxWx3 uint8 RGB; grayscale, alpha, palette and 16-bit images are converted.

    The size is checked from the header first, so a small file that declares a huge image is
    refused before any memory is spent on its pixels.

    Raises:
        BadImageError: 400 empty or corrupt, 413 more pixels than `max_pixels`, 415 not PNG or JPEG.
    """
    kind, height, width = image_header(data)
    if height == 0 or width == 0:
        raise BadImageError(400, f"corrupt {kind.upper()}: declares a {width}x{height} image")
    if height * width > max_pixels:
        raise BadImageError(
            413, f"the image is {width}x{height} = {height * width} pixels, over the limit of {max_pixels}"
        )
    # IMREAD_COLOR turns gray, palette and alpha images into 3 channels and 16-bit into 8-bit,
    # and applies the JPEG EXIF orientation, so the mask matches the picture a browser shows.
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise BadImageError(400, f"corrupt {kind.upper()}: the pixels cannot be decoded")
    # In place: a second full-size copy would be 3 more bytes per pixel at the request's peak.
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)


def encode_png(image: np.ndarray) -> bytes:
    """HxW (gray) or HxWx3 (RGB) uint8 -> PNG bytes."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    # Level 1: masks are flat areas that compress well anyway, and the time goes to latency.
    ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} {image.dtype} array as PNG")
    return buffer.tobytes()


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The category colours blended over the RGB image; void pixels keep the image as it is."""
    blended = cv2.addWeighted(image, 1 - alpha, colorize(mask), alpha, 0)
    void = mask == VOID
    blended[void] = image[void]
    return blended


def render(image: np.ndarray, mask: np.ndarray, fmt: str) -> bytes:
    """The PNG for an image response format: `ids`, `color` or `overlay`."""
    if fmt == "ids":
        return encode_png(mask)
    if fmt == "color":
        return encode_png(colorize(mask))
    if fmt == "overlay":
        return encode_png(overlay(image, mask))
    raise ValueError(f"format must be one of ids, color, overlay; got {fmt!r}")


def pixel_share(mask: np.ndarray) -> dict[str, float]:
    """The share of the mask's pixels in each category, by category name (sums to 1)."""
    counts = np.bincount(mask.ravel(), minlength=NUM_CLASSES)[:NUM_CLASSES]
    return {name: float(count / mask.size) for name, count in zip(CATEGORY_NAMES, counts, strict=True)}
