"""The source step's configuration: which Cityscapes source to check and fingerprint."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class SourceConfig:
    """Where the Cityscapes source is: a root, a folder with the two official zips, or a gs:// prefix."""

    data: str
