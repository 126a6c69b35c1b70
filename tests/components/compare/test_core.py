import pytest

from cityseg.components.compare.core import (
    EVALUATED_CATEGORIES,
    ConfigResult,
    augmentation_gain,
    config_name,
    parse_augment,
    pick_best,
)


def result(model: str, loss: str, augment: bool, mean_dice: float | None) -> ConfigResult:
    return ConfigResult(
        run_id=config_name(model, loss, augment),
        run_name=config_name(model, loss, augment),
        parent_run_id="parent",
        model=model,
        loss=loss,
        augment=augment,
        num_params=1000,
        mean_dice=mean_dice,
        mean_iou=None,
        iou=dict.fromkeys(EVALUATED_CATEGORIES),
        training_time_s=None,
        train_images_per_s=None,
        latency_ms_per_image=None,
        tflite_mb=None,
    )


def test_evaluated_categories_are_the_seven_non_void_ones():
    assert EVALUATED_CATEGORIES == ("flat", "construction", "object", "nature", "sky", "human", "vehicle")


def test_parse_augment_maps_on_off_and_names_bad_values():
    assert parse_augment(["on", "off"]) == (True, False)
    assert parse_augment(["off"]) == (False,)
    with pytest.raises(ValueError, match=r"augment: \['yes'\] not understood"):
        parse_augment(["on", "yes"])


def test_config_name_says_whether_augmented():
    assert config_name("unet_mini", "ce", True) == "unet_mini-ce-aug"
    assert config_name("unet", "dice", False) == "unet-dice-noaug"


def test_pick_best_takes_highest_dice_and_skips_unevaluated_runs():
    results = [result("a", "ce", True, 0.5), result("b", "ce", True, None), result("c", "ce", False, 0.7)]
    assert pick_best(results).model == "c"
    with pytest.raises(ValueError, match="none of the 1 child runs has eval_mean_dice"):
        pick_best([result("b", "ce", True, None)])


def test_augmentation_gain_is_with_minus_without_per_model_and_loss():
    results = [
        result("a", "ce", True, 0.75),
        result("a", "ce", False, 0.5),
        result("a", "dice", True, 0.6),  # never run without augmentation: no gain to report
        result("b", "ce", False, 0.25),
        result("b", "ce", True, 0.125),
    ]
    assert augmentation_gain(results) == [
        {"model": "a", "loss": "ce", "with": 0.75, "without": 0.5, "gain": 0.25},
        {"model": "b", "loss": "ce", "with": 0.125, "without": 0.25, "gain": -0.125},
    ]
