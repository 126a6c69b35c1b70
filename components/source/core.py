"""Checks on a Cityscapes source (folder, folder of the official zips, or gs:// prefix), and its fingerprint.

The fingerprint is what makes the KFP cache content-aware: remap and shard take it as an input, so
their cache key changes exactly when the frames they read change. It is computed from listings only,
never by reading the frames:
- folder: each file's relative path, size and modification time (ns);
- official zips: each member's name, size and CRC-32 from the zip's central directory;
- gs:// prefix: each object's name, generation, size and crc32c (or md5).
Only the files the pipelines read count (images, and the `labelIds` masks, `instanceIds` masks and
`polygons` files of gtFine; or the two zips), and paths are relative to the source, so the same data
gives the same fingerprint on another machine or day. The object pipeline's crops read the instance
masks and the polygons, so a change to either changes the fingerprint.
"""

import dataclasses
import hashlib
import zipfile
from pathlib import Path

from cityseg.components import cityscapes, storage

# 2: the instanceIds masks and polygons files count too.
FINGERPRINT_VERSION = "cityseg-fingerprint-2"
# The files some step reads: images and labelIds (remap, shard), instanceIds and polygons (crops).
_READ_FILES = (cityscapes.IMAGE_RE, cityscapes.LABEL_RE, cityscapes.INSTANCE_RE, cityscapes.POLYGONS_RE)


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """The digest of a source's listing, how it was listed, and how many files it covers."""

    digest: str
    kind: str
    files: int


def check_data_source(data: str) -> str:
    """Return `data` when the Cityscapes source exists.

    Raises:
        ValueError: nothing is stored there; the message starts with `data:`.
    """
    if not storage.exists(data):
        kind = "gs:// prefix" if storage.is_gcs(data) else "folder"
        raise ValueError(f"data: Cityscapes source {data} does not exist (no such {kind})")
    return data


def _is_frame_file(name: str) -> bool:
    return any(pattern.search(name) for pattern in _READ_FILES)


def _zip_lines(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable zip file ({err})") from None
    return [
        f"{path.name}/{info.filename}\t{info.file_size}\t{info.CRC:08x}"
        for info in members
        if _is_frame_file(info.filename)
    ]


def _listing(data: str) -> tuple[str, list[str]]:
    objects = storage.list_objects(data)
    zips = {info.name for info in objects} & {cityscapes.IMAGE_ZIP, cityscapes.LABEL_ZIP}
    if storage.is_gcs(data):
        wanted = [info for info in objects if info.name in zips or (not zips and _is_frame_file(info.name))]
        lines = [
            f"{info.name}\t{info.generation}\t{info.size}\t{info.crc32c or ''}\t{info.md5 or ''}"
            for info in wanted
        ]
        return "gcs-zips" if zips else "gcs", lines
    if zips:
        return "zips", [line for name in sorted(zips) for line in _zip_lines(Path(data, name))]
    return "folder", [
        f"{info.name}\t{info.size}\t{info.mtime_ns}" for info in objects if _is_frame_file(info.name)
    ]


def fingerprint(data: str) -> Fingerprint:
    """The fingerprint of a Cityscapes source, from its listing (see the module docstring).

    Raises:
        ValueError: the source does not exist, holds no Cityscapes frames, or a zip is unreadable.
    """
    check_data_source(data)
    kind, lines = _listing(data)
    if not lines:
        raise ValueError(
            f"data: {data} holds no Cityscapes frames (leftImg8bit/ and gtFine/ files, or "
            f"{cityscapes.IMAGE_ZIP} and {cityscapes.LABEL_ZIP})"
        )
    digest = hashlib.sha256()
    for line in [f"{FINGERPRINT_VERSION}\t{kind}", *lines]:
        digest.update(line.encode("utf-8") + b"\n")
    return Fingerprint(digest.hexdigest(), kind, len(lines))
