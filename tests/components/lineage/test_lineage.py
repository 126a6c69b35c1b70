"""Lineage through the registry on a real MLflow server: validate's skip and drift, and `cityseg lineage`."""

import json

import cv2
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
    # shard_source writes no select split: these tests are about the champion's lineage.
    settings = {"registered_model": name, "min_select_frames": 0, **overrides}
    return validate(ValidateConfig(shards=str(shards), out=str(out), **settings))


def test_validate_skips_unchanged_data_and_flags_drift_against_the_champion(source, tmp_path, mlflow_uri):
    name = "lineage-validate"
    shards = shard_source(source, tmp_path / "week1")
    first = _validate(shards, tmp_path / "v1", name, fingerprint="f1")
    assert (first.retrain, first.champion) == (True, "")
    version = _register(name, tmp_path / "v1")

    # The champion's statistics are the validation run's MLflow copy of what validate wrote (the file
    # adds the copy's own address).
    written = json.loads((tmp_path / "v1/statistics.json").read_text())
    assert written.pop("mlflow_uri").startswith("runs:/")
    assert lineage.champion_data(name) == lineage.VersionData(version, "f1", written)
    same = _validate(shards, tmp_path / "v2", name, fingerprint="f1")
    assert (same.retrain, same.champion) == (False, version)
    assert same.outcome == f"data unchanged since champion v{version}: nothing to retrain"
    assert same.statistics["drift"]["distance"] == {"train": 0.0, "val": 0.0, "test": 0.0}
    assert same.statistics["drift"]["image"]["train"] == {"brightness": 0.0, "colour": 0.0, "contrast": 0.0}
    assert same.anomalies == []
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


def _recolour(source, split: str, scale: tuple[float, float, float]) -> None:
    """Scale each channel (B, G, R, as the PNG holds them) of every image of `split`: light and camera."""
    for path in sorted((source / "leftImg8bit" / split).rglob("*.png")):
        image = cv2.imread(str(path)).astype(np.float64) * np.asarray(scale)
        write_png(path, np.clip(image, 0, 255).astype(np.uint8))


def test_darker_frames_and_a_colour_cast_camera_are_drift(source, tmp_path, mlflow_uri):
    name = "lineage-images"
    _validate(shard_source(source, tmp_path / "week1"), tmp_path / "v1", name, fingerprint="f1")
    version = _register(name, tmp_path / "v1")
    _recolour(source, "train", (0.4, 0.4, 0.4))  # dusk: every channel at 40%
    _recolour(source, "val", (0.7, 1.0, 1.0))  # a new camera with less blue
    shards = shard_source(source, tmp_path / "week2")
    warned = _validate(shards, tmp_path / "v2", name, fingerprint="f2")
    assert [(a.feature, a.severity) for a in warned.anomalies] == [
        ("train/image_brightness", "WARNING"),
        ("train/image_contrast", "WARNING"),
        ("val/image_colour", "WARNING"),
    ]
    shifts = warned.statistics["drift"]["image"]
    assert shifts["train"]["brightness"] < -25 and abs(shifts["train"]["colour"]) < 0.04
    assert shifts["val"]["colour"] > 0.04 and abs(shifts["val"]["brightness"]) < 25
    # The test split is the same batch as the champion's: nothing moved.
    assert shifts["test"] == {"brightness": 0.0, "colour": 0.0, "contrast": 0.0}
    assert warned.statistics["drift"]["distance"] == {"train": 0.0, "val": 0.0, "test": 0.0}
    markdown = (tmp_path / "v2/statistics.md").read_text()
    assert (
        f"**WARNING**: val: image colour shift +{shifts['val']['colour']:.4g} against the data of champion "
        f"v{version} exceeds max_colour_shift 0.04 (policy warn)" in markdown
    )
    with pytest.raises(
        DataValidationError, match=r"train: image brightness shift -\d+.*max_brightness_shift 25"
    ):
        _validate(shards, tmp_path / "v3", name, fingerprint="f2", drift_policy="fail")
    # The limits are settings: wide enough, the same shards pass.
    wide = ["--max-brightness-shift", "255", "--max-colour-shift", "1", "--max-contrast-shift", "1"]
    wide += ["--min-select-frames", "0"]
    argv = ["validate", "--shards", str(shards), "--out", str(tmp_path / "v4"), "--name", name, *wide]
    passed = CliRunner().invoke(main, argv)
    assert passed.exit_code == 0, passed.output
    assert "WARNING" not in passed.output and "data valid: training" in passed.output


def test_a_champion_whose_statistics_cannot_be_read_fails_under_fail_and_warns_under_warn(
    source, tmp_path, mlflow_uri
):
    name = "lineage-unreadable"
    shards = shard_source(source, tmp_path / "week1")
    _validate(shards, tmp_path / "v1", name, fingerprint="f1")
    version = _register(name, tmp_path / "v1")
    client = mlflow.MlflowClient()
    client.set_model_version_tag(
        name, version, "data_statistics", "runs:/0123456789abcdef/gone/statistics.json"
    )
    (tmp_path / "v1/statistics.json").unlink()
    unreadable = (
        r"cannot read data_statistics runs:/0123456789abcdef/gone/statistics.json: .*; "
        rf"data_statistics_artifact {tmp_path / 'v1/statistics.json'}: .*No such file"
    )
    with pytest.raises(
        DataValidationError,
        match=rf"drift against the data of champion v{version} not checked \(policy fail\): its data "
        rf"statistics could not be loaded: {unreadable}",
    ):
        _validate(shards, tmp_path / "v2", name, fingerprint="f2", drift_policy="fail")

    warned = _validate(shards, tmp_path / "v3", name, fingerprint="f2")
    (anomaly,) = warned.anomalies
    assert (anomaly.feature, anomaly.kind, anomaly.severity) == ("drift", "DRIFT_NOT_CHECKED", "WARNING")
    markdown = (tmp_path / "v3/statistics.md").read_text()
    assert f"**WARNING**: drift against the data of champion v{version} not checked (policy warn)" in markdown
    assert f"**not checked** against champion v{version}: cannot read data_statistics runs:/" in markdown
    written = json.loads((tmp_path / "v3/anomalies.json").read_text())["anomaly_info"]
    assert [a["kind"] for a in written] == ["DRIFT_NOT_CHECKED"]

    # A version registered without statistics tags names what it lacks.
    client.delete_model_version_tag(name, version, "data_statistics")
    client.delete_model_version_tag(name, version, "data_statistics_artifact")
    with pytest.raises(DataValidationError, match=r"no data_statistics or data_statistics_artifact tag"):
        _validate(shards, tmp_path / "v4", name, fingerprint="f2", drift_policy="fail")
