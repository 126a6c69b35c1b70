"""Reads and writes for local paths and `gs://` URIs: the one place cityseg touches Cloud Storage.

TensorFlow's own `gs://` filesystem cannot be pointed at an emulator, so every `gs://` access goes
through `google-cloud-storage` here. The client honours `STORAGE_EMULATOR_HOST`, which is how the
tests run this module against a real `gcp-storage-emulator` process.

Local writes go to a temporary name in the destination folder and are renamed into place, so a
reader never sees half a file. A GCS object upload is atomic by itself.
"""

import contextlib
import dataclasses
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

GCS_PREFIX = "gs://"


def is_gcs(path: str | os.PathLike) -> bool:
    """True when `path` is a `gs://bucket/...` URI."""
    return str(path).startswith(GCS_PREFIX)


def split_gcs(uri: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> (`bucket`, `a/b`).

    Raises:
        ValueError: the URI names no bucket.
    """
    if not is_gcs(uri):
        raise ValueError(f"{uri}: not a gs:// URI")
    bucket, _, blob = str(uri)[len(GCS_PREFIX) :].partition("/")
    if not bucket:
        raise ValueError(f"{uri}: a gs:// URI needs a bucket name")
    return bucket, blob


def join(base: str | os.PathLike, *parts: str) -> str:
    """Join path parts with `/`, for `gs://` URIs and local paths alike."""
    if is_gcs(base):
        return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


@functools.cache
def _client():
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="cityseg-emulator", credentials=AnonymousCredentials())
    return storage.Client()


def _blob(uri: str):
    bucket, name = split_gcs(uri)
    return _client().bucket(bucket).blob(name)


def exists(path: str | os.PathLike) -> bool:
    """True when the file (or, for gs://, the object or any object below the prefix) exists."""
    if is_gcs(path):
        if _blob(str(path)).exists():
            return True
        return next(iter(list_files(str(path))), None) is not None
    return Path(path).exists()


def read_bytes(path: str | os.PathLike) -> bytes:
    """The whole content of a local file or a gs:// object.

    Raises:
        FileNotFoundError: nothing is stored at `path`.
    """
    if is_gcs(path):
        from google.api_core import exceptions

        try:
            return _blob(str(path)).download_as_bytes()
        except exceptions.NotFound as err:
            raise FileNotFoundError(f"{path}: no such gs:// object") from err
    return Path(path).read_bytes()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a local file (atomically, parents created) or to a gs:// object."""
    if is_gcs(path):
        _blob(str(path)).upload_from_string(data)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; other users (serving, KFP) read it
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file or object."""
    return read_bytes(path).decode("utf-8")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text, atomically as `write_bytes`."""
    write_bytes(path, text.encode("utf-8"))


def list_files(prefix: str | os.PathLike) -> Iterator[str]:
    """Every file below a local folder or gs:// prefix, recursively, as full paths in sorted order."""
    if is_gcs(prefix):
        bucket, name = split_gcs(str(prefix))
        name = name.rstrip("/") + "/" if name else ""
        for blob in sorted(_client().list_blobs(bucket, prefix=name), key=lambda b: b.name):
            if not blob.name.endswith("/"):
                yield f"{GCS_PREFIX}{bucket}/{blob.name}"
        return
    root = Path(prefix)
    if root.is_dir():
        yield from sorted(str(p) for p in root.rglob("*") if p.is_file())


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """What a listing says about one file, without reading it.

    `name` is relative to the listed folder or prefix. Local files carry `mtime_ns`; gs:// objects
    carry `generation` and the checksums GCS keeps (`crc32c`, and `md5` for non-composite objects).
    """

    name: str
    size: int
    mtime_ns: int | None = None
    generation: int | None = None
    crc32c: str | None = None
    md5: str | None = None


def list_objects(prefix: str | os.PathLike) -> list[ObjectInfo]:
    """Every file below a local folder or gs:// prefix with its listing metadata, sorted by name."""
    if is_gcs(prefix):
        bucket, name = split_gcs(str(prefix))
        name = name.rstrip("/") + "/" if name else ""
        return sorted(
            (
                ObjectInfo(
                    name=blob.name[len(name) :],
                    size=int(blob.size or 0),
                    generation=int(blob.generation) if blob.generation is not None else None,
                    crc32c=blob.crc32c,
                    md5=blob.md5_hash,
                )
                for blob in _client().list_blobs(bucket, prefix=name)
                if not blob.name.endswith("/")
            ),
            key=lambda info: info.name,
        )
    root = Path(prefix)
    found = []
    for folder, _, files in os.walk(root):
        for file_name in files:
            path = Path(folder, file_name)
            stat = path.stat()
            name = path.relative_to(root).as_posix()
            found.append(ObjectInfo(name, stat.st_size, mtime_ns=stat.st_mtime_ns))
    return sorted(found, key=lambda info: info.name)


def download(uri: str, local_path: str | os.PathLike) -> Path:
    """Copy one gs:// object (or local file) to a local path, atomically."""
    local_path = Path(local_path)
    if not is_gcs(uri):
        shutil.copyfile(uri, local_path)
        return local_path
    local_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=local_path.parent, prefix=f".{local_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _blob(uri).download_to_filename(tmp)
        os.replace(tmp, local_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return local_path


def copy_tree(src: str | os.PathLike, dst: str | os.PathLike) -> list[str]:
    """Copy every file below `src` to the same relative path below `dst`; either side may be gs://.

    Returns:
        The destination paths written, in sorted order.
    """
    src = str(src).rstrip("/") if is_gcs(src) else str(Path(src))
    written = []
    for path in list_files(src):
        relative = path[len(src) :].lstrip("/") if is_gcs(src) else Path(path).relative_to(src).as_posix()
        target = join(dst, relative)
        copy_file(path, target)
        written.append(target)
    return written


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy one file; either side may be gs://."""
    src, dst = str(src), str(dst)
    if is_gcs(src) and not is_gcs(dst):
        download(src, dst)
    elif not is_gcs(src) and is_gcs(dst):
        _blob(dst).upload_from_filename(src)
    else:
        write_bytes(dst, read_bytes(src))


def delete(path: str | os.PathLike) -> None:
    """Remove one local file or gs:// object; nothing stored there is fine."""
    if is_gcs(path):
        from google.api_core import exceptions

        with contextlib.suppress(exceptions.NotFound):
            _blob(str(path)).delete()
        return
    Path(path).unlink(missing_ok=True)


def gcs_errors() -> tuple[type[Exception], ...]:
    """The exceptions a failed gs:// call raises, for callers that turn them into clear errors."""
    from google.api_core import exceptions

    return (exceptions.GoogleAPIError,)
