"""KFP interface of the source step: check a given Cityscapes source and fingerprint it."""

from typing import NamedTuple

from cityseg.components import container_images


@container_images.component
def check_source(data: str) -> NamedTuple("SourceOutputs", [("data", str), ("fingerprint", str)]):
    """Check that a Cityscapes source exists and fingerprint it from its listing; returns both.

    Args:
        data: a Cityscapes root, a folder with the two official zips, or a gs:// prefix holding either.
    Returns:
        the source unchanged, and its fingerprint, which changes exactly when its frames change.
    """
    from cityseg.components.source.core import fingerprint

    return data, fingerprint(data).digest
