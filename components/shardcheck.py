"""Check a shard folder against its manifest before anything is trained on it.

The manifest is what training sizes its schedule and reports its speed from. A manifest edited by
hand, or a shard truncated or replaced after `cityseg shard` wrote it, would make training run with
wrong numbers or fail deep inside TensorFlow. One pass over every shard's TFRecord framing (no
decoding) counts its records, checks every CRC and hashes the file, so a mismatch is refused up
front with the split, the file and both numbers.
"""

import logging
import os

from cityseg.components import storage, tfrecord
from cityseg.components.dataset import local_shards
from cityseg.components.shard.core import MANIFEST, content_hash, shard_name

log = logging.getLogger(__name__)


class ShardMismatchError(ValueError):
    """The shard files do not hold what their manifest says."""


def _check_split(folder, split: str, info: dict, manifest_path: str) -> dict[str, str]:
    """Scan one split's shards; returns their SHA-256 by file name."""
    listed = info.get("shards") or []
    digests, held = {}, []
    for index, expected in enumerate(listed):
        name = shard_name(split, index, len(listed))
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise ShardMismatchError(f"{path}: shard listed in {manifest_path} is missing")
        scan = tfrecord.scan_records(path)
        if scan.records != expected:
            raise ShardMismatchError(
                f"{path}: {manifest_path} lists {expected} examples for this shard, the file holds "
                f"{scan.records}"
            )
        digests[name] = scan.sha256
        held.append(f"{name}: {scan.records}")
    if info.get("examples") != sum(listed):
        raise ShardMismatchError(
            f"{manifest_path}: split {split!r} lists {info.get('examples')} examples, but its shard files "
            f"hold {sum(listed)} ({', '.join(held) or 'no shard files'})"
        )
    return digests


def verify_shards(shards_dir: str | os.PathLike, manifest: dict) -> None:
    """Check every split's example count and every shard file against `manifest`.

    Each shard listed must exist, be whole (no truncation, every CRC right) and hold the examples
    the manifest lists for it; each split's `examples` must be the sum over its shards; and the
    shards' `content_hash`, when the manifest has one, must match the files.

    Raises:
        ShardMismatchError: naming the manifest or the shard file and the numbers that disagree.
        cityseg.components.tfrecord.DamagedRecordError: a shard is truncated or damaged.
    """
    folder = local_shards(shards_dir)
    manifest_path = storage.join(shards_dir, MANIFEST)
    digests = {}
    for split, info in manifest["splits"].items():
        digests.update(_check_split(folder, split, info, manifest_path))
    expected = manifest.get("content_hash")
    if expected is not None and content_hash(digests) != expected:
        raise ShardMismatchError(
            f"{manifest_path}: content_hash {expected[:16]}... does not match the shard files "
            f"({content_hash(digests)[:16]}...): they changed after `cityseg shard` wrote them"
        )
    log.info("%s: %d shard files match %s", shards_dir, len(digests), MANIFEST)
