"""LIME explanations over SLIC superpixels, for a segmenter's region and for the object classifier's crop.

LIME (Ribeiro et al. 2016, the `lime` package) hides random subsets of superpixels (painted black),
scores every perturbed image with the model, and fits a weighted linear model from "superpixel
shown" to the score: a superpixel's weight is how much showing it pushes the score up (positive)
or down. The score is the mean probability of the region's category over the region's pixels for
the segmenter, and the class's probability for the classifier. Perturbed images are scored
`batch_size` at a time, and a deadline stops the work between batches.
"""

import dataclasses
import time
from collections.abc import Callable

import cv2
import numpy as np

MAX_SAMPLES = 1000
MAX_SUPERPIXELS = 200
DEFAULT_SAMPLES = 200
DEFAULT_SUPERPIXELS = 50


@dataclasses.dataclass(frozen=True)
class Explanation:
    """Superpixel labels (HxW int), one LIME weight per superpixel, and the unperturbed image's score."""

    segments: np.ndarray
    weights: np.ndarray
    score: float


def check_budget(samples: int, superpixels: int) -> None:
    """Raise ValueError naming the parameter when a request asks for more work than the caps allow."""
    if not 10 <= samples <= MAX_SAMPLES:
        raise ValueError(f"samples must be 10..{MAX_SAMPLES}, got {samples}")
    if not 4 <= superpixels <= MAX_SUPERPIXELS:
        raise ValueError(f"superpixels must be 4..{MAX_SUPERPIXELS}, got {superpixels}")


def superpixels_of(image: np.ndarray, count: int) -> np.ndarray:
    """SLIC superpixels (scikit-image) of an RGB image: about `count` compact segments, labels from 0."""
    from skimage.segmentation import slic

    return slic(image, n_segments=count, compactness=10, start_label=0, channel_axis=-1)


def explain(
    image: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    *,
    samples: int = DEFAULT_SAMPLES,
    superpixels: int = DEFAULT_SUPERPIXELS,
    batch_size: int = 16,
    seed: int = 0,
    deadline: float | None = None,
) -> Explanation:
    """LIME weights of the superpixels of `image` for `score` (a batch N x H x W x 3 uint8 -> N scores).

    Raises:
        ValueError: samples or superpixels beyond the caps.
        TimeoutError: `deadline` (a `time.monotonic()` value) passed before every batch was scored.
    """
    from lime import lime_image

    check_budget(samples, superpixels)
    segments = superpixels_of(image, superpixels)

    def classifier_fn(images: np.ndarray) -> np.ndarray:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(
                f"the explanation ran past its time-out before its {samples} samples were scored"
            )
        scores = np.asarray(score(images.astype(np.uint8)), np.float64)
        return np.stack([1.0 - scores, scores], axis=1)

    explainer = lime_image.LimeImageExplainer(random_state=seed)
    result = explainer.explain_instance(
        image,
        classifier_fn,
        labels=(1,),
        top_labels=None,
        hide_color=0,
        num_samples=samples,
        batch_size=batch_size,
        segmentation_fn=lambda _: segments,
        random_seed=seed,
    )
    weights = np.zeros(int(segments.max()) + 1)
    for segment, weight in result.local_exp[1]:
        weights[segment] = weight
    return Explanation(segments, weights, float(classifier_fn(image[None])[0, 1]))


def segmenter_score(model, category: int, region: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Batch -> mean probability of `category` over `region` (HxW bool at the image's size), per image.

    The batch is resized to the model's input as the evaluator resizes (area when shrinking), and
    the region by nearest neighbour; a region thinner than a model pixel keeps its first pixel.
    """
    import tensorflow as tf

    height, width = model.input_shape[1:3]
    small = cv2.resize(region.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    if not small.any():
        rows, cols = np.nonzero(region)
        small[rows[0] * height // region.shape[0], cols[0] * width // region.shape[1]] = True

    def score(images: np.ndarray) -> np.ndarray:
        batch = np.stack([cv2.resize(i, (width, height), interpolation=cv2.INTER_AREA) for i in images])
        probabilities = tf.nn.softmax(model(batch.astype(np.float32) / 255.0, training=False)).numpy()
        return probabilities[:, small, category].mean(axis=1)

    return score


def classifier_score(model, label: int) -> Callable[[np.ndarray], np.ndarray]:
    """Batch of crops -> probability of class `label`, per crop."""
    import tensorflow as tf

    def score(images: np.ndarray) -> np.ndarray:
        return tf.nn.softmax(model(images.astype(np.float32), training=False)).numpy()[:, label]

    return score


def region_at(mask: np.ndarray, x: int, y: int) -> np.ndarray:
    """The connected component (8-neighbour) of the predicted mask's category that holds pixel (x, y)."""
    _, components = cv2.connectedComponents((mask == mask[y, x]).astype(np.uint8), connectivity=8)
    return components == components[y, x]


def overlay(image: np.ndarray, explanation: Explanation, alpha: float = 0.5) -> np.ndarray:
    """The image with each superpixel tinted by its weight: green pushes toward the class, red away."""
    scale = np.abs(explanation.weights).max() or 1.0
    strength = (explanation.weights / scale)[explanation.segments][..., None]
    tint = np.where(strength > 0, np.float32([0, 200, 0]), np.float32([220, 0, 0]))
    blend = image.astype(np.float32) * (1 - alpha * np.abs(strength)) + tint * alpha * np.abs(strength)
    return np.clip(blend, 0, 255).astype(np.uint8)
