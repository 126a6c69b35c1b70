"""One 8x8 confusion matrix per frame of the scored split, clean and under each corruption.

The split's scores come from the sum of these matrices (`cityseg.components.metrics`); keeping them
per frame lets `cityseg report` resample frames (a paired bootstrap, `cityseg.components.sweep.stats`)
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
