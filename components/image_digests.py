"""Pinning images by digest: the digests of pushed images, kept in a JSON file, and rewriting references.

`python -m cityseg.components.container_images build --push --digests FILE` records the registry
digest of every pushed image, and `pin FILE...` rewrites each `registry/cityseg-X:tag` reference in a
compiled pipeline (or any text file) to `registry/cityseg-X@sha256:...`, so a run uses exactly the
bytes that were pushed.
"""

import json
import os
import re
import subprocess
from pathlib import Path


def repo_digest(reference: str, docker: str = "docker") -> str:
    """The digest reference (`repository@sha256:...`) under which `reference` was pushed.

    Raises:
        ValueError: docker knows no digest of `reference` in its own repository (it was never pushed).
    """
    argv = [docker, "image", "inspect", "--format", "{{json .RepoDigests}}", reference]
    listed = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout or "null")
    repository = reference.rsplit(":", 1)[0]
    for digest in listed or []:
        if digest.split("@", 1)[0] == repository:
            return digest
    raise ValueError(f"{reference}: docker records no digest in {repository}; push the image first")


def write_digests(path: Path, digests: dict[str, str]) -> None:
    """Add `digests` (tag reference -> digest reference) to the JSON file `path`, written atomically."""
    recorded = load_digests(path) if path.exists() else {}
    recorded.update(digests)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def load_digests(path: Path) -> dict[str, str]:
    """The tag reference -> digest reference table of `path`.

    Raises:
        ValueError: the file is not such a JSON table, naming the file and the bad entry.
    """
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the image digests: {err}") from err
    if not isinstance(table, dict):
        raise ValueError(f"{path}: expected a JSON object of image references")
    for tagged, pinned in table.items():
        if not (isinstance(pinned, str) and re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", pinned)):
            raise ValueError(f"{path}: {tagged}: {pinned!r} is not a repository@sha256:<64 hex> reference")
        if pinned.split("@", 1)[0] != tagged.rsplit(":", 1)[0]:
            raise ValueError(f"{path}: {tagged}: the digest {pinned} is of another repository")
    return table


def pin_text(text: str, digests: dict[str, str]) -> tuple[str, int]:
    """`text` with every whole tag reference of `digests` replaced by its digest reference, and the count."""
    count = 0
    for tagged, pinned in digests.items():
        # A whole reference only: `r/cityseg-serve:0.1.0` must not match inside `...:0.1.0-rc1`.
        text, n = re.subn(rf"(?<![\w./-]){re.escape(tagged)}(?![\w.-])", pinned, text)
        count += n
    return text, count


def unpinned(text: str, digests: dict[str, str]) -> list[str]:
    """The cityseg image references in `text` still on a tag of `digests`' registries and tags."""
    stems = {(tagged.rsplit("/", 1)[0], tagged.rsplit(":", 1)[1]) for tagged in digests}
    found = set()
    for registry, tag in stems:
        pattern = rf"(?<![\w./-]){re.escape(registry)}/cityseg-[\w.-]+?:{re.escape(tag)}(?![\w.-])"
        found.update(re.findall(pattern, text))
    return sorted(found)
