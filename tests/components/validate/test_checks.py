"""Statistics on hand-built shards, and each schema check on a hand-built bad input."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cityseg.cli import main
from cityseg.components import labels
from cityseg.components.validate.checks import check_image_drift, distance, image_shift
from cityseg.components.validate.config import ValidateConfig
from cityseg.components.validate.core import DataValidationError, validate
from cityseg.components.validate.statistics import compute_statistics, read_records
from tests.builders import image_path, label_path, write_png
from tests.components.validate.conftest import HEIGHT, WIDTH, shard_source

# The hand-made sources have no select split (see shard_source): its own test asks for one.
OFFLINE = {"registered_model": "", "min_select_frames": 0}


@pytest.fixture(autouse=True)
def local_mlflow(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


def _config(shards, tmp_path, **overrides) -> ValidateConfig:
    return ValidateConfig(shards=str(shards), out=str(tmp_path / "validation"), **{**OFFLINE, **overrides})


def test_statistics_match_the_masks_they_come_from(source, tmp_path):
    shards = shard_source(source, tmp_path)
    manifest = json.loads((shards / "manifest.json").read_text())
    splits, frames = compute_statistics(shards, manifest)
    assert {split: stats["frames"] for split, stats in splits.items()} == {"train": 4, "val": 2, "test": 2}
    assert splits["train"]["frames_per_city"] == {"aachen": 2, "bochum": 2}
    assert splits["val"]["image_sizes"] == {f"{HEIGHT}x{WIDTH}": 2}
    for split, stats in splits.items():
        assert stats["category_pixels"] == manifest["splits"][split]["category_pixels"]
    # Each frame's void share and the image means, computed here straight from the PNGs.
    mask = cv2.imread(
        str(tmp_path / "categories/val/frankfurt/frankfurt_000000_000001_gtFine_categoryIds.png"), 0
    )
    (frame,) = [f for f in frames if f.frame == "frankfurt_000000_000001"]
    assert frame.void_share == pytest.approx(float(np.mean(mask == labels.VOID)))
    images = [cv2.imread(str(image_path(source, "val", "frankfurt", i)))[..., ::-1] for i in range(2)]
    pixels = np.concatenate([image.reshape(-1, 3) for image in images]).astype(np.float64)
    assert splits["val"]["image_mean"] == pytest.approx(pixels.mean(axis=0), abs=1e-4)
    assert splits["val"]["image_std"] == pytest.approx(pixels.std(axis=0), abs=1e-3)


def test_valid_data_passes_and_writes_statistics_anomalies_and_markdown(source, tmp_path):
    result = validate(_config(shard_source(source, tmp_path), tmp_path, fingerprint="abc"))
    assert (result.retrain, result.outcome, result.anomalies) == (True, "data valid: training", [])
    written = json.loads((tmp_path / "validation/statistics.json").read_text())
    assert written["fingerprint"] == "abc"
    assert written["mlflow_uri"].startswith("runs:/") and written["mlflow_uri"].endswith("statistics.json")
    assert json.loads((tmp_path / "validation/anomalies.json").read_text()) == {"anomaly_info": []}
    markdown = (tmp_path / "validation/statistics.md").read_text()
    assert "| frames | 4 | 2 | 2 |" in markdown and "aachen 2, bochum 2" in markdown


def test_a_city_of_all_void_labels_is_named_with_its_frames(source, tmp_path):
    for frame in range(3):
        write_png(
            image_path(source, "train", "bremen", frame),
            np.full((HEIGHT, WIDTH, 3), 90, np.uint8) + np.arange(WIDTH, dtype=np.uint8)[:, None],
        )
        write_png(label_path(source, "train", "bremen", frame), np.zeros((HEIGHT, WIDTH), np.uint8))
    with pytest.raises(DataValidationError) as caught:
        validate(_config(shard_source(source, tmp_path), tmp_path))
    message = str(caught.value)
    assert "train/bremen: 3 of 3 frames are more than 90.0% void (max_void_share 0.9)" in message
    assert "bremen_000000_000000 100.0%" in message
    anomalies = json.loads((tmp_path / "validation/anomalies.json").read_text())["anomaly_info"]
    assert [(a["feature"], a["kind"], a["severity"]) for a in anomalies] == [
        ("train/void_share", "FRAME_MOSTLY_VOID", "ERROR")
    ]
    assert anomalies[0]["short_description"] == "3 train frames of bremen are more than 90% void"


def test_a_mostly_void_frame_of_the_select_split_is_named(source, tmp_path):
    # aachen_000000_000000 is the train frame that select_fraction 0.5 draws into select.
    write_png(label_path(source, "train", "aachen", 0), np.zeros((HEIGHT, WIDTH), np.uint8))
    with pytest.raises(DataValidationError, match=r"select/aachen: 1 of 1 frames are more than 90.0% void"):
        validate(_config(shard_source(source, tmp_path, select_fraction=0.5), tmp_path))


def test_a_black_image_is_named(source, tmp_path):
    write_png(image_path(source, "val", "frankfurt", 1), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    with pytest.raises(
        DataValidationError,
        match=r"val/frankfurt: 1 of 2 images are constant .*frankfurt_000000_000001 std 0.00",
    ):
        validate(_config(shard_source(source, tmp_path), tmp_path))


def test_a_category_missing_from_val_is_named(source, tmp_path):
    sky = np.flatnonzero(labels.category_lut() == labels.CATEGORY_NAMES.index("sky"))
    for frame in range(2):
        path = label_path(source, "val", "frankfurt", frame)
        ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        ids[np.isin(ids, sky)] = 7  # road
        write_png(path, ids)
    with pytest.raises(DataValidationError, match=r"val: category sky has 0 pixels in 2 frames"):
        validate(_config(shard_source(source, tmp_path), tmp_path))


def test_too_few_frames_and_sizes_other_than_the_manifest_are_named(source, tmp_path):
    shards = shard_source(source, tmp_path)
    with pytest.raises(DataValidationError, match=r"val: 2 frames, fewer than min_frames 3"):
        validate(_config(shards, tmp_path, min_frames=3))
    manifest = json.loads((shards / "manifest.json").read_text())
    (shards / "manifest.json").write_text(json.dumps({**manifest, "height": 16}))
    with pytest.raises(
        DataValidationError,
        match=r"test/berlin: 2 of 2 frames differ from the manifest's 16x64 \(image, mask, header\): "
        r"berlin_000000_000000 32x64/32x64/32x64",
    ):
        validate(_config(shards, tmp_path))


def test_shards_without_a_select_frame_are_refused_before_training(source, tmp_path):
    """Training chooses the weights it keeps on select: shards without it fail here, not in train."""
    shards = shard_source(source, tmp_path)
    with pytest.raises(
        DataValidationError,
        match=r"select: 0 frames, fewer than min_select_frames 1; .*larger select_fraction",
    ):
        validate(_config(shards, tmp_path, min_select_frames=1))
    held_out = shard_source(source, tmp_path / "held_out", select_fraction=0.5)
    frames = json.loads((held_out / "manifest.json").read_text())["splits"]["select"]["examples"]
    assert frames >= 1
    assert validate(_config(held_out, tmp_path, min_select_frames=frames)).retrain
    with pytest.raises(DataValidationError, match=rf"select: {frames} frames, fewer than min_select_frames"):
        validate(_config(held_out, tmp_path, min_select_frames=frames + 1))


def test_the_cli_fails_with_the_message_and_no_traceback(source, tmp_path):
    write_png(image_path(source, "val", "frankfurt", 0), np.full((HEIGHT, WIDTH, 3), 255, np.uint8))
    shards = shard_source(source, tmp_path)
    result = CliRunner().invoke(
        main, ["validate", "--shards", str(shards), "--out", str(tmp_path / "v"), "--name", ""]
    )
    assert result.exit_code == 1
    assert "val/frankfurt: 1 of 2 images are constant (black or saturated)" in result.output
    assert "Traceback" not in result.output


def test_distances_on_hand_built_distributions():
    p, q = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert distance(p, q, "js") == pytest.approx(1.0)
    assert distance(p, p, "js") == 0.0
    assert distance(np.array([0.5, 0.5]), np.array([0.8, 0.2]), "linf") == pytest.approx(0.3)
    # JS divergence of (1/2, 1/2) and (1, 0) is 1 - 3/4 log2(3) + 1/2 = 0.311278...
    assert distance(np.array([0.5, 0.5]), p, "js") == pytest.approx(np.sqrt(1.5 - 0.75 * np.log2(3)))


def test_a_truncated_shard_is_named(tmp_path):
    path = tmp_path / "train-00000-of-00001.tfrecord"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00abcd" + b"short")
    with pytest.raises(
        ValueError, match=r"train-00000-of-00001.tfrecord: truncated TFRecord \(16 bytes announced\)"
    ):
        list(read_records(path))


GREY = {"frames": 4, "image_mean": [100.0, 100.0, 100.0], "image_std": [40.0, 40.0, 40.0]}
LIMITS = {"brightness": 15.0, "colour": 0.02, "contrast": 0.25}


def test_image_shifts_on_hand_built_statistics():
    assert image_shift(GREY, GREY) == {"brightness": 0.0, "colour": 0.0, "contrast": 0.0}
    # Half the light: luma 100 -> 50, the channels keep their shares, the std halves.
    night = {"frames": 4, "image_mean": [50.0, 50.0, 50.0], "image_std": [20.0, 20.0, 20.0]}
    assert image_shift(night, GREY) == {"brightness": -50.0, "colour": 0.0, "contrast": -0.5}
    # A blue cast: B 100 -> 160 moves luma by 0.114 * 60 and blue's share from 1/3 to 160/360.
    blue = {"frames": 4, "image_mean": [100.0, 100.0, 160.0], "image_std": [40.0, 40.0, 40.0]}
    assert image_shift(blue, GREY) == pytest.approx(
        {"brightness": 6.84, "colour": 160 / 360 - 1 / 3, "contrast": 0.0}, abs=1e-6
    )


def test_image_drift_flags_what_moved_past_its_limit_and_nothing_else():
    night = {"frames": 4, "image_mean": [50.0, 50.0, 50.0], "image_std": [36.0, 36.0, 36.0]}
    blue = {"frames": 2, "image_mean": [100.0, 100.0, 160.0], "image_std": [40.0, 40.0, 40.0]}
    splits = {"train": night, "val": blue, "test": GREY}
    baseline = {"splits": {"train": GREY, "val": GREY, "test": GREY}}
    found, shifts = check_image_drift(
        splits, baseline, limits=LIMITS, policy="warn", baseline_name="champion v3"
    )
    assert [(a.feature, a.kind, a.severity) for a in found] == [
        ("train/image_brightness", "IMAGE_BRIGHTNESS_SHIFT", "WARNING"),
        ("val/image_colour", "IMAGE_COLOUR_SHIFT", "WARNING"),
    ]
    assert found[0].description == (
        "train: image brightness shift -50 against the data of champion v3 exceeds max_brightness_shift 15 "
        "(policy warn); channel means RGB 50.0/50.0/50.0 were RGB 100.0/100.0/100.0, "
        "stds RGB 36.0/36.0/36.0 were RGB 40.0/40.0/40.0"
    )
    assert shifts["test"] == {"brightness": 0.0, "colour": 0.0, "contrast": 0.0}
    failed, _ = check_image_drift(splits, baseline, limits=LIMITS, policy="fail", baseline_name="v3")
    assert {a.severity for a in failed} == {"ERROR"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_void_share", 0.0, "max_void_share must lie in"),
        ("drift_policy", "ignore", "drift_policy must be one of warn, fail"),
        ("drift_metric", "kl", "drift_metric must be one of js, linf"),
        ("min_frames", 0, "min_frames must be at least 1"),
        ("min_select_frames", -1, "min_select_frames must be at least 0"),
        ("max_colour_shift", -0.1, "max_colour_shift must be at least 0, got -0.1"),
    ],
)
def test_bad_settings_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        ValidateConfig(shards="s", out="o", **{field: value})
