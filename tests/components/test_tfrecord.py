"""TFRecord framing: records written by `write_records` are counted and checked by `scan_records`."""

import hashlib

import pytest
import tensorflow as tf

from cityseg.components.tfrecord import DamagedRecordError, scan_records, write_records

RECORDS = [b"first", b"", b"x" * 3000]
# Each record: 8 length bytes, 4 CRC bytes, the data, 4 CRC bytes.
OFFSETS = [0, 21, 37]


@pytest.fixture
def shard(tmp_path):
    path = tmp_path / "train-00000-of-00001.tfrecord"
    assert write_records(path, RECORDS) == 3
    return path


def test_scan_counts_the_records_tensorflow_reads_and_hashes_the_file(shard, tmp_path):
    scan = scan_records(shard)
    assert scan.records == 3 == sum(1 for _ in tf.data.TFRecordDataset(str(shard)))
    assert scan.sha256 == hashlib.sha256(shard.read_bytes()).hexdigest()
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    assert scan_records(tmp_path / "empty.tfrecord").records == 0


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        (OFFSETS[2] + 5, "record 3 at byte 37: truncated, 5 of its 12 header bytes"),
        (OFFSETS[2] + 12 + 100, "record 3 at byte 37: truncated, the file ends inside the record"),
        (OFFSETS[2] + 12 + 3000 + 2, "record 3 at byte 37: truncated, the file ends inside the record"),
    ],
    ids=["header", "data", "footer"],
)
def test_a_truncated_file_is_named_with_the_record_and_offset(shard, keep, message):
    shard.write_bytes(shard.read_bytes()[:keep])
    with pytest.raises(DamagedRecordError, match=f"^{shard}: {message}"):
        scan_records(shard)


@pytest.mark.parametrize(
    ("position", "message"),
    [
        (OFFSETS[1] + 2, "record 2 at byte 21: damaged, its length"),
        (12 + 1, "record 1 at byte 0: damaged, its data"),
    ],
    ids=["length", "data"],
)
def test_a_flipped_bit_fails_the_crc_check(shard, position, message):
    data = bytearray(shard.read_bytes())
    data[position] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(DamagedRecordError, match=f"^{shard}: {message} fails the CRC-32C check"):
        scan_records(shard)
