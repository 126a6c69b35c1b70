"""Tests mirror the source: every folder of tests under tests/ is named after the folder it tests."""

import subprocess
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[1]
# Folders of tests/ that test no one source folder, and why.
NOT_MIRRORS = {
    "tests/benchmarks": "`make bench`: the benchmarks, and the test of the tool that gathers them",
    "tests/e2e": "the pipeline end to end in its images, across every folder",
}


def unmirrored(test_files: list[str], source_folders: set[str]) -> list[str]:
    """The folders holding test files whose source folder (tests/X/Y tests X/Y) does not exist."""
    folders = {PurePosixPath(path).parent for path in test_files}
    return sorted(
        folder.as_posix()
        for folder in folders
        if folder != PurePosixPath("tests")
        if not any(folder.as_posix() == name or folder.is_relative_to(name) for name in NOT_MIRRORS)
        if folder.relative_to("tests").as_posix() not in source_folders
    )


def test_unmirrored_names_test_folders_without_their_source_folder():
    files = ["tests/test_x.py", "tests/components/train/test_core.py", "tests/components/trian/test_core.py"]
    assert unmirrored(files, {"components", "components/train"}) == ["tests/components/trian"]


def test_every_test_folder_mirrors_a_source_folder():
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    tests = [path for path in listed if path.startswith("tests/") and path.endswith(".py")]
    sources = {
        parent.as_posix()
        for path in listed
        if not path.startswith("tests/")
        for parent in PurePosixPath(path).parents
    }
    assert unmirrored(tests, sources) == [], (
        "name a test folder after the folder it tests, or list it in NOT_MIRRORS"
    )


def test_every_exception_is_a_folder_of_tests():
    for folder in NOT_MIRRORS:
        assert (REPO / folder).is_dir(), f"{folder} is listed in NOT_MIRRORS but does not exist"
