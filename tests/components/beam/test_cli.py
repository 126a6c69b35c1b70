"""`--runner` and the `--dataflow-*` options of the data step commands."""

import pytest
from click.testing import CliRunner

from cityseg.cli import main
from tests import builders
from tests.components.beam.test_agreement import digests


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return builders.write_cityscapes(tmp_path_factory.mktemp("cityscapes"))


def test_remap_on_beam_writes_the_pools_masks(source, tmp_path):
    for runner in ("local", "beam"):
        args = ["remap", "--cityscapes", str(source), "--out", str(tmp_path / runner), "--runner", runner]
        result = CliRunner().invoke(main, [*args, "--workers", "2"])
        assert result.exit_code == 0, result.output
        assert "8 frames" in result.output
    assert digests(tmp_path / "beam") == digests(tmp_path / "local")


@pytest.mark.parametrize("command", ["remap", "shard", "validate"])
def test_dataflow_without_its_settings_is_a_usage_error(command, tmp_path):
    inputs = {
        "remap": ["--cityscapes", str(tmp_path), "--out", str(tmp_path / "o")],
        "shard": ["--cityscapes", str(tmp_path), "--categories", str(tmp_path), "--out", str(tmp_path / "o")],
        "validate": ["--shards", str(tmp_path), "--out", str(tmp_path / "o")],
    }[command]
    result = CliRunner().invoke(main, [command, *inputs, "--runner", "dataflow", "--dataflow-project", "p-1"])
    assert result.exit_code == 2
    assert "Invalid value for --runner: runner dataflow needs region, temp_location, sdk_container_image" in (
        result.output
    )
