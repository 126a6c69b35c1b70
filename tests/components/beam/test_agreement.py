"""The Beam path and the local pool agree: the same files byte for byte, manifests and statistics."""

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from cityseg.components import storage
from cityseg.components.remap.config import RemapConfig
from cityseg.components.remap.core import remap
from cityseg.components.runner import RunnerConfig
from cityseg.components.shard.config import ShardConfig
from cityseg.components.shard.core import MANIFEST, write_shards
from cityseg.components.validate.statistics import compute_statistics
from tests.components.beam.conftest import HEIGHT, WIDTH, write_odd_cases

LOCAL = RunnerConfig()
BEAM_THREADS = RunnerConfig("beam")
BEAM_PROCESSES = RunnerConfig("beam", direct_mode="multi_processing")


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder`, by relative name."""
    return {
        Path(path).relative_to(folder).as_posix(): hashlib.sha256(storage.read_bytes(path)).hexdigest()
        for path in storage.list_files(folder)
    }


def data_steps(source: Path, root: Path, runner: RunnerConfig) -> dict:
    """remap, shard (half the shards of the frames, resized) and the statistics of `source` on `runner`."""
    summary = remap(RemapConfig(source, root / "categories", workers=2, runner=runner))
    shard_config = ShardConfig(
        source, root / "categories", root / "shards", shards=2, height=HEIGHT // 2, width=WIDTH // 2
    )
    manifest = write_shards(dataclasses.replace(shard_config, workers=2, runner=runner))
    splits, frames = compute_statistics(root / "shards", manifest, workers=2, runner=runner)
    return {
        "remap": {key: value for key, value in summary.items() if key != "out"},
        "categories": digests(root / "categories"),
        "shards": digests(root / "shards"),
        "manifest": manifest,
        "statistics": splits,
        "frames": frames,
    }


@pytest.fixture(scope="module")
def pool(source, tmp_path_factory) -> dict:
    return data_steps(source, tmp_path_factory.mktemp("pool"), LOCAL)


def test_beam_threads_give_the_pools_files_manifest_and_statistics(source, pool, tmp_path):
    beam = data_steps(source, tmp_path, BEAM_THREADS)
    assert beam == pool
    assert json.loads((tmp_path / "shards" / MANIFEST).read_text()) == pool["manifest"]
    assert any(name.endswith(".tfrecord") for name in beam["shards"])


@pytest.mark.slow
def test_beam_worker_processes_merge_to_the_pools_results(tmp_path):
    # SDK worker processes take seconds to start: the odd cases alone prove the merge across them.
    source = write_odd_cases(tmp_path / "cityscapes")
    assert data_steps(source, tmp_path / "beam", BEAM_PROCESSES) == data_steps(
        source, tmp_path / "pool", LOCAL
    )


def test_the_hand_made_folder_holds_its_odd_cases(tmp_path):
    summary = remap(RemapConfig(write_odd_cases(tmp_path / "cityscapes"), tmp_path / "categories", workers=1))
    assert summary["frames"] == {"test": 1, "train": 3, "val": 1}
    assert not any("erfurt" in name for name in digests(tmp_path / "categories"))
    # The frame with every label id has pixels of all 8 categories; the test frame is all road (flat).
    assert all(summary["category_pixels"]["val"])
    assert summary["category_pixels"]["test"] == [0, HEIGHT * WIDTH, 0, 0, 0, 0, 0, 0]
