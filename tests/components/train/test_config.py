"""`check_config`: the one check of a training config's names, counts and size."""

import subprocess
import sys

import pytest

from cityseg.components.train.config import (
    LOSS_NAMES,
    MODEL_STRIDES,
    ConfigError,
    TrainConfig,
    check_config,
    check_size,
)


def _config(**fields) -> TrainConfig:
    return TrainConfig(data="", out="", **fields)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"model": "segformer"}, "model", "unknown model 'segformer'; choose one of unet_mini, unet, "),
        ({"loss": "lovasz"}, "loss", "unknown loss 'lovasz'; choose one of ce, dice, ce_dice, focal"),
        ({"class_weighting": "sqrt"}, "class_weighting", "unknown weighting 'sqrt'; choose one of none, "),
        ({"lr_schedule": "step"}, "lr_schedule", "unknown value 'step'; choose one of constant, cosine, "),
        ({"augment": ("flip", "mixup", "cutout")}, "augment", "unknown augmentation mixup, cutout; use a "),
        ({"epochs": 0}, "epochs", "must be at least 1, got 0"),
        ({"batch_size": -2}, "batch_size", "must be at least 1, got -2"),
        ({"learning_rate": 0.0}, "learning_rate", "must be positive, got 0.0"),
        ({"early_stopping_patience": -1}, "early_stopping_patience", "must be 0 (off) or more, got -1"),
        (
            {"model": "mobilenetv2_unet", "height": 64, "width": 240},
            "height/width",
            "size 64x240 does not suit model 'mobilenetv2_unet': height and width must be positive "
            "multiples of its stride 32",
        ),
    ],
)
def test_check_config_names_the_field_and_what_is_wrong(fields, field, message):
    with pytest.raises(ConfigError) as info:
        check_config(_config(**fields))
    assert info.value.field == field
    assert info.value.message.startswith(message)
    assert str(info.value) == f"{field}: {info.value.message}"


def test_the_size_is_checked_only_when_both_sides_are_known():
    check_config(_config(model="unet", height=40))
    check_config(_config(model="unet", height=48, width=96))
    with pytest.raises(ConfigError, match="stride 16"):
        check_config(_config(model="unet", height=40, width=64))


def test_the_defaults_pass():
    check_config(_config())


def test_check_size_rejects_zero_and_unknown_models():
    with pytest.raises(ValueError, match="size 0x64 does not suit model 'unet_mini'"):
        check_size("unet_mini", 0, 64)
    with pytest.raises(ValueError, match="unknown model 'vit'"):
        check_size("vit", 64, 64)


def test_the_name_tables_match_what_the_models_and_losses_build():
    from cityseg.components.train.losses import LOSSES
    from cityseg.components.train.models import MODELS

    assert {name: spec.stride for name, spec in MODELS.items()} == MODEL_STRIDES
    assert tuple(LOSSES) == LOSS_NAMES


def test_checking_a_config_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from cityseg.components.train.config import TrainConfig, check_config\n"
        "check_config(TrainConfig(data='', out='', height=64, width=128))\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_the_train_command_line_and_its_help_do_not_import_tensorflow():
    """`cityseg train --help` answers at once, and the launcher builds worker argv without TensorFlow."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from cityseg.cli import main\n"
        "from cityseg.components.train.cli import train_argv\n"
        "from cityseg.components.train.config import TrainConfig\n"
        "assert CliRunner().invoke(main, ['train', '--help']).exit_code == 0\n"
        "train_argv(TrainConfig(data='d', out='o'))\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
