"""Finding Cityscapes frames: in a root folder, in the two official zips, or under a gs:// prefix.

A source is named the way users have Cityscapes at hand: the unpacked root folder (`leftImg8bit/`,
`gtFine/`), the folder holding `leftImg8bit_trainvaltest.zip` and `gtFine_trainvaltest.zip` (members
are read straight from the zips, nothing is extracted), or a gs:// prefix holding either. Files are
named by a path relative to the source, so a `Source` is a small picklable value that worker
processes can read from.
"""

import contextlib
import dataclasses
import functools
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from cityseg.components import storage

IMAGE_ZIP = "leftImg8bit_trainvaltest.zip"
LABEL_ZIP = "gtFine_trainvaltest.zip"
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
POLYGONS_SUFFIX = "_gtFine_polygons.json"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
CATEGORY_SUFFIX = "_gtFine_categoryIds.png"

# The tail of a path names the frame; anything before it (a zip name, a folder) is ignored.
_FRAME_RE = r"(?:^|/){kind}/(?P<split>[^/]+)/(?P<city>[^/]+)/(?P<stem>[^/]+){suffix}$"
IMAGE_RE = re.compile(_FRAME_RE.format(kind="leftImg8bit", suffix=re.escape(IMAGE_SUFFIX)))
LABEL_RE = re.compile(_FRAME_RE.format(kind="gtFine", suffix=re.escape(LABEL_SUFFIX)))
INSTANCE_RE = re.compile(_FRAME_RE.format(kind="gtFine", suffix=re.escape(INSTANCE_SUFFIX)))
POLYGONS_RE = re.compile(_FRAME_RE.format(kind="gtFine", suffix=re.escape(POLYGONS_SUFFIX)))
CATEGORY_RE = re.compile(r"(?:^|/)(?P<split>[^/]+)/(?P<city>[^/]+)/(?P<stem>[^/]+)" + CATEGORY_SUFFIX + "$")

FrameKey = tuple[str, str, str]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Fixed PNG settings, so the same arrays always give the same bytes. Masks are long runs of a few
# ids: the "up" filter with zlib level 1 packs them as small as libpng's adaptive filtering does, at
# a quarter of its encode time. Photos keep adaptive filtering, at the fastest zlib level.
MASK_PNG_PARAMS = (cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP)
IMAGE_PNG_PARAMS = (cv2.IMWRITE_PNG_COMPRESSION, 1)


@dataclasses.dataclass(frozen=True)
class Frame:
    """One image with its annotation file, both named relative to their source."""

    split: str
    city: str
    stem: str
    image: str
    label: str


@dataclasses.dataclass(frozen=True)
class Source:
    """A Cityscapes root: folder or gs:// prefix (`zip_dir` None), or the two zips in `zip_dir`.

    `location` is what the user named; error messages use it. For zips on gs://, `zip_dir` is the
    local folder they were downloaded to.
    """

    location: str
    zip_dir: str | None = None

    def names(self) -> list[str]:
        """Every file in the source, relative to it, sorted."""
        if self.zip_dir is None and storage.is_gcs(self.location):
            prefix = self.location.rstrip("/") + "/"
            return [path.removeprefix(prefix) for path in storage.list_files(self.location)]
        if self.zip_dir is None:
            root = Path(self.location)
            return [Path(path).relative_to(root).as_posix() for path in storage.list_files(root)]
        names = []
        for zip_name in (IMAGE_ZIP, LABEL_ZIP):
            names.extend(f"{zip_name}/{member}" for member in _open_zip(self, zip_name).namelist())
        return sorted(name for name in names if not name.endswith("/"))

    def read(self, name: str) -> bytes:
        """The bytes of one file named by `names()`.

        Raises:
            ValueError: naming the zip and the member, when a zip member does not decompress or
                fails its CRC check.
        """
        if self.zip_dir is None:
            return storage.read_bytes(self.where(name))
        zip_name, _, member = name.partition("/")
        try:
            return _open_zip(self, zip_name).read(member)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
            # zipfile raises RuntimeError for encrypted members, NotImplementedError for unknown codecs.
            raise ValueError(
                f"{self.where(zip_name)}: member {member} is damaged or unreadable ({err})"
            ) from None

    def where(self, name: str) -> str:
        """Where a file is, in words a user can follow (`root/a/b.png`, `root/x.zip/a/b.png`)."""
        return storage.join(self.location, name)


@functools.lru_cache(maxsize=4)
def _open_zip(source: Source, zip_name: str) -> zipfile.ZipFile:
    # One open handle per zip and process: reading a member then costs one seek, not a re-scan of
    # the central directory of an 11 GB archive.
    path = Path(source.zip_dir, zip_name)
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{source.where(zip_name)}: not a readable zip file ({err})") from None


