import pytest

from cityseg.components.sweep.config import Budget, SweepConfig
from cityseg.components.sweep.core import configurations, expand_sweep
from cityseg.components.sweep.presets import PRESETS, preset_params, resolve, sweep_config

LADDER = ["unet_mini", "unet", "mobilenetv2_unet", "deeplabv3plus"]


def test_quick_preset_answers_the_three_questions_in_13_configurations_and_1_seed():
    sweep = resolve("quick")
    assert [recipe[:3] for recipe in configurations(sweep)] == [
        *[(model, "ce_dice", "flip") for model in LADDER],
        ("unet_mini", "ce", "flip"),
        ("unet_mini", "dice", "flip"),
        ("unet_mini", "focal", "flip"),
        *[
            ("unet_mini", "ce_dice", setting)
            for setting in ("none", "scale_crop", "color_jitter", "noise", "rotate", "all")
        ],
    ]
    assert sweep.seeds == (0,)
    assert sweep.budget == Budget(max_epochs=10, patience=3)
    assert len(expand_sweep(sweep)) == 13
    # 64x128 so that it fits 20 minutes; the rest is the training recipe's (its synthetic set,
    # learning rate, batch, weighting).
    assert PRESETS["quick"].settings == {"height": 64, "width": 128}
    assert PRESETS["quick"].sweep == SweepConfig()


def test_full_preset_crosses_everything_with_3_seeds():
    sweep = resolve("full")
    assert sweep.crossed and sweep.seeds == (0, 1, 2)
    configs = expand_sweep(sweep)
    assert len(configs) == 4 * 4 * 7 * 3
    assert {(c["model"], c["loss"]) for c in configs} == {
        (m, loss) for m in LADDER for loss in ("ce", "dice", "ce_dice", "focal")
    }
    assert PRESETS["full"].settings == {"height": 256, "width": 512, "synthetic_frames": 1500}


def test_explicit_flags_override_the_preset_and_move_the_reference_into_the_axis():
    sweep = resolve(
        "quick", models=("unet", "deeplabv3plus"), losses=("ce",), augment=("none",), seeds=(3,), max_epochs=2
    )
    assert configurations(sweep) == [
        ("unet", "ce", "flip", ("ladder", "loss")),
        ("deeplabv3plus", "ce", "flip", ("ladder",)),
        ("unet", "ce", "none", ("augmentation",)),
    ]
    assert sweep.budget == Budget(max_epochs=2, patience=3)
    assert resolve("quick", models=("unet", "unet_mini")).reference_model == "unet_mini"


def test_unknown_preset_and_bad_override_are_named():
    with pytest.raises(ValueError, match="preset: unknown 'huge'; choose from quick, full"):
        resolve("huge")
    with pytest.raises(ValueError, match=r"losses: unknown \['l2'\]"):
        resolve("quick", losses=("l2",))


def test_preset_params_are_the_pipeline_parameters_a_preset_sets():
    assert preset_params("quick") == {
        "models": LADDER,
        "losses": ["ce", "dice", "ce_dice", "focal"],
        "augment": ["none", "flip", "scale_crop", "color_jitter", "noise", "rotate", "all"],
        "seeds": [0],
        "crossed": False,
        "epochs": 10,
        "early_stopping_patience": 3,
        "corruptions": True,
        "height": 64,
        "width": 128,
    }
    with pytest.raises(ValueError, match="preset: unknown 'tiny'"):
        preset_params("tiny")


def test_sweep_config_round_trips_a_presets_parameters():
    for name in PRESETS:
        params = {
            k: v for k, v in preset_params(name).items() if k not in {*PRESETS[name].settings, "corruptions"}
        }
        assert sweep_config(**params) == resolve(name)
    sweep = sweep_config(["unet"], ["focal"], ["none"], [4], False, 1, 0)
    assert (sweep.reference_model, sweep.reference_loss, sweep.budget) == ("unet", "focal", Budget(1, 0))
    with pytest.raises(ValueError, match=r"^epochs: must be at least 1, got 0$"):
        sweep_config(["unet"], ["ce"], ["none"], [0], False, 0, 0)
    with pytest.raises(ValueError, match=r"^early_stopping_patience: must be 0 \(off\) or more, got -1$"):
        sweep_config(["unet"], ["ce"], ["none"], [0], False, 3, -1)
    with pytest.raises(ValueError, match=r"^seeds: \['0', 'x'\] are not all whole numbers$"):
        sweep_config(["unet"], ["ce"], ["none"], ["0", "x"], False, 3, 1)
