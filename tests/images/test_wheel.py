"""The installed package holds real files: cityseg/components and cityseg/pipelines are git symlinks only."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "cityseg", "components", "pipelines")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[zipfile.ZipFile, Path]:
    """The project's wheel, built as the images build it (pip, isolated build), and the copy of the
    sources it was built from."""
    tree = tmp_path_factory.mktemp("tree")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tree / name)
    assert (tree / "cityseg" / "components").is_symlink()
    out = tmp_path_factory.mktemp("wheel")
    argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(tree)]
    subprocess.run(argv, check=True, capture_output=True)
    (path,) = out.glob("cityseg-*.whl")
    return zipfile.ZipFile(path), tree


def test_the_wheel_holds_every_step_module_as_a_file(built):
    wheel, tree = built
    names = set(wheel.namelist())
    for source in [*(tree / "components").rglob("*.py"), *(tree / "pipelines").rglob("*.py")]:
        assert f"cityseg/{source.relative_to(tree)}" in names, source
    member = wheel.getinfo("cityseg/components/train/core.py")
    # A zip member made from a symlink carries S_IFLNK in its external attributes.
    assert (member.external_attr >> 16) & 0o170000 == 0o100000
    assert wheel.read(member) == (tree / "components" / "train" / "core.py").read_bytes()


def test_the_wheel_holds_the_serving_assets(built):
    wheel, _ = built
    assets = [name for name in wheel.namelist() if name.endswith((".html", ".css", ".js"))]
    assert any(name.startswith("cityseg/components/serve/") for name in assets), assets
