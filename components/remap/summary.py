"""The remap summary as a combiner: frames and pixels per category, per split, from any worker."""

import numpy as np

from cityseg.components import cityscapes, labels


class CategoryPixels:
    """Folds `(index, RemapTask, pixels per category)` into frames and pixels per split.

    Accumulators are `{split: (frames, pixels)}` of integer sums, so they merge in any order
    with the same result (a `runner.Combiner`, run as a Beam CombineFn by the beam runner).
    """

    def create_accumulator(self) -> dict[str, tuple[int, np.ndarray]]:
        return {}

    def add_input(self, accumulator: dict, item) -> dict:
        _, task, counts = item
        split = cityscapes.LABEL_RE.search(task.label)["split"]
        frames, pixels = accumulator.get(split, (0, np.zeros(labels.NUM_CLASSES, np.int64)))
        accumulator[split] = (frames + 1, pixels + counts)
        return accumulator

    def merge_accumulators(self, accumulators) -> dict:
        merged: dict[str, tuple[int, np.ndarray]] = {}
        for accumulator in accumulators:
            for split, (frames, pixels) in accumulator.items():
                seen_frames, seen_pixels = merged.get(split, (0, np.zeros(labels.NUM_CLASSES, np.int64)))
                merged[split] = (seen_frames + frames, seen_pixels + pixels)
        return merged

    def extract_output(self, accumulator: dict) -> dict:
        """`frames` and `category_pixels` per split (splits sorted), and each category's pixel share."""
        splits = sorted(accumulator)
        total = np.sum([accumulator[split][1] for split in splits], axis=0)
        return {
            "frames": {split: accumulator[split][0] for split in splits},
            "category_pixels": {split: accumulator[split][1].tolist() for split in splits},
            "pixel_share": {
                name: float(total[i] / max(1, total.sum())) for i, name in enumerate(labels.CATEGORY_NAMES)
            },
        }
