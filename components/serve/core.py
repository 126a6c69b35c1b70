"""The serving work without HTTP: settings, checking and decoding uploads, turning masks into responses."""

import dataclasses

import cv2
import numpy as np

from cityseg.components.labels import CATEGORY_NAMES, NUM_CLASSES, VOID, colorize
from cityseg.components.modelstore import DEFAULT_CACHE_DIR

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); they carry the size.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


# Bytes a request can hold per pixel of its image at its peak (measured by tests/benchmarks/bench_serve.py
# and bounded by tests/components/serve/test_memory.py): the decoded RGB image (3), the image handed to
# the model's graph (3), the mask and its copy (2), and a colour or overlay rendering (3 + 3) with room to
# spare. Nothing is ever held in float32 at the upload's size.
REQUEST_BYTES_PER_PIXEL = 16


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """What `cityseg serve` serves and the limits it keeps.

    `model` is a model folder, a .keras file or an MLflow URI; a `models:/<name>@<alias>` URI is
    polled every `poll_seconds` and the server swaps to the version the alias points at.

    Memory: at most `max_concurrent` requests decode and predict at once (the others wait), and each
    holds at most `request_memory_bytes`, so the server's peak is its idle size (runtime and model)
    plus `max_concurrent * request_memory_bytes`: choose `max_concurrent` so that fits the pod's limit.
    """

    model: str = "models:/cityseg@champion"
    images: str | None = None
    images_split: str | None = "val"
    tracking_uri: str | None = None
    cache_dir: str = str(DEFAULT_CACHE_DIR)
    poll_seconds: float = 30.0
    max_upload_mb: float = 20.0
    max_megapixels: float = 64.0
    max_concurrent: int = 2
    max_probability_megapixels: float = 1.0

    def __post_init__(self) -> None:
        for name in ("poll_seconds", "max_upload_mb", "max_megapixels", "max_probability_megapixels"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {self.max_concurrent}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1e6)

    @property
    def request_memory_bytes(self) -> int:
        """The most memory one request holds at its peak: its upload and its image at the pixel limit."""
        return self.max_upload_bytes + REQUEST_BYTES_PER_PIXEL * self.max_pixels


@dataclasses.dataclass(frozen=True)
class WebAppConfig:
    """Where the API is and how long and how many forwarded calls may wait on it.

    `max_upload_mb` defaults to the API's own limit, so an upload the API would refuse is refused
    here before it is buffered.
    """

    api: str = "http://127.0.0.1:8000"
    max_upload_mb: float = ServeConfig.max_upload_mb
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 30.0
    max_in_flight: int = 16

    def __post_init__(self) -> None:
        if not self.api.startswith(("http://", "https://")):
            raise ValueError(f"{self.api}: the API URL must start with http:// or https://")
        for name in ("max_upload_mb", "connect_timeout_s", "read_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {self.max_in_flight}")


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
