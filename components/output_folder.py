"""Output folders that never destroy data: when a step may replace a folder, and the staged write.

Every step that writes a folder (synth, remap, shard, evaluate, the push's serving copy) writes it
through `staged_folder`, so one rule holds for all of them, locally and on gs://:
- the folder must not be a source of the step, lie inside one, or hold one;
- it may be replaced only when it is missing, empty (no files), or an earlier output of the same
  step: it holds the step's marker file `.cityseg-<step>`, and every file in it is one the marker lists;
- otherwise the step is refused before it starts, with an error naming the folder and why.

The marker is written last and lists the files the step wrote, so a rerun replaces exactly those:
locally the new folder is renamed into place; on gs:// the new objects are uploaded, the objects of
the earlier output that the new one lacks are deleted, and nothing else is touched.
"""

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from cityseg.components import storage

MARKER_PREFIX = ".cityseg-"
_SHOWN = 5


class OutputFolderError(ValueError):
    """An output folder a step must not replace or cannot write; the message names it and says why."""


def marker_name(step: str) -> str:
    """The marker file that says a folder was written by `cityseg <step>`."""
    return f"{MARKER_PREFIX}{step}"


def _parts(path: str | os.PathLike) -> tuple[str, ...]:
    if storage.is_gcs(path):
        bucket, name = storage.split_gcs(str(path))
        return ("gs://", bucket, *(part for part in name.split("/") if part))
    return Path(path).resolve().parts


def _overlap(out: str | os.PathLike, source: str | os.PathLike) -> str | None:
    """Why `out` may not be written when `source` is read, or None when they are apart."""
    out_parts, source_parts = _parts(out), _parts(source)
    if out_parts == source_parts:
        return f"it is the source {source}"
    if out_parts[: len(source_parts)] == source_parts:
        return f"it lies inside the source {source}"
    if source_parts[: len(out_parts)] == out_parts:
        return f"it holds the source {source}, which replacing it would delete"
    return None


def _listing(folder: str | os.PathLike) -> list[str]:
    """Every file below `folder`, relative to it, with `/` separators."""
    if storage.is_gcs(folder):
        base = str(folder).rstrip("/") + "/"
        return [path.removeprefix(base) for path in storage.list_files(folder)]
    return [Path(path).relative_to(folder).as_posix() for path in storage.list_files(folder)]


def _some(names: list[str]) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def _marker_text(step: str, files: Iterable[str], complete: bool) -> str:
    record = {"written_by": f"cityseg {step}", "complete": complete, "files": sorted(files)}
    return json.dumps(record, indent=1) + "\n"


def _listed_files(out: str | os.PathLike, step: str) -> set[str]:
    path = storage.join(out, marker_name(step))
    try:
        files = json.loads(storage.read_text(path))["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise OutputFolderError(
            f"{out}: its marker {path} is unreadable ({err}); remove the folder yourself"
        ) from None
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        raise OutputFolderError(f"{out}: its marker {path} lists no files; remove the folder yourself")
    return set(files)


def _previous_output(out: str | os.PathLike, step: str) -> list[str]:
    """The files of an earlier output of `step` at `out` (none when missing or empty).

    Raises:
        OutputFolderError: `out` is a file, or holds files that an earlier `step` output did not write.
    """
    if not storage.is_gcs(out) and Path(out).exists() and not Path(out).is_dir():
        raise OutputFolderError(f"{out}: exists and is not a folder")
    try:
        files = _listing(out)
    except storage.gcs_errors() as err:
        raise OutputFolderError(f"{out}: cannot list this gs:// prefix: {err}") from None
    marker = marker_name(step)
    if not files:
        return []
    if marker not in files:
        raise OutputFolderError(
            f"{out}: holds other files ({_some(files)}) and is not an earlier `cityseg {step}` output "
            f"(it has no {marker} marker). Choose a new or empty folder: cityseg never deletes files "
            "it did not write"
        )
    listed = _listed_files(out, step)
    foreign = [name for name in files if name != marker and name not in listed]
    if foreign:
        raise OutputFolderError(
            f"{out}: holds files that `cityseg {step}` did not write: {_some(foreign)}. Move them "
            "away, or choose a new or empty folder"
        )
    return [name for name in files if name != marker]


