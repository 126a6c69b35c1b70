"""`cityseg remap`: argv -> RemapConfig -> remap, then the summary as a table."""

import click

from cityseg.components.beam.cli import pop_runner, runner_options


@click.command()
@click.option(
    "--cityscapes", "src", required=True, help="Cityscapes root, folder of the two zips, or gs:// prefix."
)
@click.option("--out", required=True, help="Output folder (or gs:// prefix) for the category masks.")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes.  [default: one per core]")
@runner_options
def remap(src: str, out: str, workers: int | None, **runner_settings) -> None:
    """Remap label ids to the 8 categories: OUT/{split}/{city}/{stem}_gtFine_categoryIds.png."""
    from cityseg.components.remap.config import RemapConfig
    from cityseg.components.remap.core import remap as remap_to_categories

    runner = pop_runner(runner_settings)
    try:
        summary = remap_to_categories(RemapConfig(cityscapes=src, out=out, workers=workers, runner=runner))
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    frames = summary["frames"]
    click.echo(f"{sum(frames.values())} frames -> {out}")
    click.echo("  ".join(f"{split}: {count}" for split, count in sorted(frames.items())))
    click.echo(f"{'category':<14}{'pixel share':>12}")
    for name, share in summary["pixel_share"].items():
        click.echo(f"{name:<14}{share:>11.2%}")
