"""The source fingerprint: folders, the official zips and gs:// prefixes (on the real emulator)."""

import os
import shutil
import zipfile

import pytest

from cityseg.components import cityscapes, storage
from cityseg.components.source.core import check_data_source, fingerprint
from tests.builders import image_path, label_path, write_cityscapes, zip_cityscapes


@pytest.fixture
def source(tmp_path):
    return write_cityscapes(tmp_path / "cityscapes", height=16, width=40, frames_per_city=2)


def test_folder_fingerprint_counts_only_frame_files_and_is_independent_of_the_location(source, tmp_path):
    first = fingerprint(str(source))
    assert first.kind == "folder"
    assert first.files == 4 * 2 * 2  # 4 cities x 2 frames x (image + labelIds)
    (source / "README.md").write_text("not data")
    (source / "gtFine" / "train" / "aachen" / "notes.json").write_text("{}")
    assert fingerprint(str(source)) == first
    # Copied with times kept (cp -p, rsync -a) to another place: the same data, the same fingerprint.
    moved = shutil.copytree(source, tmp_path / "elsewhere" / "cityscapes", copy_function=shutil.copy2)
    assert fingerprint(str(moved)) == first
    assert fingerprint(str(source)).digest == first.digest  # and again another time


def test_folder_fingerprint_changes_when_a_frame_is_added_removed_or_rewritten(source):
    before = fingerprint(str(source)).digest
    image_path(source, "train", "aachen", 0).unlink()
    label_path(source, "train", "aachen", 0).unlink()
    removed = fingerprint(str(source))
    assert removed.digest != before and removed.files == 14
    shutil.copy2(image_path(source, "val", "frankfurt", 1), image_path(source, "train", "aachen", 0))
    shutil.copy2(label_path(source, "val", "frankfurt", 1), label_path(source, "train", "aachen", 0))
    assert fingerprint(str(source)).digest not in (before, removed.digest)
    # Rewritten in place with the same size: the modification time tells.
    added = fingerprint(str(source)).digest
    label = label_path(source, "val", "frankfurt", 0)
    stat = label.stat()
    label.write_bytes(label.read_bytes())
    os.utime(label, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert fingerprint(str(source)).digest != added


def test_folder_fingerprint_covers_the_instance_masks_and_polygons_the_crops_read(source):
    """The object pipeline's crops read gtFine's instanceIds and polygons: changing either is new data."""
    label = label_path(source, "train", "aachen", 0)
    instances = label.with_name(label.name.replace(cityscapes.LABEL_SUFFIX, cityscapes.INSTANCE_SUFFIX))
    polygons = label.with_name(label.name.replace(cityscapes.LABEL_SUFFIX, cityscapes.POLYGONS_SUFFIX))
    (source / "gtFine" / "train" / "aachen" / "aachen_000000_000000_gtFine_color.png").write_bytes(b"x")
    before = fingerprint(str(source))
    instances.write_bytes(label.read_bytes())
    with_instances = fingerprint(str(source))
    assert with_instances.files == before.files + 1 and with_instances.digest != before.digest
    polygons.write_text('{"imgHeight": 16, "imgWidth": 40, "objects": []}')
    with_polygons = fingerprint(str(source))
    assert with_polygons.files == before.files + 2 and with_polygons.digest != with_instances.digest
    stat = polygons.stat()
    polygons.write_text('{"imgHeight": 16, "imgWidth": 40, "objects": [] }')
    os.utime(polygons, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert fingerprint(str(source)).digest != with_polygons.digest


def test_zip_fingerprint_reads_the_central_directory_and_sees_a_changed_member(source, tmp_path):
    zips = zip_cityscapes(source, tmp_path / "zips")
    first = fingerprint(str(zips))
    assert first.kind == "zips"
    assert first.files == 16  # README and folder entries do not count
    # The zips' own times do not count, only their members.
    os.utime(zips / "gtFine_trainvaltest.zip", ns=(0, 0))
    assert fingerprint(str(zips)) == first
    member = "gtFine/val/frankfurt/frankfurt_000000_000000_gtFine_labelIds.png"
    with zipfile.ZipFile(zips / "gtFine_trainvaltest.zip", "a") as archive:
        archive.writestr(member.replace("000000_gtFine", "000009_gtFine"), b"new frame")
    assert fingerprint(str(zips)).digest != first.digest


def test_a_damaged_zip_is_named(source, tmp_path):
    zips = zip_cityscapes(source, tmp_path / "zips")
    (zips / "gtFine_trainvaltest.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"gtFine_trainvaltest.zip: not a readable zip file"):
        fingerprint(str(zips))


def test_gcs_fingerprint_uses_generation_and_checksums(source, gcs_emulator):
    bucket = gcs_emulator()
    prefix = f"{bucket}/data/cityscapes"
    storage.copy_tree(source, prefix)
    first = fingerprint(prefix)
    assert first.kind == "gcs" and first.files == 16
    listed = {info.name: info for info in storage.list_objects(prefix)}
    info = listed["gtFine/train/aachen/aachen_000000_000000_gtFine_labelIds.png"]
    assert info.size == label_path(source, "train", "aachen", 0).stat().st_size
    assert info.generation is not None and info.crc32c
    assert fingerprint(prefix) == first
    # The same bytes uploaded again make a new generation: the object was rewritten.
    target = storage.join(prefix, "gtFine/train/aachen/aachen_000000_000000_gtFine_labelIds.png")
    storage.write_bytes(target, storage.read_bytes(target))
    rewritten = fingerprint(prefix)
    assert rewritten.digest != first.digest
    storage.write_bytes(storage.join(prefix, "notes.txt"), b"not data")
    assert fingerprint(prefix) == rewritten


def test_local_listing_reports_size_and_mtime(tmp_path):
    storage.write_bytes(tmp_path / "a" / "b.bin", b"12345")
    (info,) = storage.list_objects(tmp_path)
    assert (info.name, info.size) == ("a/b.bin", 5)
    assert info.mtime_ns == (tmp_path / "a" / "b.bin").stat().st_mtime_ns
    assert storage.list_objects(tmp_path / "missing") == []


def test_missing_or_empty_sources_are_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"data: Cityscapes source .*missing does not exist \(no such folder\)"
    ):
        check_data_source(str(tmp_path / "missing"))
    (tmp_path / "empty" / "leftImg8bit").mkdir(parents=True)
    (tmp_path / "empty" / "leftImg8bit" / "README").write_text("x")
    with pytest.raises(ValueError, match=r"empty holds no Cityscapes frames"):
        fingerprint(str(tmp_path / "empty"))
