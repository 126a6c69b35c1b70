"""`cityseg train` refuses bad input with a clear message before any training starts."""

import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from cityseg.cli import main
from cityseg.components.train.config import TrainConfig
from cityseg.components.train.core import validate
from tests.components.train.conftest import write_shards
from tests.conftest import free_port


def _train(*args: str):
    return CliRunner().invoke(main, ["train", *args])


def test_missing_shard_folder(tmp_path):
    result = _train("--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert f"{tmp_path / 'nowhere'}: no manifest.json" in result.output
    assert not (tmp_path / "out").exists()


def test_empty_shard_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    result = _train("--data", str(tmp_path / "empty"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "empty: no manifest.json" in result.output


def test_size_not_divisible_by_the_stride(shards, tmp_path):
    result = _train(
        "--data", str(shards), "--out", str(tmp_path / "out"), "--model", "unet", "--height", "40"
    )
    assert result.exit_code == 1
    assert "size 40x64 does not suit model 'unet'" in result.output
    assert "stride 16" in result.output


@pytest.mark.parametrize(("option", "value"), [("--model", "segformer"), ("--loss", "lovasz")])
def test_unknown_model_or_loss(shards, tmp_path, option, value):
    result = _train("--data", str(shards), "--out", str(tmp_path / "out"), option, value)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}': '{value}' is not one of" in result.output


def test_unknown_augmentation(shards, tmp_path):
    result = _train("--data", str(shards), "--out", str(tmp_path / "out"), "--augment", "flip,mixup")
    assert result.exit_code == 2
    assert "unknown augmentation mixup" in result.output


def test_unreachable_mlflow_server_fails_fast_naming_it(shards, tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    result = _train("--data", str(shards), "--out", str(tmp_path / "out"), "--tracking-uri", uri)
    assert time.monotonic() - start < 15
    assert result.exit_code == 1
    assert f"MLflow tracking server {uri} cannot be reached" in result.output
    assert not (tmp_path / "out").exists()


def test_shards_without_a_select_split_are_refused(tmp_path):
    # Shards written before the select split, or with select_fraction 0: nothing to choose models on.
    old = write_shards(tmp_path / "old", {"train": 4, "val": 2}, 32, 64)
    with pytest.raises(ValueError, match=r"lists no select examples: models are chosen on it; shard again"):
        validate(TrainConfig(data=str(old), out="x"))


def test_validate_names_the_bad_field(shards):
    with pytest.raises(ValueError, match="lr_schedule: unknown value 'step'"):
        validate(TrainConfig(data=str(shards), out="x", lr_schedule="step"))
    with pytest.raises(ValueError, match="epochs: must be at least 1"):
        validate(TrainConfig(data=str(shards), out="x", epochs=0))
    assert validate(TrainConfig(data=str(shards), out="x"))["height"] == 32


@pytest.fixture
def shard_copy(shards, tmp_path):
    """A copy of the tiny shards that a test may damage."""
    return Path(shutil.copytree(shards, tmp_path / "shards"))


def _refused_before_mlflow(result, mlflow_uri: str, out: Path) -> None:
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert MlflowClient(mlflow_uri).get_experiment_by_name("test-refused-shards") is None
    assert not out.exists()


def test_a_manifest_that_overstates_the_examples_is_refused_before_mlflow(shard_copy, tmp_path, mlflow_uri):
    manifest = json.loads((shard_copy / "manifest.json").read_text())
    manifest["splits"]["train"]["examples"] *= 100
    (shard_copy / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out"
    result = _train("--data", str(shard_copy), "--out", str(out), "--experiment", "test-refused-shards")
    assert (
        f"{shard_copy / 'manifest.json'}: split 'train' lists 1600 examples, but its shard files hold 16 "
        "(train-00000-of-00001.tfrecord: 16)"
    ) in result.output
    _refused_before_mlflow(result, mlflow_uri, out)


def test_a_truncated_shard_is_named_before_mlflow(shard_copy, tmp_path, mlflow_uri):
    shard = shard_copy / "select-00000-of-00001.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-100])
    out = tmp_path / "out"
    result = _train("--data", str(shard_copy), "--out", str(out), "--experiment", "test-refused-shards")
    assert f"{shard}: record 8 at byte " in result.output
    assert "truncated, the file ends inside the record" in result.output
    _refused_before_mlflow(result, mlflow_uri, out)
