"""One 8x8 confusion matrix per frame of the scored split, clean and under each corruption.

The split's scores come from the sum of these matrices (`cityseg.components.metrics`); keeping them
per frame lets `cityseg report` resample frames (a paired bootstrap, `cityseg.components.compare.stats`)
when a comparison has a single seed. They travel as one `frame_confusions.npz`: key `clean`, and
`<corruption>_<severity>` (e.g. `fog_2`), each an int64 array (frames, 8, 8) in split order.
"""

import io
import zipfile

import numpy as np

from cityseg.components.labels import NUM_CLASSES

FRAME_CONFUSIONS = "frame_confusions.npz"
CLEAN = "clean"


def setting_key(name: str, severity: int) -> str:
    """The npz key of corruption `name` at `severity`, e.g. `fog_2`."""
    return f"{name}_{severity}"


def corruption_of(key: str) -> tuple[str, int]:
    """(corruption, severity) of an npz key other than `clean`: `fog_3` -> (fog, 3)."""
    name, _, severity = key.rpartition("_")
    if not name or not severity.isdigit():
        raise ValueError(f"{key!r} is not a <corruption>_<severity> key")
    return name, int(severity)


def frame_confusions(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """One confusion matrix per frame of (N, H, W) masks: int64 (N, classes, classes), row = true class.

    One bincount over all frames, each frame's pairs offset by frame * classes^2.

    Raises:
        ValueError: the shapes differ or a value lies outside 0..num_classes-1.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim < 1:
        raise ValueError(f"true and predicted masks differ in shape: {y_true.shape} vs {y_pred.shape}")
    for name, values in (("true", y_true), ("predicted", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} mask has values outside 0..{num_classes - 1}")
    frames = len(y_true)
    cells = num_classes * num_classes
    flat = y_true.reshape(frames, -1).astype(np.int64) * num_classes + y_pred.reshape(frames, -1)
    flat += np.arange(frames, dtype=np.int64)[:, None] * cells
    counts = np.bincount(flat.ravel(), minlength=frames * cells)
    return counts.reshape(frames, num_classes, num_classes)


def check(stacks: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """`stacks` when it holds `clean` and every array is int64 (frames, 8, 8) with one frame count.

    Raises:
        ValueError: naming `source` and what is wrong.
    """
    if CLEAN not in stacks:
        raise ValueError(f"{source}: no {CLEAN!r} frame confusions (keys: {', '.join(stacks) or 'none'})")
    frames = len(stacks[CLEAN])
    for key, stack in stacks.items():
        if key != CLEAN:
            try:
                corruption_of(key)
            except ValueError as err:
                raise ValueError(f"{source}: {err}") from err
        if stack.dtype != np.int64 or stack.shape != (frames, NUM_CLASSES, NUM_CLASSES):
            raise ValueError(
                f"{source}: {key!r} must be int64 ({frames}, {NUM_CLASSES}, {NUM_CLASSES}), "
                f"got {stack.dtype} {stack.shape}"
            )
    return stacks


def to_npz(stacks: dict[str, np.ndarray]) -> bytes:
    """The stacks as the bytes of a compressed `frame_confusions.npz`."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **check(stacks, FRAME_CONFUSIONS))
    return buffer.getvalue()


def from_npz(data: bytes, source: str) -> dict[str, np.ndarray]:
    """The stacks of a `frame_confusions.npz` read from `data`.

    Raises:
        ValueError: `data` is no npz of frame confusions (the message names `source`).
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            stacks = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{source}: not a readable npz file: {err}") from err
    return check(stacks, source)
