"""Named sweeps: `quick` for a laptop, `full` for the cluster; explicit flags override what they name.

Like Model Garden's experiment factory, a preset states only what differs from the defaults: the
sweep (`SweepConfig`) and the few pipeline settings that must change for it to fit its machine.
Everything else a configuration trains with comes from the training pipeline's own defaults.
"""

import dataclasses

from cityseg.components.sweep.config import Budget, SweepConfig
from cityseg.components.sweep.core import check_sweep


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named sweep and the pipeline settings it changes (name -> value), with why."""

    name: str
    purpose: str
    sweep: SweepConfig
    settings: dict = dataclasses.field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "quick",
            "local default: the brief's three questions, one factor at a time around unet_mini, "
            "1 seed, 64x128, within 20 minutes on a free 2-core machine",
            SweepConfig(),
            # 13 configurations at the recipe's 96x192 take about 25 minutes on 2 cores; 64x128 fits.
            {"height": 64, "width": 128},
        ),
        Preset(
            "full",
            "cluster (GPU, ParallelFor): every model x loss x augmentation, 3 seeds, 256x512",
            SweepConfig(seeds=(0, 1, 2), crossed=True, budget=Budget(max_epochs=60, patience=8)),
            {"height": 256, "width": 512, "synthetic_frames": 1500},
        ),
    )
}
DEFAULT_PRESET = "quick"


def _reference(value: str, axis: tuple[str, ...] | None) -> str:
    # An overridden axis that leaves the reference out compares against its first value instead.
    return value if axis is None or value in axis else axis[0]


def preset_params(name: str) -> dict:
    """The pipeline parameters preset `name` sets: its sweep as `sweep_config` reads it, and its settings.

    Raises:
        ValueError: an unknown preset.
    """
    if name not in PRESETS:
        raise ValueError(f"preset: unknown {name!r}; choose from {', '.join(PRESETS)}")
    preset = PRESETS[name]
    sweep = preset.sweep
    return {
        "models": list(sweep.models),
        "losses": list(sweep.losses),
        "augment": list(sweep.augment),
        "seeds": list(sweep.seeds),
        "crossed": sweep.crossed,
        "epochs": sweep.budget.max_epochs,
        "early_stopping_patience": sweep.budget.patience,
        "corruptions": sweep.corruptions,
        **preset.settings,
    }


def sweep_config(
    models: list,
    losses: list,
    augment: list,
    seeds: list,
    crossed: bool,
    epochs: int,
    early_stopping_patience: int,
) -> SweepConfig:
    """The SweepConfig of a sweep pipeline's parameters (see `preset_params`), checked.

    The reference recipe is SweepConfig's, moved to the first model or loss when the lists leave it out.

    Raises:
        ValueError: see `check_sweep`.
    """
    default = SweepConfig()
    try:
        budget = Budget(int(epochs), int(early_stopping_patience))
    except ValueError as err:
        field = "epochs" if "max_epochs" in str(err) else "early_stopping_patience"
        raise ValueError(f"{field}: {str(err).split(' ', 1)[1]}") from err
    try:
        seeds = tuple(int(seed) for seed in seeds)
    except ValueError as err:
        raise ValueError(f"seeds: {list(seeds)} are not all whole numbers") from err
    sweep = SweepConfig(
        models=tuple(models),
        losses=tuple(losses),
        augment=tuple(augment),
        reference_model=_reference(default.reference_model, tuple(models) or None),
        reference_loss=_reference(default.reference_loss, tuple(losses) or None),
        seeds=seeds,
        crossed=bool(crossed),
        budget=budget,
    )
    check_sweep(sweep)
    return sweep


def resolve(
    preset: str = DEFAULT_PRESET,
    *,
    models: tuple[str, ...] | None = None,
    losses: tuple[str, ...] | None = None,
    augment: tuple[str, ...] | None = None,
    seeds: tuple[int, ...] | None = None,
    max_epochs: int | None = None,
    patience: int | None = None,
) -> SweepConfig:
    """The preset's sweep with every given (non-None) override applied, checked.

    Raises:
        ValueError: an unknown preset, or an override that `check_sweep` refuses.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset: unknown {preset!r}; choose from {', '.join(PRESETS)}")
    sweep = PRESETS[preset].sweep
    budget = dataclasses.replace(
        sweep.budget,
        **{k: v for k, v in {"max_epochs": max_epochs, "patience": patience}.items() if v is not None},
    )
    overrides = {"models": models, "losses": losses, "augment": augment, "seeds": seeds}
    sweep = dataclasses.replace(sweep, budget=budget, **{k: v for k, v in overrides.items() if v is not None})
    sweep = dataclasses.replace(
        sweep,
        reference_model=_reference(sweep.reference_model, models),
        reference_loss=_reference(sweep.reference_loss, losses),
    )
    check_sweep(sweep)
    return sweep
