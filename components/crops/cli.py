"""`cityseg crops`: argv -> CropsConfig -> write_crops, then the crops per class and split."""

import click

from cityseg.components.crops.config import CropsConfig
from cityseg.components.defaults import defaults

DEFAULTS = defaults(CropsConfig)


@click.command()
@click.option(
    "--cityscapes", "src", required=True, help="Cityscapes root, folder of the two zips, or gs:// prefix."
)
@click.option(
    "--out", required=True, help="Output folder (or gs:// prefix) for crop shards and manifest.json."
)
@click.option(
    "--size", type=click.IntRange(min=1), default=DEFAULTS.size, show_default=True, help="Crop side, pixels."
)
@click.option(
    "--margin",
    type=click.FloatRange(0, 2),
    default=DEFAULTS.margin,
    show_default=True,
    help="Context on each side of an instance's box, as a share of its longer side.",
)
@click.option(
    "--min-box",
    type=click.IntRange(min=1),
    default=DEFAULTS.min_box,
    show_default=True,
    help="Drop instances whose visible box has a shorter longer side, in source pixels.",
)
@click.option(
    "--min-pixels",
    type=click.IntRange(min=0),
    default=DEFAULTS.min_pixels,
    show_default=True,
    help="Drop instances with fewer visible pixels.",
)
@click.option(
    "--min-visible",
    type=click.FloatRange(0, 1),
    default=DEFAULTS.min_visible,
    show_default=True,
    help="Drop instances with a smaller visible share of their polygon (mostly occluded).",
)
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    default=DEFAULTS.shards,
    show_default=True,
    help="Shards per split.",
)
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes.  [default: one per core]")
def crops(**options) -> None:
    """Write square crops of every person, rider and vehicle instance as TFRecord shards per split."""
    from cityseg.components.crops.core import write_crops

    config = CropsConfig(cityscapes=options.pop("src"), **options)
    try:
        manifest = write_crops(config)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    classes = manifest["classes"]
    click.echo(f"{'split':<8}" + "".join(f"{name:>11}" for name in classes) + f"{'dropped':>10}")
    for split, entry in manifest["splits"].items():
        counts = "".join(f"{entry['class_counts'][name]:>11}" for name in classes)
        click.echo(f"{split:<8}{counts}{sum(entry['dropped'].values()):>10}")
    click.echo(f"{config.out} ({config.size}x{config.size}), content hash {manifest['content_hash'][:12]}")
