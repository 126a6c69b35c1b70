"""The serving configurations: `cityseg serve` (the API and its memory limits) and `cityseg app`."""

import dataclasses

from cityseg.components.modelstore import DEFAULT_CACHE_DIR

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
    # The object classifier served beside the segmenter under /v2/models/<objects_name>; None: none.
    objects_model: str | None = None
    objects_name: str = "cityseg-objects"
    # POST /explain: seconds an explanation may take before it is stopped with 504.
    explain_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        for name in (
            "poll_seconds",
            "max_upload_mb",
            "max_megapixels",
            "max_probability_megapixels",
            "explain_timeout_s",
        ):
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
