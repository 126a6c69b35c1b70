import dataclasses

import pytest

from cityseg.components.sweep.config import ALL_AUGMENTATIONS, Budget, SweepConfig
from cityseg.components.sweep.core import (
    augmentation_list,
    check_sweep,
    config_name,
    configurations,
    expand_sweep,
    setting_of,
    sweep_params,
)
from cityseg.components.train.config import AUGMENTATIONS, TrainConfig

TINY = SweepConfig(
    models=("unet_mini", "unet"),
    losses=("ce", "ce_dice"),
    augment=("none", "flip+noise"),
    reference_model="unet_mini",
    reference_loss="ce_dice",
    reference_augment="flip",
    seeds=(0, 1),
)


def test_the_reference_recipe_is_the_training_pipelines_default():
    # One source of truth: the loss and augmentation the sweep holds fixed are the train step's defaults.
    sweep = SweepConfig()
    assert sweep.reference_loss == TrainConfig.loss
    assert (sweep.reference_augment,) == TrainConfig.augment


def test_one_factor_at_a_time_expansion_is_exact_and_deduplicated():
    assert configurations(dataclasses.replace(TINY, seeds=(0,))) == [
        # `flip` is not among the augment settings: the reference is in the ladder and loss studies only.
        ("unet_mini", "ce_dice", "flip", ("ladder", "loss")),
        ("unet", "ce_dice", "flip", ("ladder",)),
        ("unet_mini", "ce", "flip", ("loss",)),
        ("unet_mini", "ce_dice", "none", ("augmentation",)),
        ("unet_mini", "ce_dice", "flip+noise", ("augmentation",)),
    ]


def test_expand_sweep_runs_every_configuration_once_per_seed():
    configs = expand_sweep(TINY)
    assert [c["name"] for c in configs] == [
        "unet_mini-ce_dice-flip-s0", "unet_mini-ce_dice-flip-s1",
        "unet-ce_dice-flip-s0", "unet-ce_dice-flip-s1",
        "unet_mini-ce-flip-s0", "unet_mini-ce-flip-s1",
        "unet_mini-ce_dice-none-s0", "unet_mini-ce_dice-none-s1",
        "unet_mini-ce_dice-flip+noise-s0", "unet_mini-ce_dice-flip+noise-s1",
    ]  # fmt: skip
    assert configs[-1] == {
        "name": "unet_mini-ce_dice-flip+noise-s1",
        "model": "unet_mini",
        "loss": "ce_dice",
        "augment": "flip+noise",
        "augmentations": "flip,noise",
        "seed": 1,
        "studies": "augmentation",
    }
    assert configs[6]["augmentations"] == ""


def test_crossed_expansion_is_the_full_product():
    sweep = dataclasses.replace(TINY, crossed=True, seeds=(7,))
    assert [c["name"] for c in expand_sweep(sweep)] == [
        "unet_mini-ce-none-s7", "unet_mini-ce-flip+noise-s7",
        "unet_mini-ce_dice-none-s7", "unet_mini-ce_dice-flip+noise-s7",
        "unet-ce-none-s7", "unet-ce-flip+noise-s7",
        "unet-ce_dice-none-s7", "unet-ce_dice-flip+noise-s7",
    ]  # fmt: skip


def test_augmentation_settings_map_to_the_train_steps_list_and_back():
    assert augmentation_list("none") == ""
    assert augmentation_list("rotate") == "rotate"
    assert augmentation_list("flip+scale_crop") == "flip,scale_crop"
    assert augmentation_list(ALL_AUGMENTATIONS) == ",".join(AUGMENTATIONS)
    for setting in ("none", "rotate", "flip+scale_crop", "all"):
        assert setting_of(augmentation_list(setting)) == setting
    assert setting_of("none") == "none"  # what the train step logs for no augmentation


@pytest.mark.parametrize(
    "change, message",
    [
        ({"models": ()}, "models: the sweep needs at least one value"),
        ({"models": ("unet", "unet")}, r"models: \['unet'\] given more than once"),
        ({"losses": ("hinge",)}, r"losses: unknown \['hinge'\]; choose from"),
        (
            {"augment": ("none", "blur")},
            "augment: 'blur' is not an augmentation setting; use none, all, one of",
        ),
        ({"augment": ("flip+flip",)}, "augment: 'flip\\+flip' is not an augmentation setting"),
        ({"reference_model": "resnet"}, r"reference_model: unknown \['resnet'\]"),
        ({"seeds": (0, 0)}, r"seeds: \['0'\] given more than once"),
        ({"seeds": (-1,)}, r"seeds: must not be negative, got \[-1\]"),
    ],
)
def test_check_sweep_names_the_field_and_what_is_wrong(change, message):
    with pytest.raises(ValueError, match=message):
        check_sweep(dataclasses.replace(TINY, **change))


def test_budget_rule_is_stated_and_checked():
    assert Budget(12, 3).rule() == (
        "every configuration trains until select_mean_dice has not improved for 3 epochs, at most 12 "
        "epochs, and keeps its best epoch's weights"
    )
    assert Budget(5, 0).rule() == "every configuration trains exactly 5 epochs"
    with pytest.raises(ValueError, match="max_epochs must be at least 1, got 0"):
        Budget(0, 1)
    with pytest.raises(ValueError, match="patience must be 0 \\(off\\) or more, got -2"):
        Budget(3, -2)


def test_sweep_params_record_the_sweep_and_its_budget():
    assert sweep_params(TINY) == {
        "sweep_models": "unet_mini,unet",
        "sweep_losses": "ce,ce_dice",
        "sweep_augment": "none,flip+noise",
        "sweep_reference": "unet_mini/ce_dice/flip",
        "sweep_seeds": "0,1",
        "sweep_crossed": False,
        "sweep_configs": 5,
        "budget_max_epochs": 10,
        "budget_patience": 3,
        "budget_rule": Budget(10, 3).rule(),
    }


def test_config_name_names_model_loss_setting_and_seed():
    assert config_name("unet", "dice", "none", 2) == "unet-dice-none-s2"
