"""Checks on pipeline parameters that run before any step, so a bad value fails in seconds, not mid-run.

The names and sizes are judged by the train step's own `check_config`, the sweep's grid by
`check_sweep`, the gates by `PushConfig`: this module only maps pipeline parameters onto them.
"""

import itertools

from cityseg.components.train.config import ConfigError, TrainConfig, check_config


class ParameterError(ConfigError):
    """A pipeline parameter has a value the pipeline cannot run with."""

    @property
    def param(self) -> str:
        """The parameter's name (`height/width` for a size)."""
        return self.field


def _names(value: str) -> tuple[str, ...]:
    return tuple(name for name in value.split(",") if name)


def train_config(params: dict, **settings) -> TrainConfig:
    """The TrainConfig that the pipeline's shared training parameters (and `settings`) describe."""
    from cityseg.pipelines.steps import SHARED_TRAIN_FIELDS

    return TrainConfig(data="", out="", **{name: params[name] for name in SHARED_TRAIN_FIELDS}, **settings)


def _checked(check, *args) -> None:
    try:
        check(*args)
    except ConfigError as err:
        raise ParameterError(err.field, err.message) from err


def _at_least(params: dict, name: str, minimum: float) -> None:
    if params[name] < minimum:
        raise ParameterError(name, f"must be at least {minimum}, got {params[name]}")


def _check_shared(params: dict) -> None:
    """What both pipelines check the same way: counts, the push gate, and the data source."""
    from cityseg.components.push.config import PushConfig

    for name in ("shards", "synthetic_frames"):
        _at_least(params, name, 1)
    _at_least(params, "gpus_per_worker", 0)
    if not 0 <= params["select_fraction"] < 1:
        raise ParameterError("select_fraction", f"must be in [0, 1), got {params['select_fraction']}")
    try:
        PushConfig(
            model="",
            metrics="",
            data="",
            min_dice=params["min_dice"],
            min_improvement=params["min_improvement"],
        )
    except ValueError as err:
        # PushConfig's messages start with the field's name.
        field, _, message = str(err).partition(" ")
        raise ParameterError(field, message) from err
    _check_validation(params)
    _check_deploy(params)
    if not params["registered_model"]:
        raise ParameterError("registered_model", "must not be empty")
    if params["data"]:
        check_data_source(params["data"])


def _check_deploy(params: dict) -> None:
    from cityseg.components.deploy.config import DeployConfig

    names = ("canary_traffic_percent", "ready_timeout_s")
    try:
        DeployConfig(version="1", **{name: params[name] for name in names})
    except ValueError as err:
        # DeployConfig's messages start with the field's name.
        field, _, message = str(err).partition(" ")
        raise ParameterError(field, message) from err


def _check_validation(params: dict) -> None:
    from cityseg.components.validate.config import ValidateConfig

    names = ("min_frames", "max_void_share", "drift_metric", "drift_threshold", "drift_policy")
    try:
        ValidateConfig(shards="", out="", **{name: params[name] for name in names})
    except ValueError as err:
        # ValidateConfig's messages start with the field's name.
        field, _, message = str(err).partition(" ")
        raise ParameterError(field, message) from err


def check_data_source(data: str) -> str:
    """Return `data` when the Cityscapes source exists.

    Raises:
        ParameterError: nothing is stored there.
    """
    from cityseg.components.source.core import check_data_source as check

    try:
        return check(data)
    except ValueError as err:
        raise ParameterError("data", str(err).split(": ", 1)[-1]) from err


def validate_params(params: dict) -> None:
    """Check the training pipeline's arguments against what the steps accept.

    Raises:
        ParameterError: names the first parameter that is wrong and what is wrong with it.
    """
    config = train_config(
        params, model=params["model"], loss=params["loss"], augment=_names(params["augment"])
    )
    _checked(check_config, config)
    _at_least(params, "workers", 1)
    _check_shared(params)


def validate_sweep_params(params: dict) -> None:
    """Check the sweep's arguments: the grid, every configuration with `check_config`, and the rest.

    Raises:
        ParameterError: names the first parameter that is wrong and what is wrong with it.
    """
    from cityseg.components.sweep.core import augmentation_list
    from cityseg.components.sweep.presets import sweep_config

    fields = ("models", "losses", "augment", "seeds", "crossed", "epochs", "early_stopping_patience")
    try:
        sweep = sweep_config(**{name: params[name] for name in fields})
    except ValueError as err:
        field, _, message = str(err).partition(": ")
        raise ParameterError(field, message) from err
    # Every configuration's training settings, sizes included, as the train step will judge them.
    plural = {"model": "models", "loss": "losses", "augment": "augment"}
    for model, loss, setting in itertools.product(sweep.models, sweep.losses, sweep.augment):
        config = train_config(params, model=model, loss=loss, augment=_names(augmentation_list(setting)))
        try:
            check_config(config)
        except ConfigError as err:
            raise ParameterError(plural.get(err.field, err.field), err.message) from err
    _check_shared(params)