def check_output_folder(
    out: str | os.PathLike, step: str, sources: Iterable[str | os.PathLike] = ()
) -> list[str]:
    """Check that `step` may replace `out` (see the module docstring); returns the files it replaces.

    Raises:
        OutputFolderError: naming `out` and why it may not be replaced.
    """
    for source in sources:
        if source is not None and (reason := _overlap(out, source)):
            raise OutputFolderError(f"{out}: cannot be the output of `cityseg {step}`: {reason}")
    return _previous_output(out, step)


def _writable_or_refuse(target: Path, out: str | os.PathLike) -> None:
    """Refuse up front, before any work, a folder this process could not replace or clean up."""
    effective = os.access in os.supports_effective_ids
    folders = [target.parent] if target.parent.exists() else []
    if target.is_dir():
        folders += [target, *(path for path in target.rglob("*") if path.is_dir())]
    for folder in folders:
        if not os.access(folder, os.W_OK | os.X_OK, effective_ids=effective):
            raise OutputFolderError(f"{out}: cannot write here: {folder} is not writable (permission denied)")


def _swap(staging: Path, target: Path) -> None:
    """Rename `staging` to `target`; an existing `target` is moved aside first and removed after."""
    if not target.exists():
        os.replace(staging, target)
        return
    aside = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
    os.replace(target, aside)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(aside, target)
        raise
    shutil.rmtree(aside)


@contextlib.contextmanager
def _staged_local(out: str | os.PathLike, step: str) -> Iterator[Path]:
    target = Path(out).absolute()
    try:
        _writable_or_refuse(target, out)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    except PermissionError as err:
        raise OutputFolderError(f"{out}: cannot write here: {err.strerror} ({err.filename})") from None
    try:
        yield staging
        try:
            Path(staging, marker_name(step)).write_text(_marker_text(step, _listing(staging), True))
            staging.chmod(0o755)  # mkdtemp makes it private to the user; serving and KFP read it
            _swap(staging, target)
        except PermissionError as err:
            raise OutputFolderError(f"{out}: cannot write here: {err.strerror} ({err.filename})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish_gcs(staging: Path, out: str, step: str, previous: list[str], last: str | None) -> None:
    files = [name for name in _listing(staging) if name != marker_name(step)]
    marker = storage.join(out, marker_name(step))
    try:
        # Listing old and new first means a killed upload still leaves an output a rerun may replace.
        storage.write_text(marker, _marker_text(step, {*previous, *files}, False))
        for name in files:
            if name != last:
                storage.copy_file(staging / name, storage.join(out, name))
        for name in sorted(set(previous) - set(files)):
            storage.delete(storage.join(out, name))
        if last in files:
            storage.copy_file(staging / last, storage.join(out, last))
        storage.write_text(marker, _marker_text(step, files, True))
    except storage.gcs_errors() as err:
        raise OutputFolderError(f"{out}: cannot write this gs:// prefix: {err}") from None


@contextlib.contextmanager
def staged_folder(
    out: str | os.PathLike, step: str, sources: Iterable[str | os.PathLike] = (), last: str | None = None
) -> Iterator[Path]:
    """A fresh local folder that replaces `out` (local or gs://) only when the block succeeds.

    `out` is checked first (see `check_output_folder`), so a refused folder is never touched. Locally
    the staging folder is a sibling of `out` renamed into place, so readers see the old folder or the
    complete new one; when the block raises, it is removed. For gs:// the files are uploaded after
    the block succeeds, the file named `last` (a completion file readers wait for) after all others,
    and the step's marker at the very end.

    Raises:
        OutputFolderError: `out` may not be replaced, or cannot be written.
    """
    previous = check_output_folder(out, step, sources)
    if not storage.is_gcs(out):
        with _staged_local(out, step) as staging:
            yield staging
        return
    with tempfile.TemporaryDirectory(prefix="cityseg-stage-") as staging:
        yield Path(staging)
        _publish_gcs(Path(staging), str(out), step, previous, last)
