"""Lineage through the registry on a real MLflow server: validate's skip and drift, and `cityseg lineage`."""

import json

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components.lineage import core as lineage
from cityseg.components.validate.config import ValidateConfig
from cityseg.components.validate.core import DataValidationError, validate
from tests.builders import image_path, label_path, write_png
from tests.components.validate.conftest import HEIGHT, WIDTH, shard_source


def _register(name: str, statistics_dir, *, compared_with: str | None = None, champion: bool = True) -> str:
    """A version of `name` with the tags push writes, from a validate output folder."""
    client = mlflow.MlflowClient()
    mlflow.set_experiment("lineage-test")
    with mlflow.start_run() as run:
        mlflow.log_params({"model": "unet_mini", "epochs": 1})
    tags = lineage.lineage_tags(
        str(statistics_dir), pipeline_name="cityseg-training", pipeline_version="0.1.0"
    )
    tags.update({"eval_mean_dice": "0.5", "kfp_run_id": f"kfp-{run.info.run_id[:6]}", "blessed": "true"})
    if compared_with:
        tags.update({"compared_with_version": compared_with, "compared_with_mean_dice": "0.4"})
    if client.search_registered_models(f"name = '{name}'") == []:
        client.create_registered_model(name)
    version = client.create_model_version(
        name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags=tags
    )
    if champion:
        client.set_registered_model_alias(name, "champion", version.version)
    return str(version.version)


def _all_categories(seed: int) -> np.ndarray:
    from tests.builders import label_ids

    return label_ids(HEIGHT, WIDTH, 100 + seed)


def _validate(shards, out, name, **overrides):
    return validate(ValidateConfig(shards=str(shards), out=str(out), registered_model=name, **overrides))


def test_validate_skips_unchanged_data_and_flags_drift_against_the_champion(source, tmp_path, mlflow_uri):
    name = "lineage-validate"
    shards = shard_source(source, tmp_path / "week1")
    first = _validate(shards, tmp_path / "v1", name, fingerprint="f1")
    assert (first.retrain, first.champion) == (True, "")
    version = _register(name, tmp_path / "v1")

    assert lineage.champion_data(name) == lineage.VersionData(
        version, "f1", lineage.champion_data(name).statistics
    )
    same = _validate(shards, tmp_path / "v2", name, fingerprint="f1")
    assert (same.retrain, same.champion) == (False, version)
    assert same.outcome == f"data unchanged since champion v{version}: nothing to retrain"
    assert same.statistics["drift"]["distance"] == {"train": 0.0, "val": 0.0, "test": 0.0}
    kept = _validate(shards, tmp_path / "v3", name, fingerprint="f1", skip_unchanged=False)
    assert kept.retrain is True

    # A new train city of mostly sky (id 23) moves the train category shares away from the champion's.
    for frame in range(4):
        ids = np.full((HEIGHT, WIDTH), 23, np.uint8)
        ids[: HEIGHT // 2, :34] = np.arange(34, dtype=np.uint8)
        write_png(
            image_path(source, "train", "bremen", frame), (ids[..., None] * 7).astype(np.uint8).repeat(3, 2)
        )
        write_png(label_path(source, "train", "bremen", frame), ids)
    drifted = shard_source(source, tmp_path / "week2")
    warned = _validate(drifted, tmp_path / "v4", name, fingerprint="f2", drift_threshold=0.05)
    assert warned.retrain is True
    (anomaly,) = warned.anomalies
    assert (anomaly.feature, anomaly.kind, anomaly.severity) == (
        "train/category_distribution",
        "JENSEN_SHANNON_DISTANCE_HIGH",
        "WARNING",
    )
    distance = warned.statistics["drift"]["distance"]["train"]
    assert distance > 0.05 and warned.statistics["drift"]["distance"]["val"] == 0.0
    with pytest.raises(
        DataValidationError,
        match=rf"train: category distribution js distance {distance:.4f} to the data of champion v{version} "
        r"exceeds drift_threshold 0.05 \(policy fail\)",
    ):
        _validate(drifted, tmp_path / "v5", name, fingerprint="f2", drift_threshold=0.05, drift_policy="fail")

    # The validation run in MLflow holds the statistics the version tags link to.
    logged = mlflow.artifacts.load_dict(
        json.loads((tmp_path / "v4/statistics.json").read_text())["mlflow_uri"]
    )
    assert logged["splits"]["train"]["frames_per_city"] == {"aachen": 2, "bochum": 2, "bremen": 4}


def test_lineage_explains_a_version_and_what_changed_since_the_previous_champion(
    source, tmp_path, mlflow_uri
):
    name = "lineage-cli"
    _validate(shard_source(source, tmp_path / "week1"), tmp_path / "v1", name, fingerprint="f1")
    first = _register(name, tmp_path / "v1")
    for frame in range(3):
        write_png(
            image_path(source, "val", "lindau", frame),
            np.full((HEIGHT, WIDTH, 3), 80, np.uint8) + np.arange(WIDTH, dtype=np.uint8)[:, None],
        )
        write_png(label_path(source, "val", "lindau", frame), _all_categories(frame))
    image_path(source, "train", "aachen", 1).unlink()
    label_path(source, "train", "aachen", 1).unlink()
    _validate(
        shard_source(source, tmp_path / "week2"), tmp_path / "v2", name, fingerprint="f2", drift_threshold=1.0
    )
    second = _register(name, tmp_path / "v2", compared_with=first)

    item = lineage.describe(f"models:/{name}@champion")
    assert item["version"] == second and item["aliases"] == ["champion"]
    assert item["data"]["fingerprint"] == "f2"
    assert item["data"]["frames"] == {"train": 3, "val": 5, "test": 2}
    assert item["data"]["changes"] == {"train": {"aachen": -1}, "val": {"lindau": 3}}
    assert item["previous_champion"] == {
        "version": first,
        "fingerprint": "f1",
        "mean_dice": "0.4",
        "same_data": False,
    }
    assert item["run"]["params"] == {"epochs": "1", "model": "unet_mini"}
    assert item["run"]["pipeline"] == "cityseg-training"

    text = CliRunner().invoke(main, ["lineage", f"models:/{name}@champion"])
    assert text.exit_code == 0, text.output
    assert f"{name} v{second} (@champion), mean_dice 0.5" in text.output
    assert "params    epochs=1 model=unet_mini" in text.output
    assert "frames train 3, val 5, test 2" in text.output
    assert f"vs champion v{first}'s data: train -1 (aachen -1); val +3 (lindau +3)" in text.output
    as_json = CliRunner().invoke(main, ["lineage", first, "--name", name, "--json"])
    assert json.loads(as_json.stdout)["previous_champion"] is None
    missing = CliRunner().invoke(main, ["lineage", "models:/lineage-cli/99"])
    assert missing.exit_code == 1
    assert "registered model 'lineage-cli' has no version 99" in missing.output


def test_data_changes_per_split_and_city():
    old = {"splits": {"train": {"frames_per_city": {"a": 2, "b": 3}}, "val": {"frames_per_city": {"c": 1}}}}
    new = {
        "splits": {
            "train": {"frames_per_city": {"a": 2, "b": 1, "d": 4}},
            "test": {"frames_per_city": {"e": 2}},
        }
    }
    assert lineage.data_changes(new, old) == {"test": {"e": 2}, "train": {"b": -2, "d": 4}, "val": {"c": -1}}
    assert lineage.data_changes(new, None) == {}
