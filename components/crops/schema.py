"""The TFRecord schema of object crops: keys, encoding and parsing, in one place.

The keys follow TF's image-classification records (`image/encoded`, `image/class/label`), with the
instance's id, box and visible share so a crop can be traced back to its frame.
"""

import numpy as np

CLASSES = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
NUM_CLASSES = len(CLASSES)

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
LABEL = "image/class/label"
TEXT = "image/class/text"
FILENAME = "image/filename"
INSTANCE_ID = "image/object/instance_id"
BBOX = "image/object/bbox"  # xmin, ymin, xmax, ymax in source pixels, inclusive
VISIBLE = "image/object/visible"


def encode_crop(png: bytes, label: int, filename: str, instance_id: int, box, visible: float) -> bytes:
    """A serialized `tf.train.Example` of one crop (PNG) and its class index."""
    from tensorflow_datasets.proto import tf_example_pb2, tf_feature_pb2

    def as_bytes(value: bytes):
        return tf_feature_pb2.Feature(bytes_list=tf_feature_pb2.BytesList(value=[value]))

    def as_ints(*values: int):
        return tf_feature_pb2.Feature(int64_list=tf_feature_pb2.Int64List(value=[int(v) for v in values]))

    features = {
        IMAGE_ENCODED: as_bytes(png),
        IMAGE_FORMAT: as_bytes(b"png"),
        LABEL: as_ints(label),
        TEXT: as_bytes(CLASSES[label].encode()),
        FILENAME: as_bytes(filename.encode("utf-8")),
        INSTANCE_ID: as_ints(instance_id),
        BBOX: as_ints(*box),
        VISIBLE: tf_feature_pb2.Feature(float_list=tf_feature_pb2.FloatList(value=[float(visible)])),
    }
    example = tf_example_pb2.Example(features=tf_feature_pb2.Features(feature=features))
    return example.SerializeToString(deterministic=True)


def decode_crop(serialized: bytes) -> dict:
    """A crop record as plain values, without TensorFlow: png, label, filename, instance_id, box, visible."""
    from tensorflow_datasets.proto import tf_example_pb2

    feature = tf_example_pb2.Example.FromString(serialized).features.feature
    return {
        "png": feature[IMAGE_ENCODED].bytes_list.value[0],
        "label": int(feature[LABEL].int64_list.value[0]),
        "filename": feature[FILENAME].bytes_list.value[0].decode("utf-8"),
        "instance_id": int(feature[INSTANCE_ID].int64_list.value[0]),
        "box": [int(v) for v in feature[BBOX].int64_list.value],
        "visible": float(feature[VISIBLE].float_list.value[0]),
    }


def parse_crop(serialized):
    """Graph op: serialized crop -> (image uint8 [S, S, 3], label int32)."""
    import tensorflow as tf

    spec = {IMAGE_ENCODED: tf.io.FixedLenFeature((), tf.string), LABEL: tf.io.FixedLenFeature((), tf.int64)}
    parsed = tf.io.parse_single_example(serialized, spec)
    return tf.io.decode_png(parsed[IMAGE_ENCODED], channels=3), tf.cast(parsed[LABEL], tf.int32)


def class_counts(labels) -> dict[str, int]:
    """Examples per class name, every class listed."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=NUM_CLASSES)
    return {name: int(counts[i]) for i, name in enumerate(CLASSES)}
