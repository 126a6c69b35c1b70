"""The comparison sweep's configuration: what it varies around the reference recipe, its seeds and budget."""

import dataclasses

from cityseg.components.defaults import RECIPE
from cityseg.components.train.config import AUGMENTATIONS

NO_AUGMENTATION, ALL_AUGMENTATIONS = "none", "all"
# A combination of techniques inside one setting: `flip+scale_crop` (commas separate settings).
COMBINE = "+"


def _epochs(count: int) -> str:
    return f"{count} epoch{'' if count == 1 else 's'}"


@dataclasses.dataclass(frozen=True)
class Budget:
    """The training budget every configuration gets: early stopping on select_mean_dice, at most max_epochs.

    patience 0 trains exactly max_epochs. The best epoch's weights are kept either way (Keras
    EarlyStopping with restore_best_weights), so a configuration is scored where it peaked.
    """

    # The quick preset's budget, which a free 2-core machine fits (docs/comparison.md).
    max_epochs: int = 10
    patience: int = 3

    def __post_init__(self):
        if self.max_epochs < 1:
            raise ValueError(f"max_epochs must be at least 1, got {self.max_epochs}")
        if self.patience < 0:
            raise ValueError(f"patience must be 0 (off) or more, got {self.patience}")

    def rule(self) -> str:
        """The budget rule in one sentence, as the report states it."""
        if not self.patience:
            return f"every configuration trains exactly {_epochs(self.max_epochs)}"
        return (
            "every configuration trains until select_mean_dice has not improved for "
            f"{_epochs(self.patience)}, at most {_epochs(self.max_epochs)}, and keeps its best epoch's "
            "weights"
        )


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """What a sweep varies around its reference recipe, the seeds, and the budget: the quick preset."""

    models: tuple[str, ...] = ("unet_mini", "unet", "mobilenetv2_unet", "deeplabv3plus")
    losses: tuple[str, ...] = ("ce", "dice", "ce_dice", "focal")
    # None, each technique alone, all together.
    augment: tuple[str, ...] = (NO_AUGMENTATION, *AUGMENTATIONS, ALL_AUGMENTATIONS)
    # The reference recipe: the model the loss and augmentation studies train (the course's
    # reference U-Net), and the loss and augmentation every study holds fixed (the training recipe's).
    reference_model: str = "unet_mini"
    reference_loss: str = RECIPE.loss
    reference_augment: str = COMBINE.join(RECIPE.augment)
    # One seed fits 20 minutes on 2 cores; its comparisons get a paired bootstrap interval over the
    # validation frames (seed-to-seed noise not included), and 2+ seeds a t-interval over the seeds.
    seeds: tuple[int, ...] = (0,)
    crossed: bool = False
    budget: Budget = Budget()
    # Every configuration is scored under corruptions too: robustness is where augmentation pays.
    corruptions: bool = True
