"""The source fingerprint over 5,000 files, from listings, against hashing every byte of the same files."""

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np

from cityseg.components import cityscapes
from cityseg.components.source.core import fingerprint
from tests.benchmarks.common import Result, machine, timed

FRAMES = 2_500  # an image and a labelIds file each: 5,000 files
FILE_BYTES = 16 * 1024
CITIES = 25


def _write_source(root: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(FRAMES):
        city = f"city{i % CITIES:02d}"
        stem = f"{city}_{i:06d}_000019"
        for kind, suffix in (("leftImg8bit", cityscapes.IMAGE_SUFFIX), ("gtFine", cityscapes.LABEL_SUFFIX)):
            path = root / kind / "train" / city / f"{stem}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(rng.bytes(FILE_BYTES))


def _hash_every_byte(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.png")):
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _zip(root: Path, zip_dir: Path) -> None:
    zip_dir.mkdir(parents=True, exist_ok=True)
    for zip_name, top in ((cityscapes.IMAGE_ZIP, "leftImg8bit"), (cityscapes.LABEL_ZIP, "gtFine")):
        with zipfile.ZipFile(zip_dir / zip_name, "w", zipfile.ZIP_STORED) as archive:
            for path in sorted((root / top).rglob("*.png")):
                archive.write(path, path.relative_to(root).as_posix())


def run(work_dir: Path) -> list[Result]:
    """Seconds to fingerprint a 5,000-file folder and the two zips, and to hash every byte instead."""
    root = Path(work_dir) / "source"
    _write_source(root)
    _zip(root, Path(work_dir) / "zips")
    files = 2 * FRAMES
    folder_s, found = timed(fingerprint, str(root), repeat=3)
    zips_s, _ = timed(fingerprint, str(Path(work_dir) / "zips"), repeat=3)
    bytes_s, _ = timed(_hash_every_byte, root, repeat=3)
    shutil.rmtree(root)
    shutil.rmtree(Path(work_dir) / "zips")
    assert found.files == files
    size = f"{files:,} files of {FILE_BYTES // 1024} KiB"
    return [
        Result(
            name="source fingerprint, folder of 5,000 files",
            value=folder_s,
            unit="s",
            baseline_name="sha256 of every byte of the same files (page cache warm)",
            baseline_value=bytes_s,
            goal="ratio < 1, and the gap grows with file size: the listing never reads the frames",
            command="python -m tests.benchmarks --only source",
            machine=machine(),
            detail=f"{size}; {folder_s * 1e6 / files:.0f} us per file",
        ),
        Result(
            name="source fingerprint, the two official zips holding 5,000 members",
            value=zips_s,
            unit="s",
            baseline_name="folder listing",
            baseline_value=folder_s,
            goal="central directory only: about as fast as the folder listing",
            command="python -m tests.benchmarks --only source",
            machine=machine(),
            detail=f"{size} in 2 stored zips",
        ),
    ]
