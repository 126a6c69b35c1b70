"""The JSON bodies of the prediction API, as pydantic models (they make the OpenAPI schema)."""

from pydantic import BaseModel, ConfigDict, Field

PNG = "image/png"


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of the API's own routes: what was wrong, in words."""

    detail: str


class ObjectsModelInfo(BaseModel):
    """The object classifier (--objects-model): its version in service and where its registry alias points."""

    name: str
    ref: str
    loaded: bool
    version: str | None
    swaps: int
    registry_version: str | None
    failed_swaps: int
    last_error: str | None


class ModelInfo(BaseModel):
    """The model being served, and where the registry alias points (they differ while a swap fails).

    `objects` is the same for the object classifier, when the server serves one.
    """

    name: str
    version: str | None
    ref: str
    run_id: str | None
    input_height: int | None
    input_width: int | None
    loaded_at: str
    swaps: int
    registry_version: str | None
    failed_swaps: int
    last_error: str | None
    objects: ObjectsModelInfo | None = None


class Prediction(BaseModel):
    """`/predict?format=json`: the share of the image's pixels in each category, who predicted it, how fast.

    `latency_ms` is the server's whole time (decoding included), `inference_ms` the model's part.
    """

    model: str
    version: str | None
    latency_ms: float
    inference_ms: float
    height: int
    width: int
    pixel_share: dict[str, float]


class ImageItem(BaseModel):
    id: str
    split: str
    city: str


class ImageList(BaseModel):
    count: int
    images: list[ImageItem]


class Category(BaseModel):
    id: int
    name: str
    color: str


class ImageScores(BaseModel):
    """The served model's prediction on one indexed image, scored against its true mask."""

    id: str
    model: str
    version: str | None
    latency_ms: float
    scores: dict[str, float | None]
    confusion_matrix: list[list[int]]


def errors(*statuses: int) -> dict:
    """The OpenAPI `responses` entry for error statuses that answer with an `ErrorBody`."""
    return {status: {"model": ErrorBody} for status in statuses}


class ExplainRequest(BaseModel):
    """`POST /explain`: the picture, what to explain in it, and the LIME budget.

    Only the JSON types are declared here, so a body of the wrong shape is a 422 before any work;
    the values (a point inside the picture, a known category or class, the budget's caps) are
    checked by the route, which answers 400 and says what is wrong.
    """

    model_config = ConfigDict(populate_by_name=True)

    image: str | None = Field(None, description="base64 PNG or JPEG (or give image_id)")
    image_id: str | None = Field(None, description="an id from /images")
    model: str = Field("segmenter", description="segmenter or classifier")
    x: int | None = None
    y: int | None = None
    category: str | None = Field(None, description="segmenter: explain all pixels of this category")
    box: list[int] | None = Field(None, description="classifier: x0, y0, x1, y1 of the crop, inclusive")
    class_: str | None = Field(None, alias="class", description="classifier: the class to explain")
    samples: int | None = None
    superpixels: int | None = None
