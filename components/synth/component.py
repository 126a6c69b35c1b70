"""KFP interface of the synth step: a synthetic Cityscapes set, when no source is given."""

from typing import NamedTuple

from kfp.dsl import Dataset, Output

from cityseg.components import container_images


@container_images.component
def synth(
    *,
    cityscapes: Output[Dataset],
    cities: int,
    frames: int,
    height: int,
    width: int,
    seed: int,
    workers: int,
) -> NamedTuple("SynthOutputs", [("data", str), ("fingerprint", str)]):
    """Generate a synthetic Cityscapes dataset in the official folder layout; returns its URI and fingerprint.

    Args:
        cityscapes: the generated leftImg8bit/ and gtFine/ folders, split by city.
        cities: number of cities; every split gets whole cities.
        frames: frames in all, spread evenly over the cities (rounded up).
        height: frame height in pixels.
        width: frame width in pixels.
        seed: random seed; the same seed gives the same frames.
        workers: parallel worker processes.
    Returns:
        the dataset's URI, and its fingerprint (as the source step computes it for a given source).
    """
    params = dict(locals())
    from cityseg.components.kfp_params import step_config
    from cityseg.components.source.core import fingerprint
    from cityseg.components.synth.config import SynthConfig
    from cityseg.components.synth.core import generate

    frames_per_city = -(-frames // cities)
    config = step_config(
        SynthConfig, params, others=("frames",), out=cityscapes.path, frames_per_city=frames_per_city
    )
    summary = generate(config)
    cityscapes.metadata["splits"] = summary["splits"]
    return cityscapes.uri, fingerprint(cityscapes.path).digest


@container_images.component
def synth_objects(
    *,
    cityscapes: Output[Dataset],
    cities: int,
    frames: int,
    height: int,
    width: int,
    seed: int,
    workers: int,
) -> NamedTuple("SynthOutputs", [("data", str), ("fingerprint", str)]):
    """Generate the synthetic object set: each thing one polygon, and every object class in every city.

    Args:
        cityscapes: the generated leftImg8bit/ and gtFine/ folders (with instanceIds), split by city.
        cities: number of cities; every split gets whole cities.
        frames: frames in all, spread evenly over the cities (rounded up).
        height: frame height in pixels.
        width: frame width in pixels.
        seed: random seed; the same seed gives the same frames.
        workers: parallel worker processes.
    Returns:
        the dataset's URI, and its fingerprint (as the source step computes it for a given source).
    """
    params = dict(locals())
    from cityseg.components.kfp_params import step_config
    from cityseg.components.source.core import fingerprint
    from cityseg.components.synth.config import SynthConfig
    from cityseg.components.synth.core import generate

    frames_per_city = -(-frames // cities)
    config = step_config(
        SynthConfig,
        params,
        others=("frames",),
        out=cityscapes.path,
        frames_per_city=frames_per_city,
        objects=True,
    )
    summary = generate(config)
    cityscapes.metadata["splits"] = summary["splits"]
    return cityscapes.uri, fingerprint(cityscapes.path).digest