@contextlib.contextmanager
def open_source(location: str | Path) -> Iterator[Source]:
    """Open a Cityscapes root folder, zip folder or gs:// prefix; zips on gs:// are downloaded first.

    Raises:
        ValueError: the location does not exist, is empty, or holds only one of the two zips.
    """
    location = str(location)
    if storage.is_gcs(location):
        if not storage.exists(location):
            raise ValueError(f"{location}: nothing is stored under this gs:// prefix")
    elif not Path(location).is_dir():
        raise ValueError(f"{location}: no such folder")
    zips = {name: storage.join(location, name) for name in (IMAGE_ZIP, LABEL_ZIP)}
    present = {name for name, path in zips.items() if storage.exists(path)}
    if not present:
        yield Source(location)
        return
    if len(present) == 1:
        (missing,) = set(zips) - present
        raise ValueError(f"{location}: holds {present.pop()} but not {missing}; both zips are needed")
    if not storage.is_gcs(location):
        yield Source(location, zip_dir=location)
        return
    with tempfile.TemporaryDirectory(prefix="cityseg-zips-") as cache:
        for name, uri in zips.items():
            storage.download(uri, Path(cache, name))
        yield Source(location, zip_dir=cache)


def index(names: list[str], pattern: re.Pattern) -> dict[FrameKey, str]:
    """The names matching a frame pattern, keyed by (split, city, stem)."""
    found = {}
    for name in names:
        match = pattern.search(name)
        if match:
            found[(match["split"], match["city"], match["stem"])] = name
    return found


def pair(
    images: dict[FrameKey, str], labels: dict[FrameKey, str], where_image, where_label, label_kind: str
) -> list[Frame]:
    """Frames for keys present on both sides, sorted; any key on one side only is an error.

    Raises:
        ValueError: naming the images without a label and the labels without an image.
    """
    problems = [
        f"image without {label_kind}: {where_image(images[k])}" for k in sorted(images.keys() - labels)
    ]
    problems += [
        f"{label_kind} without image: {where_label(labels[k])}" for k in sorted(labels.keys() - images)
    ]
    if problems:
        more = f"\n... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ValueError("\n".join(problems[:5]) + more)
    return [Frame(*key, image=images[key], label=labels[key]) for key in sorted(images)]


def find_frames(source: Source) -> list[Frame]:
    """Every image of the source paired with its `_gtFine_labelIds.png`, sorted by split, city, stem.

    Raises:
        ValueError: the source holds no frames, or an image lacks its label or a label its image.
    """
    names = source.names()
    images, labels = index(names, IMAGE_RE), index(names, LABEL_RE)
    if not images and not labels:
        raise ValueError(
            f"{source.location}: no Cityscapes frames found; expected leftImg8bit/ and gtFine/ "
            f"folders, or {IMAGE_ZIP} and {LABEL_ZIP}"
        )
    return pair(images, labels, source.where, source.where, "label")


def decode_png(data: bytes, where: str) -> np.ndarray:
    """PNG bytes -> array as stored (8 or 16 bit, 1, 3 or 4 channels; BGR order for colour).

    Raises:
        ValueError: naming `where`, when the bytes are not a PNG or do not decode.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"{where}: not a PNG file")
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ValueError(f"{where}: corrupt PNG, it does not decode")
    return array


def decode_mask(data: bytes, where: str) -> np.ndarray:
    """A single-channel 8-bit PNG of ids -> HxW uint8; the caller checks the id range.

    Raises:
        ValueError: naming `where`, for a corrupt PNG or an RGB or 16-bit image.
    """
    mask = decode_png(data, where)
    if mask.ndim != 2:
        raise ValueError(
            f"{where}: expected a single-channel 8-bit id image, got {mask.shape[2]} channels (RGB?)"
        )
    if mask.dtype != np.uint8:
        raise ValueError(
            f"{where}: expected a single-channel 8-bit id image, got {mask.dtype.itemsize * 8}-bit"
        )
    return mask


def decode_instances(data: bytes, where: str) -> np.ndarray:
    """A gtFine instanceIds PNG (single channel, 16-bit, or 8-bit where no id reaches 256) -> HxW int32.

    Raises:
        ValueError: naming `where`, for a corrupt PNG or one with several channels.
    """
    ids = decode_png(data, where)
    if ids.ndim != 2:
        raise ValueError(f"{where}: expected a single-channel instance id image, got {ids.shape[2]} channels")
    return ids.astype(np.int32)


def decode_image(data: bytes, where: str) -> np.ndarray:
    """A colour PNG -> HxWx3 uint8 in BGR order, as OpenCV reads and writes it.

    Raises:
        ValueError: naming `where`, for a corrupt PNG or one that is not 8-bit RGB.
    """
    image = decode_png(data, where)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        channels = 1 if image.ndim == 2 else image.shape[2]
        raise ValueError(
            f"{where}: expected an 8-bit RGB image, got {channels} channels of {image.dtype.itemsize * 8}-bit"
        )
    return image
