"""The splits of a shard folder, and which split a frame goes to.

The source's train frames are divided between `train`, which the optimizer sees, and `select`,
which chooses among models: early stopping, the learning-rate plateau, the best weights, int8
calibration and the sweep's configuration. `val` then judges a model that no choice has seen, and
`test` is the source's test split as it is.
"""

import hashlib

TRAIN = "train"
SELECT = "select"
VAL = "val"
TEST = "test"
# The order a shard folder lists its splits in.
ORDER = (TRAIN, SELECT, VAL, TEST)


def assign_split(source_split: str, frame_id: str, select_fraction: float) -> str:
    """The split a frame is written to: `select` for the share of train frames its id hashes into.

    The draw depends only on the frame's id (`city/stem`), never on the other frames, so adding
    frames to the source never moves a frame that was there before from one split to another.

    Raises:
        ValueError: `select_fraction` is outside [0, 1).
    """
    if not 0 <= select_fraction < 1:
        raise ValueError(f"select_fraction must be in [0, 1), got {select_fraction}")
    if source_split != TRAIN:
        return source_split
    # The first 8 bytes of SHA-256 as a number in [0, 1): uniform, and the same on every machine.
    draw = int.from_bytes(hashlib.sha256(frame_id.encode()).digest()[:8], "big") / 2**64
    return SELECT if draw < select_fraction else TRAIN
