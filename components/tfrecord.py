"""The TFRecord example schema of cityseg shards: keys, encoding, framing and parsing, in one place.

The keys are those of TF Model Garden and DeepLab segmentation records, so their readers take our
shards as they are. Encoding and framing need no TensorFlow: the shard writers run in worker
processes, and importing TensorFlow there would cost each of them seconds. The `tf.train.Example`
wire format comes from the copy of the proto that tensorflow-datasets ships, and the TFRecord
framing is the documented length + masked CRC-32C layout, which `scan_records` also checks without
TensorFlow. Parsing runs in a tf.data graph.
"""

import dataclasses
import hashlib
import struct
from collections.abc import Iterable
from pathlib import Path

import google_crc32c
import numpy as np

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_FILENAME = "image/filename"
MASK_ENCODED = "image/segmentation/class/encoded"
MASK_FORMAT = "image/segmentation/class/format"
PNG = b"png"

_CRC_MASK_DELTA = 0xA282EAD8


def encode_example(image_png: bytes, mask_png: bytes, filename: str, height: int, width: int) -> bytes:
    """A serialized `tf.train.Example` holding one PNG image and its PNG category-id mask."""
    from tensorflow_datasets.proto import tf_example_pb2, tf_feature_pb2

    def as_bytes(value: bytes) -> "tf_feature_pb2.Feature":
        return tf_feature_pb2.Feature(bytes_list=tf_feature_pb2.BytesList(value=[value]))

    def as_int(value: int) -> "tf_feature_pb2.Feature":
        return tf_feature_pb2.Feature(int64_list=tf_feature_pb2.Int64List(value=[value]))

    features = {
        IMAGE_ENCODED: as_bytes(image_png),
        IMAGE_FORMAT: as_bytes(PNG),
        IMAGE_HEIGHT: as_int(height),
        IMAGE_WIDTH: as_int(width),
        IMAGE_FILENAME: as_bytes(filename.encode("utf-8")),
        MASK_ENCODED: as_bytes(mask_png),
        MASK_FORMAT: as_bytes(PNG),
    }
    example = tf_example_pb2.Example(features=tf_feature_pb2.Features(feature=features))
    # Features is a proto map: without `deterministic` the key order, and so the bytes, may vary.
    return example.SerializeToString(deterministic=True)


def _mask(crc: int) -> bytes:
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF)


def _masked_crc(data: bytes) -> bytes:
    return _mask(google_crc32c.value(data))


def frame_record(data: bytes) -> bytes:
    """One TFRecord: little-endian uint64 length, its masked CRC-32C, the data, the data's masked CRC."""
    length = struct.pack("<Q", len(data))
    return length + _masked_crc(length) + data + _masked_crc(data)


def write_records(path: str | Path, records: Iterable[bytes]) -> int:
    """Write serialized examples as one TFRecord file; returns the number written."""
    count = 0
    with open(path, "wb") as handle:
        for record in records:
            handle.write(frame_record(record))
            count += 1
    return count


class DamagedRecordError(ValueError):
    """A TFRecord file that is truncated or fails a CRC check; the message names the file."""


@dataclasses.dataclass(frozen=True)
class RecordScan:
    """What a pass over a TFRecord file's framing found: its records and the file's SHA-256."""

    records: int
    sha256: str


def scan_records(path: str | Path, chunk_bytes: int = 1 << 20) -> RecordScan:
    """Walk the framing of a TFRecord file without parsing examples: count records, check every CRC.

    Raises:
        DamagedRecordError: naming the file, the record and its byte offset, when the file is
            truncated or a length or data CRC does not match.
    """
    digest = hashlib.sha256()
    records = offset = 0
    with open(path, "rb") as handle:
        while header := handle.read(12):
            where = f"{path}: record {records + 1} at byte {offset}"
            if len(header) < 12:
                raise DamagedRecordError(f"{where}: truncated, {len(header)} of its 12 header bytes")
            if _masked_crc(header[:8]) != header[8:]:
                raise DamagedRecordError(f"{where}: damaged, its length fails the CRC-32C check")
            (length,) = struct.unpack("<Q", header[:8])
            data_crc = google_crc32c.Checksum()
            digest.update(header)
            remaining = length
            while remaining:
                chunk = handle.read(min(remaining, chunk_bytes))
                if not chunk:
                    break
                data_crc.update(chunk)
                digest.update(chunk)
                remaining -= len(chunk)
            footer = handle.read(4)
            if remaining or len(footer) < 4:
                raise DamagedRecordError(
                    f"{where}: truncated, the file ends inside the record ({length} data bytes expected)"
                )
            if _mask(int.from_bytes(data_crc.digest(), "big")) != footer:
                raise DamagedRecordError(f"{where}: damaged, its data fails the CRC-32C check")
            digest.update(footer)
            records += 1
            offset += 12 + length + 4
    return RecordScan(records, digest.hexdigest())


def parse_example(serialized):
    """Graph op: serialized example -> (image uint8 [H, W, 3], mask uint8 [H, W], filename string)."""
    import tensorflow as tf

    spec = {
        IMAGE_ENCODED: tf.io.FixedLenFeature((), tf.string),
        MASK_ENCODED: tf.io.FixedLenFeature((), tf.string),
        IMAGE_FILENAME: tf.io.FixedLenFeature((), tf.string, default_value=""),
    }
    parsed = tf.io.parse_single_example(serialized, spec)
    image = tf.io.decode_png(parsed[IMAGE_ENCODED], channels=3)
    mask = tf.io.decode_png(parsed[MASK_ENCODED], channels=1)[..., 0]
    return image, mask, parsed[IMAGE_FILENAME]


def tfds_features(height: int, width: int):
    """The TFDS feature spec of these examples; flattened, its keys are exactly the keys above."""
    import tensorflow_datasets as tfds

    text = tfds.features.Text()
    return tfds.features.FeaturesDict(
        {
            "image": {
                "encoded": tfds.features.Image(shape=(height, width, 3), encoding_format="png"),
                "format": text,
                "height": tfds.features.Scalar(dtype=np.int64),
                "width": tfds.features.Scalar(dtype=np.int64),
                "filename": text,
                "segmentation": {
                    "class": {
                        "encoded": tfds.features.Image(shape=(height, width, 1), encoding_format="png"),
                        "format": text,
                    }
                },
            }
        }
    )
