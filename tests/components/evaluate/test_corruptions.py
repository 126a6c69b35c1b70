import json

import cv2
import numpy as np
import pytest

from cityseg.components.evaluate.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    blur_length,
    corrupter,
    frame_confusions,
    metric_key,
    robustness,
    robustness_scores,
)
from cityseg.components.evaluate.frame_matrices import from_npz
from cityseg.components.labels import NUM_CLASSES
from cityseg.components.metrics import scores as split_scores

FLAT, VEHICLE = 1, 7


def edges(height: int = 32, width: int = 128) -> np.ndarray:
    """Two flat halves, grey 100 left and 180 right, of one image."""
    image = np.full((1, height, width, 3), 100, np.uint8)
    image[:, :, width // 2 :] = 180
    return image


def test_the_five_corruption_families_of_the_issue_are_there():
    assert list(CORRUPTIONS) == ["gaussian_noise", "motion_blur", "darkness", "fog", "jpeg"]
    assert SEVERITIES == (1, 2, 3)


@pytest.mark.parametrize("severity, std", [(1, 0.08), (2, 0.18), (3, 0.38)])
def test_gaussian_noise_adds_zero_mean_noise_of_the_severity_std(severity, std):
    image = np.full((1, 128, 128, 3), 128, np.uint8)
    noise = corrupter("gaussian_noise", severity, 128, seed=1)(image).astype(float) - 128
    # uint8 clips the noise at 0 and 255, which trims the tails at severity 3.
    clipped = np.clip(128 + np.random.default_rng(0).normal(0, std * 255, 10**6), 0, 255) - 128
    assert noise.std() == pytest.approx(clipped.std(), rel=0.03)
    assert abs(noise.mean()) < 1.5


def test_gaussian_noise_is_reproducible_from_its_seed():
    image = np.full((2, 16, 32, 3), 128, np.uint8)
    first, again = (
        corrupter("gaussian_noise", 2, 32, seed=5)(image),
        corrupter("gaussian_noise", 2, 32, seed=5)(image),
    )
    assert np.array_equal(first, again)
    assert not np.array_equal(first, corrupter("gaussian_noise", 2, 32, seed=6)(image))


@pytest.mark.parametrize("severity", SEVERITIES)
def test_motion_blur_smears_a_vertical_edge_into_a_horizontal_linear_ramp(severity):
    length = blur_length(128, CORRUPTIONS["motion_blur"].levels[severity - 1])
    blurred = corrupter("motion_blur", severity, 128)(edges())[0].astype(int)
    # A horizontal line kernel: every row alike, flat areas kept, the edge a ramp of equal steps
    # no wider than the kernel (albumentations rasterises the line, so it may span fewer pixels).
    assert (blurred == blurred[:1]).all()
    row = blurred[10, :, 0]
    ramp = row[(row > 100) & (row < 180)]
    assert length // 2 <= len(ramp) < length
    steps = np.diff(np.concatenate([[100], ramp, [180]]))
    assert steps.min() >= steps.max() - 1 > 0
    assert (row[:40] == 100).all() and (row[90:] == 180).all()


def test_motion_blur_ramp_widens_with_severity():
    widths = []
    for severity in SEVERITIES:
        row = corrupter("motion_blur", severity, 128)(edges())[0, 10, :, 0]
        widths.append(np.count_nonzero((row > 100) & (row < 180)))
    assert widths == [3, 6, 12]


def test_blur_length_scales_with_width_and_stays_odd():
    assert [blur_length(128, f) for f in CORRUPTIONS["motion_blur"].levels] == [5, 9, 17]
    assert [blur_length(2048, f) for f in CORRUPTIONS["motion_blur"].levels] == [63, 123, 247]
    assert blur_length(32, 0.03) == 3


@pytest.mark.parametrize("severity, factor", [(1, 0.5), (2, 0.3), (3, 0.15)])
def test_darkness_multiplies_every_pixel_by_the_brightness_factor(severity, factor):
    dark = corrupter("darkness", severity, 128)(edges()).astype(float)
    assert np.abs(dark - edges() * factor).max() <= 1


@pytest.mark.parametrize("severity, kept", [(1, 0.5), (2, 0.3), (3, 0.15)])
def test_fog_flattens_the_image_toward_its_mean(severity, kept):
    image = edges()
    foggy = corrupter("fog", severity, 128)(image).astype(float)
    expected = kept * image + (1 - kept) * image.mean()
    assert np.abs(foggy - expected).max() <= 1
    assert foggy.std() == pytest.approx(kept * image.std(), abs=0.5)


@pytest.mark.parametrize("severity, quality", [(1, 25), (2, 15), (3, 7)])
def test_jpeg_is_opencv_encode_decode_at_the_severity_quality(severity, quality):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, 32, 64, 3), dtype=np.uint8)
    _, encoded = cv2.imencode(".jpg", image[0], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert np.array_equal(
        corrupter("jpeg", severity, 64)(image)[0], cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    )


def test_unknown_corruption_or_severity_is_named():
    with pytest.raises(
        ValueError, match="corruption: unknown 'snow'; choose from gaussian_noise, motion_blur"
    ):
        corrupter("snow", 1, 64)
    with pytest.raises(ValueError, match=r"corruption fog: severity must be one of \(1, 2, 3\), got 4"):
        corrupter("fog", 4, 64)


def brightness_predictor(images: np.ndarray) -> np.ndarray:
    """An identity-like model: a bright pixel is flat (road), a dark one vehicle."""
    return np.where(images.mean(axis=-1) > 0.4, FLAT, VEHICLE)


def constant_scene(batches: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    """A road of grey 0.6 everywhere, labelled flat."""
    images = np.full((3, 16, 64, 3), 153 / 255, np.float32)
    return [(images, np.full((3, 16, 64), FLAT, np.int32))] * batches


def test_robustness_of_an_identity_like_model_on_a_constant_scene():
    names = ("motion_blur", "darkness", "fog", "jpeg")
    scores = robustness(brightness_predictor, constant_scene(), names)
    # Blur, fog and JPEG leave a constant scene as it is; darkness (0.6 x 0.5 and less) falls under
    # the 0.4 threshold, every pixel turns vehicle, and flat's IoU and vehicle's are both 0.
    assert scores == {
        "clean_mean_iou": 1.0,
        **{metric_key(name, s): 1.0 for name in ("motion_blur", "fog", "jpeg") for s in SEVERITIES},
        **{metric_key("darkness", s): 0.0 for s in SEVERITIES},
        metric_key("motion_blur"): 1.0,
        metric_key("darkness"): 0.0,
        metric_key("fog"): 1.0,
        metric_key("jpeg"): 1.0,
        "corrupt_mean_iou": 0.75,
        "relative_robustness": 0.75,
    }
    # Per frame (2 batches of 3): every clean frame is 16 x 64 flat pixels predicted flat, every dark
    # frame the same pixels predicted vehicle; the sums give the same figures.
    stacks = frame_confusions(brightness_predictor, constant_scene(), names)
    assert list(stacks) == [None, *((name, s) for name in names for s in SEVERITIES)]
    assert {stack.shape for stack in stacks.values()} == {(6, NUM_CLASSES, NUM_CLASSES)}
    assert (stacks[None][:, FLAT, FLAT] == 16 * 64).all() and stacks[None].sum() == 6 * 16 * 64
    assert (stacks[("darkness", 2)][:, FLAT, VEHICLE] == 16 * 64).all()
    assert robustness_scores({setting: stack.sum(axis=0) for setting, stack in stacks.items()}) == scores


def test_robustness_averages_severities_then_corruptions():
    # Noise flips pixels at random; the figures must still be the means of the per-severity scores.
    scores = robustness(brightness_predictor, constant_scene(), ("gaussian_noise", "darkness"), seed=3)
    per_severity = [scores[metric_key("gaussian_noise", s)] for s in SEVERITIES]
    assert per_severity[0] > per_severity[2]
    assert scores[metric_key("gaussian_noise")] == pytest.approx(np.mean(per_severity))
    assert scores["corrupt_mean_iou"] == pytest.approx(np.mean(per_severity) / 2)
    assert scores["relative_robustness"] == pytest.approx(scores["corrupt_mean_iou"])
    assert NUM_CLASSES == 8


def test_cli_evaluate_corruptions_scores_a_hand_built_model_on_a_constant_scene(tmp_path):
    # The decoder model predicts round(7 x red): a constant grey of category 3 (object) is read back
    # exactly. Darkness sends red under 2.5/7 at every severity (every pixel wrong, IoU 0); blur, fog
    # and JPEG leave a constant image as it is (IoU 1); only the noise figures are left to chance.
    from click.testing import CliRunner

    from cityseg.cli import main
    from tests.components.evaluate.builders import (
        decoder_model,
        encode_categories,
        model_folder,
        write_shards,
    )

    masks = np.full((4, 16, 32), 3, np.uint8)
    images = np.repeat(encode_categories(masks)[..., None], 3, axis=-1)
    shards = write_shards(tmp_path / "shards", {"val": (images, masks)})
    model = model_folder(decoder_model(16, 32), tmp_path / "model")
    out = tmp_path / "evaluation"
    args = ["evaluate", "--data", str(shards), "--model", str(model), "--out", str(out), "--no-mlflow"]
    result = CliRunner().invoke(main, [*args, "--corruptions", "--samples", "0"])
    assert result.exit_code == 0, result.output

    scores = json.loads((out / "metrics.json").read_text())
    assert scores["mean_iou"] == scores["clean_mean_iou"] == 1.0
    for severity in SEVERITIES:
        assert scores[metric_key("darkness", severity)] == 0.0
        for name in ("motion_blur", "fog", "jpeg"):
            assert scores[metric_key(name, severity)] == 1.0
    noise = scores[metric_key("gaussian_noise")]
    assert scores["corrupt_mean_iou"] == pytest.approx((0 + 1 + 1 + 1 + noise) / 5)
    assert scores["relative_robustness"] == pytest.approx(scores["corrupt_mean_iou"])
    assert "darkness         0.0000 0.0000 0.0000 0.0000" in result.output
    stacks = from_npz((out / "frame_confusions.npz").read_bytes(), "frame_confusions.npz")
    assert list(stacks) == ["clean", *(f"{name}_{s}" for name in CORRUPTIONS for s in SEVERITIES)]
    assert {stack.shape for stack in stacks.values()} == {(4, NUM_CLASSES, NUM_CLASSES)}
    assert (stacks["darkness_1"][:, 3, 3] == 0).all() and (stacks["fog_3"][:, 3, 3] == 16 * 32).all()
    for severity in SEVERITIES:
        summed = stacks[f"gaussian_noise_{severity}"].sum(axis=0)
        assert split_scores(summed)["mean_iou"] == pytest.approx(
            scores[metric_key("gaussian_noise", severity)]
        )
