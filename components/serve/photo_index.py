"""The images the API can show: an index of a Cityscapes source (folder, the official zips, or gs://).

Requests name an image by its id, the Cityscapes stem (e.g. `frankfurt_000000_000019`). The id is
only ever a key of this index and is never joined into a path, so no request can reach a file
outside the source.
"""

import contextlib
import logging
import os

import cv2
import numpy as np

from cityseg.components import cityscapes
from cityseg.components.labels import INVALID, VOID, category_lut

log = logging.getLogger(__name__)


class PhotoIndex:
    """Frames of a Cityscapes source by id, sorted; a context manager that keeps the source open."""

    def __init__(self, location: str | os.PathLike, split: str | None = None) -> None:
        """Index every frame below `location` (or only those of `split`).

        Raises:
            ValueError: the source holds no frames (of that split), a frame lacks its labelIds, or
                two splits hold the same stem.
        """
        self._stack = contextlib.ExitStack()
        self.source = self._stack.enter_context(cityscapes.open_source(location))
        try:
            frames = [f for f in cityscapes.find_frames(self.source) if split is None or f.split == split]
            if not frames:
                raise ValueError(f"{location}: no frames in split {split!r}")
            self._frames: dict[str, cityscapes.Frame] = {}
            for frame in frames:
                if frame.stem in self._frames:
                    raise ValueError(
                        f"{location}: frame {frame.stem} is in splits {self._frames[frame.stem].split} "
                        f"and {frame.split}; choose one split"
                    )
                self._frames[frame.stem] = frame
        except BaseException:
            self._stack.close()
            raise
        self._frames = dict(sorted(self._frames.items()))
        log.info("indexed %d frames in %s", len(self._frames), location)

    def __enter__(self) -> "PhotoIndex":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release the source (open zips, downloaded copies)."""
        self._stack.close()

    def __len__(self) -> int:
        return len(self._frames)

    def frames(self) -> list[cityscapes.Frame]:
        """Every frame, sorted by id."""
        return list(self._frames.values())

    def get(self, image_id: str) -> cityscapes.Frame:
        """The frame with this id.

        Raises:
            KeyError: no frame has this id.
        """
        return self._frames[image_id]

    def image_bytes(self, image_id: str) -> bytes:
        """The frame's PNG exactly as stored."""
        return self.source.read(self.get(image_id).image)

    def true_mask(self, image_id: str) -> np.ndarray:
        """The frame's category-id mask (HxW uint8, 0..7), its labelIds mapped through the official table.

        Raises:
            KeyError: no frame has this id.
            ValueError: the labelIds file is not a single-channel 8-bit PNG.
        """
        frame = self.get(image_id)
        label_ids = cv2.imdecode(np.frombuffer(self.source.read(frame.label), np.uint8), cv2.IMREAD_UNCHANGED)
        if label_ids is None or label_ids.ndim != 2 or label_ids.dtype != np.uint8:
            raise ValueError(f"{self.source.where(frame.label)}: not a single-channel 8-bit labelIds PNG")
        categories = category_lut()[label_ids]
        # Ids outside the table (none in official files) count as void, which the metrics ignore.
        categories[categories == INVALID] = VOID
        return categories
