"""Checks on pipeline parameters that run before any step, so a bad value fails in seconds, not mid-run."""


class ParameterError(ValueError):
    """A pipeline parameter has a value the pipeline cannot run with."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


def check_data_source(data: str) -> str:
    """Return `data` when the Cityscapes source exists.

    Raises:
        ParameterError: nothing is stored there.
    """
    from cityseg.components.source.core import check_data_source as check

    try:
        return check(data)
    except ValueError as err:
        raise ParameterError("data", str(err).split(": ", 1)[1]) from err


def _at_least(params: dict, name: str, minimum: float) -> None:
    if params[name] < minimum:
        raise ParameterError(name, f"must be at least {minimum}, got {params[name]}")


def validate_params(params: dict) -> None:
    """Check the training pipeline's arguments against what the steps accept.

    Raises:
        ParameterError: names the first parameter that is wrong and what is wrong with it.
    """
    from cityseg.components.train.core import AUGMENTATIONS
    from cityseg.components.train.losses import CLASS_WEIGHTINGS, LOSSES
    from cityseg.components.train.models import MODELS, check_size

    if params["model"] not in MODELS:
        raise ParameterError("model", f"unknown model {params['model']!r}; choose one of {', '.join(MODELS)}")
    if params["loss"] not in LOSSES:
        raise ParameterError("loss", f"unknown loss {params['loss']!r}; choose one of {', '.join(LOSSES)}")
    if params["class_weighting"] not in CLASS_WEIGHTINGS:
        raise ParameterError(
            "class_weighting",
            f"unknown weighting {params['class_weighting']!r}; choose one of {', '.join(CLASS_WEIGHTINGS)}",
        )
    unknown = [name for name in params["augment"].split(",") if name and name not in AUGMENTATIONS]
    if unknown:
        raise ParameterError(
            "augment",
            f"unknown augmentation {', '.join(unknown)}; use a comma list of {', '.join(AUGMENTATIONS)}",
        )
    try:
        check_size(params["model"], params["height"], params["width"])
    except ValueError as err:
        raise ParameterError("height/width", str(err)) from err
    for name in ("epochs", "batch_size", "shards", "workers", "synthetic_frames"):
        _at_least(params, name, 1)
    _at_least(params, "gpus_per_worker", 0)
    if not 0.0 <= params["min_dice"] <= 1.0:
        raise ParameterError("min_dice", f"must lie in [0, 1], got {params['min_dice']}")
    if not params["registered_model"]:
        raise ParameterError("registered_model", "must not be empty")
    if params["data"]:
        check_data_source(params["data"])
