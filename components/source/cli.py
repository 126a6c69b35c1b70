"""`cityseg source`: argv -> SourceConfig -> fingerprint, as the pipelines' source check runs it."""

import click


@click.command()
@click.option("--data", required=True, help="Cityscapes root, folder of the two zips, or gs:// prefix.")
def source(data: str) -> None:
    """Check a Cityscapes source and print its fingerprint, which changes exactly when its frames change."""
    from cityseg.components.source.config import SourceConfig
    from cityseg.components.source.core import fingerprint

    config = SourceConfig(data=data)
    try:
        found = fingerprint(config.data)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{found.digest}  {config.data} ({found.kind}, {found.files} files)")
