import zipfile

import pytest
from click.testing import CliRunner

from cityseg.cli import main
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


def _damage_first_member(zip_path, compression: int) -> str:
    """Rewrite a zip with `compression` and spoil its first member's data; returns that member's name."""
    with zipfile.ZipFile(zip_path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(zip_path, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    with zipfile.ZipFile(zip_path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(".png"))
    data = bytearray(zip_path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    # 0xff opens a deflate block of the reserved type; in a stored member it breaks the CRC.
    data[start : start + 8] = b"\xff" * 8
    zip_path.write_bytes(bytes(data))
    return info.filename


@pytest.mark.parametrize(
    ("compression", "cause"),
    [(zipfile.ZIP_DEFLATED, "Error -3 while decompressing data"), (zipfile.ZIP_STORED, "Bad CRC-32")],
    ids=["deflated", "stored"],
)
def test_a_damaged_zip_member_names_the_zip_and_the_member(root, tmp_path, compression, cause):
    zips = builders.zip_cityscapes(root, tmp_path / "zips")
    member = _damage_first_member(zips / cityscapes.LABEL_ZIP, compression)
    with cityscapes.open_source(zips) as source, pytest.raises(ValueError) as caught:
        source.read(f"{cityscapes.LABEL_ZIP}/{member}")
    assert str(caught.value).startswith(
        f"{zips / cityscapes.LABEL_ZIP}: member {member} is damaged or unreadable ({cause}"
    )
    result = CliRunner().invoke(
        main, ["remap", "--cityscapes", str(zips), "--out", str(tmp_path / "out"), "--workers", "1"]
    )
    assert result.exit_code == 1 and f"Error: {zips / cityscapes.LABEL_ZIP}: member " in result.output
    assert not (tmp_path / "out").exists()
