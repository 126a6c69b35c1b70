import pytest

from cityseg.components import cityscapes, storage
from tests import builders


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return builders.write_cityscapes(tmp_path_factory.mktemp("cityscapes"), frames_per_city=1)


EXPECTED_KEYS = [
    ("test", "berlin", "berlin_000000_000000"),
    ("train", "aachen", "aachen_000000_000000"),
    ("train", "bochum", "bochum_000000_000000"),
    ("val", "frankfurt", "frankfurt_000000_000000"),
]


def test_root_folder_frames_are_paired_and_sorted(root):
    with cityscapes.open_source(root) as source:
        frames = cityscapes.find_frames(source)
        assert [(f.split, f.city, f.stem) for f in frames] == EXPECTED_KEYS
        assert frames[0].image == "leftImg8bit/test/berlin/berlin_000000_000000_leftImg8bit.png"
        assert frames[0].label == "gtFine/test/berlin/berlin_000000_000000_gtFine_labelIds.png"
        assert source.read(frames[0].label) == builders.label_path(root, "test", "berlin", 0).read_bytes()


def test_zip_members_are_read_without_extracting(root, tmp_path):
    zips = builders.zip_cityscapes(root, tmp_path / "zips")
    with cityscapes.open_source(zips) as source:
        frames = cityscapes.find_frames(source)
        assert [(f.split, f.city, f.stem) for f in frames] == EXPECTED_KEYS
        image = frames[1].image
        assert (
            image
            == "leftImg8bit_trainvaltest.zip/leftImg8bit/train/aachen/aachen_000000_000000_leftImg8bit.png"
        )
        assert source.where(image) == str(zips / image)
        assert source.read(image) == builders.image_path(root, "train", "aachen", 0).read_bytes()
    assert sorted(p.name for p in zips.iterdir()) == [cityscapes.LABEL_ZIP, cityscapes.IMAGE_ZIP]


def test_gcs_zips_are_downloaded_for_the_block_only(root, tmp_path, gcs_emulator):
    bucket = gcs_emulator()
    storage.copy_tree(builders.zip_cityscapes(root, tmp_path / "zips"), f"{bucket}/cs")
    with cityscapes.open_source(f"{bucket}/cs") as source:
        frames = cityscapes.find_frames(source)
        assert len(frames) == 4
        assert source.where(frames[0].label).startswith(f"{bucket}/cs/gtFine_trainvaltest.zip/gtFine/test/")
        cache = source.zip_dir
        assert (tmp_path / "zips" / cityscapes.LABEL_ZIP).read_bytes() == storage.read_bytes(
            f"{cache}/{cityscapes.LABEL_ZIP}"
        )
    assert not storage.exists(cache)


def test_many_unpaired_files_are_listed_with_a_count(tmp_path):
    root = builders.write_cityscapes(tmp_path / "src", frames_per_city=2)
    for path in sorted((root / "gtFine").rglob("*.png")):
        path.unlink()
    with cityscapes.open_source(root) as source, pytest.raises(ValueError) as caught:
        cityscapes.find_frames(source)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"image without label: {builders.image_path(root, 'test', 'berlin', 0)}"
    assert lines[-1] == "... and 3 more" and len(lines) == 6


def test_a_damaged_zip_is_named(root, tmp_path):
    zips = builders.zip_cityscapes(root, tmp_path / "zips")
    (zips / cityscapes.IMAGE_ZIP).write_bytes(b"not a zip")
    with (
        cityscapes.open_source(zips) as source,
        pytest.raises(ValueError, match=f"{zips / cityscapes.IMAGE_ZIP}: not a readable zip file"),
    ):
        cityscapes.find_frames(source)


def test_empty_gcs_prefix_is_refused(gcs_emulator):
    bucket = gcs_emulator()
    source = cityscapes.open_source(f"{bucket}/nothing")
    with pytest.raises(ValueError, match=f"{bucket}/nothing: nothing is stored under this gs:// prefix"):
        source.__enter__()
