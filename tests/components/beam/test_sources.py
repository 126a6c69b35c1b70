"""The Beam path reads every kind of source, and Dataflow's output comes back through gs://."""

import json

import pytest

from cityseg.components import parallel, storage
from cityseg.components.remap.config import RemapConfig
from cityseg.components.remap.core import remap
from cityseg.components.runner import RunnerConfig
from cityseg.components.validate.statistics import compute_statistics
from tests import builders
from tests.components.beam.test_agreement import BEAM_THREADS, digests


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return builders.write_cityscapes(tmp_path_factory.mktemp("cityscapes"))


@pytest.fixture(scope="module")
def pool_masks(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("pool") / "categories"
    summary = remap(RemapConfig(folder, out, workers=1))
    return summary["category_pixels"], digests(out)


def test_beam_reads_the_official_zips(folder, pool_masks, tmp_path):
    zips = builders.zip_cityscapes(folder, tmp_path / "zips")
    summary = remap(RemapConfig(zips, tmp_path / "categories", workers=2, runner=BEAM_THREADS))
    assert (summary["category_pixels"], digests(tmp_path / "categories")) == pool_masks


def test_beam_reads_a_gcs_folder(folder, pool_masks, tmp_path, gcs_emulator):
    source = storage.join(gcs_emulator(), "cityscapes")
    storage.copy_tree(folder, source)
    summary = remap(RemapConfig(source, tmp_path / "categories", workers=2, runner=BEAM_THREADS))
    assert (summary["category_pixels"], digests(tmp_path / "categories")) == pool_masks


def dataflow(temp_location: str) -> RunnerConfig:
    return RunnerConfig(
        "dataflow", project="p-1", region="r", temp_location=temp_location, sdk_container_image="image"
    )


def test_dataflow_output_lands_in_staging_and_leaves_temp_location_empty(tmp_path, gcs_emulator):
    temp = storage.join(gcs_emulator(), "tmp")
    with parallel.output_root(dataflow(temp), tmp_path, "remap") as root:
        assert root.startswith(f"{temp}/output/remap-")
        storage.write_bytes(storage.join(root, "train/a/x.png"), b"mask")
    assert (tmp_path / "train" / "a" / "x.png").read_bytes() == b"mask"
    assert list(storage.list_files(temp)) == []


def test_a_failed_dataflow_step_copies_nothing_and_cleans_up(tmp_path, gcs_emulator):
    temp = storage.join(gcs_emulator(), "tmp")
    with (
        pytest.raises(ValueError, match="frame failed"),
        parallel.output_root(dataflow(temp), tmp_path, "shard") as root,
    ):
        storage.write_bytes(storage.join(root, "train-00000-of-00001.tfrecord"), b"half")
        raise ValueError("frame failed")
    assert list(tmp_path.iterdir()) == [] and list(storage.list_files(temp)) == []


def test_dataflow_refuses_a_local_source_before_any_job(tmp_path, gcs_emulator):
    config = RemapConfig(
        tmp_path / "cityscapes", tmp_path / "out", runner=dataflow(storage.join(gcs_emulator(), "t"))
    )
    with pytest.raises(
        ValueError, match=r"cityscapes: .*/cityscapes is not a gs:// location; Dataflow's workers"
    ):
        remap(config)


def test_beam_statistics_read_shards_on_gcs(tmp_path, gcs_emulator):
    shards = builders.write_shard_folder(tmp_path)
    manifest = json.loads((shards / "manifest.json").read_text())
    on_gcs = storage.join(gcs_emulator(), "shards")
    storage.copy_tree(shards, on_gcs)
    splits, frames = compute_statistics(on_gcs, manifest, workers=2, runner=BEAM_THREADS)
    assert (splits, frames) == compute_statistics(shards, manifest, workers=1)
    assert sum(split["frames"] for split in splits.values()) == len(frames) == 8
