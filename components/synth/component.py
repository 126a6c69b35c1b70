"""KFP interface of the ingest step: synthesize Cityscapes when no source is given, else check the source."""

from kfp.dsl import Dataset, Output

from cityseg.components import images


@images.component("synth")
def synth(
    *,
    cityscapes: Output[Dataset],
    cities: int = 6,
    frames: int = 240,
    height: int = 128,
    width: int = 256,
    seed: int = 0,
    workers: int = 2,
) -> str:
    """Generate a synthetic Cityscapes dataset in the official folder layout; returns its URI.

    Args:
        cityscapes: the generated leftImg8bit/ and gtFine/ folders, split by city.
        cities: number of cities; every split gets whole cities.
        frames: frames in all, spread evenly over the cities (rounded up).
        height: frame height in pixels.
        width: frame width in pixels.
        seed: random seed; the same seed gives the same frames.
        workers: parallel worker processes.
    """
    from cityseg.components.synth.core import SynthConfig, generate

    summary = generate(
        SynthConfig(
            out=cityscapes.path,
            cities=cities,
            frames_per_city=-(-frames // cities),
            height=height,
            width=width,
            seed=seed,
            workers=workers,
        )
    )
    cityscapes.metadata["splits"] = summary["splits"]
    return cityscapes.uri
