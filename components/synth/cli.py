"""`cityseg synth`: write a synthetic Cityscapes folder."""

import json

import click

from cityseg.components.defaults import defaults
from cityseg.components.synth import core
from cityseg.components.synth.config import (
    MAX_CITIES,
    MAX_SIDE,
    MIN_CITIES,
    MIN_HEIGHT,
    MIN_WIDTH,
    SynthConfig,
)

DEFAULTS = defaults(SynthConfig)


def _check_cities(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if not MIN_CITIES <= value <= MAX_CITIES:
        raise click.BadParameter(
            f"{value}: train, val and test each need a city of their own, so at least {MIN_CITIES}; "
            f"there are {MAX_CITIES} Cityscapes city names, so at most {MAX_CITIES}."
        )
    return value


@click.command()
@click.option("--out", required=True, help="Folder (or gs:// prefix) to write the Cityscapes layout to.")
@click.option(
    "--cities",
    type=int,
    callback=_check_cities,
    default=DEFAULTS.cities,
    show_default=True,
    help=f"Number of cities, {MIN_CITIES}..{MAX_CITIES}; every split gets whole cities.",
)
@click.option(
    "--frames-per-city",
    type=click.IntRange(min=1),
    default=DEFAULTS.frames_per_city,
    show_default=True,
    help="Frames per city.",
)
@click.option(
    "--height",
    type=click.IntRange(MIN_HEIGHT, MAX_SIDE),
    default=DEFAULTS.height,
    show_default=True,
    help="Frame height in pixels.",
)
@click.option(
    "--width",
    type=click.IntRange(MIN_WIDTH, MAX_SIDE),
    default=DEFAULTS.width,
    show_default=True,
    help="Frame width in pixels.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=DEFAULTS.seed,
    show_default=True,
    help="Same seed, same bytes.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=DEFAULTS.workers,
    show_default=True,
    help="Parallel processes.",
)
@click.option(
    "--objects/--no-objects",
    default=DEFAULTS.objects,
    show_default=True,
    help="The object pipeline's set: each thing one polygon, trams, buses, trucks and riders in every frame.",
)
def synth(
    *,
    out: str,
    cities: int,
    frames_per_city: int,
    height: int,
    width: int,
    seed: int,
    workers: int,
    objects: bool,
) -> None:
    """Generate synthetic street scenes in the Cityscapes layout: images, label and instance ids, polygons."""
    config = SynthConfig(
        out=out,
        cities=cities,
        frames_per_city=frames_per_city,
        height=height,
        width=width,
        seed=seed,
        workers=workers,
        objects=objects,
    )
    try:
        summary = core.generate(config)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(summary, indent=2))
