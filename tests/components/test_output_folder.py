import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components import output_folder, storage
from cityseg.components.output_folder import OutputFolderError, staged_folder
from tests import builders

NOBODY = 65534


def snapshot(root) -> dict[str, str]:
    """Every file below a local folder or gs:// prefix -> sha256 of its bytes, and every local folder."""
    files = {path: hashlib.sha256(storage.read_bytes(path)).hexdigest() for path in storage.list_files(root)}
    if not storage.is_gcs(root):
        files |= {str(path): "folder" for path in Path(root).rglob("*") if path.is_dir()}
    return files


def write(folder, step: str, files: dict[str, str]) -> None:
    with staged_folder(folder, step) as staging:
        for name, text in files.items():
            Path(staging, name).parent.mkdir(parents=True, exist_ok=True)
            Path(staging, name).write_text(text)


def test_a_rerun_replaces_only_what_the_step_wrote(tmp_path):
    out = tmp_path / "out"
    write(out, "remap", {"a.txt": "1", "sub/b.txt": "2"})
    write(out, "remap", {"a.txt": "3"})
    assert storage.read_text(out / "a.txt") == "3" and not (out / "sub" / "b.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    (out / "notes.txt").write_text("mine")
    with pytest.raises(
        OutputFolderError, match=r"holds files that `cityseg remap` did not write: notes\.txt"
    ):
        write(out, "remap", {"a.txt": "4"})
    with pytest.raises(
        OutputFolderError,
        match=r"out: holds other files \(\.cityseg-remap, a\.txt, notes\.txt\) and is not an earlier",
    ):
        write(out, "shard", {"a.txt": "4"})
    assert storage.read_text(out / "a.txt") == "3" and (out / "notes.txt").read_text() == "mine"


def test_missing_and_empty_folders_are_written_and_files_refused(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    write(tmp_path / "empty", "synth", {"x": "1"})
    write(tmp_path / "new" / "deep", "synth", {"x": "1"})
    assert storage.read_text(tmp_path / "empty" / "x") == storage.read_text(tmp_path / "new" / "deep" / "x")
    (tmp_path / "file").write_text("mine")
    with pytest.raises(OutputFolderError, match=f"{tmp_path / 'file'}: exists and is not a folder"):
        write(tmp_path / "file", "synth", {"x": "1"})


@pytest.mark.parametrize(
    ("out", "reason"),
    [
        ("data/src", "it is the source {src}"),
        ("data/src/gtFine/train", "it lies inside the source {src}"),
        ("data", "it holds the source {src}, which replacing it would delete"),
        ("./data/../data/src/", "it is the source {src}"),
    ],
)
def test_a_source_is_never_the_output_nor_inside_or_around_it(tmp_path, monkeypatch, out, reason):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "data" / "src"
    (src / "gtFine").mkdir(parents=True)
    with pytest.raises(OutputFolderError) as caught:
        output_folder.check_output_folder(out, "remap", sources=[src])
    assert str(caught.value) == f"{out}: cannot be the output of `cityseg remap`: {reason.format(src=src)}"


def test_gcs_rerun_deletes_stale_objects_and_nothing_else(gcs_emulator):
    bucket = gcs_emulator()
    storage.write_text(f"{bucket}/out-old/keep.txt", "mine")
    write(f"{bucket}/out", "shard", {"a.txt": "1", "sub/b.txt": "2"})
    write(f"{bucket}/out", "shard", {"a.txt": "3"})
    assert list(storage.list_files(bucket)) == [
        f"{bucket}/out-old/keep.txt",
        f"{bucket}/out/.cityseg-shard",
        f"{bucket}/out/a.txt",
    ]
    storage.write_text(f"{bucket}/out/notes.txt", "mine")
    before = snapshot(bucket)
    with pytest.raises(OutputFolderError, match=rf"{bucket}/out: holds files .* did not write: notes\.txt"):
        write(f"{bucket}/out", "shard", {"a.txt": "4"})
    assert snapshot(bucket) == before
    with pytest.raises(
        OutputFolderError, match=rf"{bucket}/out-old: holds other files \(keep.txt\) and is not an earlier"
    ):
        write(f"{bucket}/out-old", "shard", {"a.txt": "4"})
    with pytest.raises(OutputFolderError, match=f"{bucket}: cannot be the output .* it holds the source"):
        output_folder.check_output_folder(bucket, "remap", sources=[f"{bucket}/out-old"])
    assert snapshot(bucket) == before


def test_a_killed_gcs_upload_leaves_an_output_a_rerun_may_replace(gcs_emulator, monkeypatch):
    bucket = gcs_emulator()
    write(f"{bucket}/out", "remap", {"a.txt": "1"})
    real_copy = storage.copy_file

    def dies_after_one_file(src, dst):
        real_copy(src, dst)
        raise KeyboardInterrupt

    monkeypatch.setattr(storage, "copy_file", dies_after_one_file)
    with pytest.raises(KeyboardInterrupt):
        write(f"{bucket}/out", "remap", {"b.txt": "2", "c.txt": "3"})
    monkeypatch.undo()
    write(f"{bucket}/out", "remap", {"d.txt": "4"})
    assert list(storage.list_files(f"{bucket}/out")) == [
        f"{bucket}/out/.cityseg-remap",
        f"{bucket}/out/d.txt",
    ]


def test_a_missing_bucket_is_a_clear_error(gcs_emulator):
    with pytest.raises(OutputFolderError, match="gs://no-such-bucket-x/out: cannot list this gs:// prefix"):
        write("gs://no-such-bucket-x/out", "remap", {"a.txt": "1"})


@pytest.fixture
def shared_dir():
    """A folder every user may enter (pytest's tmp_path lies below a folder private to its owner)."""
    base = Path(tempfile.mkdtemp(prefix="cityseg-perm-"))
    base.chmod(0o755)
    yield base
    for path in [base, *base.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(base)


@contextlib.contextmanager
def unprivileged():
    """Act as a user that file permissions apply to: `nobody` when the tests run as root."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_an_unwritable_parent_is_a_clear_error_and_leaves_nothing(shared_dir):
    src = builders.write_cityscapes(shared_dir / "src", frames_per_city=1)
    locked = shared_dir / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    with unprivileged():
        result = CliRunner().invoke(
            main, ["remap", "--cityscapes", str(src), "--out", str(locked / "out"), "--workers", "1"]
        )
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {locked / 'out'}: cannot write here: {locked} is not writable")
    assert list(locked.iterdir()) == []


def test_an_unwritable_earlier_output_is_refused_before_any_work(shared_dir):
    src = builders.write_cityscapes(shared_dir / "src", frames_per_city=1)
    parent = shared_dir / "parent"
    parent.mkdir()
    out = parent / "out"
    CliRunner().invoke(main, ["remap", "--cityscapes", str(src), "--out", str(out), "--workers", "1"])
    parent.chmod(0o777)
    out.chmod(0o555)
    before = snapshot(shared_dir)
    with unprivileged():
        result = CliRunner().invoke(
            main, ["remap", "--cityscapes", str(src), "--out", str(out), "--workers", "1"]
        )
    assert result.exit_code == 1, result.output
    assert f"Error: {out}: cannot write here: {out} is not writable (permission denied)" in result.output
    assert snapshot(shared_dir) == before  # no .out.*.tmp or .out.*.old beside it
