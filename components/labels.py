"""The Cityscapes label table reduced to the 8 categories that cityseg predicts.

Everything here is derived from `cityscapesscripts.helpers.labels`, the official table, so that a
new release of that table is picked up rather than silently contradicted by a hand-made copy.
"""

from importlib import metadata

import numpy as np
from cityscapesscripts.helpers.labels import labels as _LABELS

# gtFine labelIds PNGs hold ids 0..33; the table's id -1 (license plate) is never written to them.
NUM_LABEL_IDS = 34
VOID = 0
INVALID = 255

CATEGORY_NAMES: tuple[str, ...] = tuple(
    name for _, name in sorted({(label.categoryId, label.category) for label in _LABELS if label.id >= 0})
)
NUM_CLASSES = len(CATEGORY_NAMES)


def label_table_version() -> str:
    """The version of the cityscapesscripts package whose label table is in use."""
    return f"cityscapesscripts=={metadata.version('cityscapesScripts')}"


def category_lut() -> np.ndarray:
    """A 256-entry uint8 lookup table from label id to category id; ids outside 0..33 map to 255."""
    lut = np.full(256, INVALID, dtype=np.uint8)
    for label in _LABELS:
        if 0 <= label.id < NUM_LABEL_IDS:
            lut[label.id] = label.categoryId
    return lut


def category_colors() -> np.ndarray:
    """RGB colour per category (8x3 uint8): the colour of the category's first evaluated label.

    That gives the colours the Cityscapes site uses for categories (road purple, building grey, ...);
    void, which has no evaluated label, is black.
    """
    colors = np.zeros((NUM_CLASSES, 3), dtype=np.uint8)
    for category_id in range(1, NUM_CLASSES):
        first = min(
            (label for label in _LABELS if label.categoryId == category_id and not label.ignoreInEval),
            key=lambda label: label.id,
        )
        colors[category_id] = first.color
    return colors


def colorize(category_mask: np.ndarray) -> np.ndarray:
    """Category-id mask (HxW) -> RGB image (HxWx3 uint8) in the category colours."""
    return category_colors()[category_mask]
