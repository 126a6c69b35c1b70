"""Reads and writes for local paths and `gs://` URIs: the one place cityseg touches Cloud Storage.

TensorFlow's own `gs://` filesystem cannot be pointed at an emulator, so every `gs://` access goes
through `google-cloud-storage` here. The client honours `STORAGE_EMULATOR_HOST`, which is how the
tests run this module against a real `gcp-storage-emulator` process.

Local writes go to a temporary name in the destination folder and are renamed into place, so a
reader never sees half a file. A GCS object upload is atomic by itself.
"""

import contextlib
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
        if is_gcs(path) and not is_gcs(target):
            download(path, target)
        elif not is_gcs(path) and is_gcs(target):
            _blob(target).upload_from_filename(path)
        else:
            write_bytes(target, read_bytes(path))
        written.append(target)
    return written


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike) -> Iterator[Path]:
    """A fresh local folder that replaces `out` (local or gs://) only when the block succeeds.

    Locally the folder is a sibling of `out` and is renamed into place, so readers see the old
    folder or the complete new one, never a half-written one; when the block raises, it is removed.
    For gs:// the files are uploaded after the block succeeds.
    """
    if is_gcs(out):
        with tempfile.TemporaryDirectory(prefix="cityseg-stage-") as staging:
            yield Path(staging)
            copy_tree(staging, str(out))
        return
    target = Path(out).absolute()
    if target.exists() and not target.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staging.chmod(0o755)  # mkdtemp makes it private to the user
    if target.exists():
        previous = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
        os.replace(target, previous / target.name)
        os.replace(staging, target)
        shutil.rmtree(previous)
    else:
        os.replace(staging, target)
