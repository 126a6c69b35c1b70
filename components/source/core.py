"""Checks on a Cityscapes source (folder, folder of the official zips, or gs:// prefix)."""

from cityseg.components import storage


def check_data_source(data: str) -> str:
    """Return `data` when the Cityscapes source exists.

    Raises:
        ValueError: nothing is stored there; the message starts with `data:`.
    """
    if not storage.exists(data):
        kind = "gs:// prefix" if storage.is_gcs(data) else "folder"
        raise ValueError(f"data: Cityscapes source {data} does not exist (no such {kind})")
    return data
