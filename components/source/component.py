"""KFP interface of the source step: check a given Cityscapes source."""

from cityseg.components import images


@images.component("source")
def check_source(data: str) -> str:
    """Check that a Cityscapes source (folder or gs:// prefix) exists; returns it unchanged.

    Args:
        data: a Cityscapes root, a folder with the two official zips, or a gs:// prefix holding either.
    """
    from cityseg.components.source.core import check_data_source

    return check_data_source(data)
