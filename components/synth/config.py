"""The synth step's configuration and its limits: the Cityscapes city names per split, sizes, seed."""

import dataclasses

from cityseg.components.defaults import RECIPE

SPLITS = ("train", "val", "test")
# Cityscapes' own cities per split; a synthetic city borrows the name and never changes split.
CITIES = {
    "train": (
        "aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf", "erfurt", "hamburg", "hanover",
        "jena", "krefeld", "monchengladbach", "strasbourg", "stuttgart", "tubingen", "ulm", "weimar",
        "zurich",
    ),
    "val": ("frankfurt", "lindau", "munster"),
    "test": ("berlin", "bielefeld", "bonn", "leverkusen", "mainz", "munich"),
}  # fmt: skip


ALL_CITIES = tuple(city for split in SPLITS for city in CITIES[split])
MIN_CITIES, MAX_CITIES = len(SPLITS), len(ALL_CITIES)


MIN_HEIGHT, MIN_WIDTH, MAX_SIDE = 32, 64, 4096


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """What to generate: where, how many cities and frames, at what size, from which seed."""

    out: str
    cities: int = RECIPE.synthetic_cities
    frames_per_city: int = RECIPE.synthetic_frames_per_city
    height: int = 256
    width: int = 512
    seed: int = 0
    workers: int = 1
    # The object pipeline's set: each thing one polygon (one instance, as Cityscapes annotates them),
    # plus trams, buses, trucks, riders and bicycles in every frame. Off, the segmentation set's
    # frames stay as they are.
    objects: bool = False

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        if not MIN_CITIES <= self.cities <= MAX_CITIES:
            raise ValueError(
                f"cities={self.cities}: must be {MIN_CITIES}..{MAX_CITIES}; train, val and test each need "
                f"a city of their own, and there are {MAX_CITIES} Cityscapes city names"
            )
        if self.frames_per_city < 1:
            raise ValueError(f"frames_per_city={self.frames_per_city}: must be at least 1")
        if not MIN_HEIGHT <= self.height <= MAX_SIDE:
            raise ValueError(f"height={self.height}: must be {MIN_HEIGHT}..{MAX_SIDE} pixels")
        if not MIN_WIDTH <= self.width <= MAX_SIDE:
            raise ValueError(f"width={self.width}: must be {MIN_WIDTH}..{MAX_SIDE} pixels")
        if self.seed < 0:
            raise ValueError(f"seed={self.seed}: must be non-negative")
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: must be at least 1")
