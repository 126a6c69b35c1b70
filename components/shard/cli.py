"""`cityseg shard`: argv -> ShardConfig -> write_shards, then examples per split."""

import click

from cityseg.components.beam.cli import pop_runner, runner_options
from cityseg.components.defaults import defaults
from cityseg.components.shard.config import ShardConfig
from cityseg.components.shard.core import write_shards

DEFAULTS = defaults(ShardConfig)


@click.command()
@click.option(
    "--cityscapes", "src", required=True, help="Cityscapes root, folder of the two zips, or gs:// prefix."
)
@click.option("--categories", required=True, help="Category masks written by `cityseg remap`.")
@click.option("--out", required=True, help="Output folder (or gs:// prefix) for shards and manifest.json.")
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    default=DEFAULTS.shards,
    show_default=True,
    help="Shards per split.",
)
@click.option(
    "--height",
    type=click.IntRange(min=1),
    default=DEFAULTS.height,
    show_default=True,
    help="Stored image height.",
)
@click.option(
    "--width",
    type=click.IntRange(min=1),
    default=DEFAULTS.width,
    show_default=True,
    help="Stored image width.",
)
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes.  [default: one per core]")
@click.option(
    "--select-fraction",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=DEFAULTS.select_fraction,
    show_default=True,
    help="Share of the source's train frames written as the select split (chosen by frame-id hash).",
)
@runner_options
def shard(
    *,
    src: str,
    categories: str,
    out: str,
    shards: int,
    height: int,
    width: int,
    workers: int | None,
    select_fraction: float,
    **runner_settings,
) -> None:
    """Write TFRecord shards OUT/{split}-{i:05d}-of-{n:05d}.tfrecord, manifest.json and TFDS metadata."""
    config = ShardConfig(
        src,
        categories,
        out,
        shards=shards,
        height=height,
        width=width,
        workers=workers,
        select_fraction=select_fraction,
        runner=pop_runner(runner_settings),
    )
    try:
        manifest = write_shards(config)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    for split, info in manifest["splits"].items():
        click.echo(f"{split}: {info['examples']} examples in {len(info['shards'])} shards")
    click.echo(f"{out} ({height}x{width}), content hash {manifest['content_hash'][:12]}")
