"""The repository holds source, not run output: nothing git tracks lies under mlruns/ or work/."""

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Where runs write: the work folder (components/defaults.py WORK_DIR) and MLflow's default local store.
RUN_OUTPUT = ("mlruns/", "work/")


def run_output(paths: list[str]) -> list[str]:
    """The paths that lie under a run-output folder, at any depth of the tree."""
    return [path for path in paths if any(f"/{folder}" in f"/{path}" for folder in RUN_OUTPUT)]


def test_run_output_is_recognised_at_any_depth():
    paths = ["mlruns/0/meta.yaml", "tests/work/x.json", "components/network.py", "docs/mlruns.md"]
    assert run_output(paths) == ["mlruns/0/meta.yaml", "tests/work/x.json"]


def test_no_tracked_file_is_run_output():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert tracked, "git ls-files listed nothing: not a checkout?"
    assert run_output(tracked) == []
