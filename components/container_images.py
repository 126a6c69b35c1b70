"""Container images: the one place that names them, and `python -m cityseg.components.container_images build`.

Every KFP component references `image(step)`, and `make images` builds and pushes exactly those
names, so the compiled pipeline and the registry never disagree. A shared base image carries the
project and its CPU dependencies; `base-gpu` is the same Dockerfile with the CUDA TensorFlow extra,
which the train and evaluate images start from.

Pinning by digest: `build --push --digests FILE` records the registry digest of every pushed image,
and `pin FILE...` rewrites each `registry/cityseg-X:tag` reference in a compiled pipeline (or any
text file) to `registry/cityseg-X@sha256:...`, so a run uses exactly the bytes that were pushed.
"""

import importlib.metadata
import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
from kfp import dsl

DEFAULT_REGISTRY = "ghcr.io/cityseg"
DEFAULT_TAG = importlib.metadata.version("cityseg")
IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"


@dataclass(frozen=True)
class ImageSpec:
    """One image: its name, the image it starts from, a base's pip extras, and its folder under images/."""

    name: str
    base: str | None = None
    extras: str = ""
    folder: str = ""

    @property
    def dockerfile(self) -> Path:
        return IMAGES_DIR / (self.folder or self.name) / "Dockerfile"


# Build order matters: the bases come first. The GPU base is the CPU base's Dockerfile with other extras.
IMAGES = (
    ImageSpec("base", extras="cpu"),
    ImageSpec("base-gpu", extras="gpu", folder="base"),
    ImageSpec("synth", base="base"),
    ImageSpec("remap", base="base"),
    ImageSpec("shard", base="base"),
    ImageSpec("validate", base="base"),
    ImageSpec("train", base="base-gpu"),
    ImageSpec("evaluate", base="base-gpu"),
    ImageSpec("push", base="base"),
    ImageSpec("serve", base="base"),
    # The serve Dockerfile on CUDA TensorFlow, for the InferenceService's GPU overlay.
    ImageSpec("serve-gpu", base="base-gpu", extras="gpu", folder="serve"),
    ImageSpec("mlflow"),
)
BY_NAME = {spec.name: spec for spec in IMAGES}
# Pipeline step -> image; the source check runs in the synth image, which already has the storage code.
STEP_IMAGES = {
    "synth": "synth",
    "source": "synth",
    "remap": "remap",
    "shard": "shard",
    "validate": "validate",
    "train": "train",
    "evaluate": "evaluate",
    "push": "push",
    # The deploy step needs only the Kubernetes and MLflow clients, which the push image has.
    "deploy": "push",
    # The comparison sweep's bookkeeping steps (MLflow parent run, report) need only the base image.
    "compare": "base",
}


def image(name: str, registry: str = DEFAULT_REGISTRY, tag: str = DEFAULT_TAG) -> str:
    """The full reference of image `name` (a step or an image), e.g. ghcr.io/cityseg/cityseg-train:0.1.0."""
    folder = STEP_IMAGES.get(name, name)
    if folder not in BY_NAME:
        raise ValueError(f"unknown image {name!r}; known: {', '.join(sorted(BY_NAME))}")
    return f"{registry.rstrip('/')}/cityseg-{folder}:{tag}"


def component(step: str) -> Callable:
    """The `@dsl.component` decorator for `step`, on its default image.

    The images install kfp themselves, so nothing is pip-installed when a task starts.
    """
    return dsl.component(base_image=image(step), install_kfp_package=False)


def rebase(step_component, step: str, registry: str, tag: str):
    """The same component on another registry/tag (for `cityseg compile --registry ... --tag ...`)."""
    if registry == DEFAULT_REGISTRY and tag == DEFAULT_TAG:
        return step_component
    return dsl.component(
        step_component.python_func, base_image=image(step, registry, tag), install_kfp_package=False
    )


def build_commands(registry: str, tag: str, push: bool, commit: str | None = None) -> list[list[str]]:
    """The `docker build` (and `docker push`) command lines for every image, bases first.

    `commit` is baked into the bases as CITYSEG_GIT_COMMIT, which MLflow runs are tagged with.
    """
    commands = []
    for spec in IMAGES:
        argv = ["docker", "build", "-f", str(spec.dockerfile), "-t", image(spec.name, registry, tag)]
        if spec.base is not None:
            argv += ["--build-arg", f"BASE_IMAGE={image(spec.base, registry, tag)}"]
        if spec.extras:
            argv += ["--build-arg", f"EXTRAS={spec.extras}"]
        if spec.base is None and spec.extras and commit:
            argv += ["--build-arg", f"GIT_COMMIT={commit}"]
        commands.append([*argv, str(IMAGES_DIR.parent)])
        if push:
            commands.append(["docker", "push", image(spec.name, registry, tag)])
    return commands


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


@click.group()
def main() -> None:
    """Build the cityseg container images."""


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True)
    except FileNotFoundError as err:
        raise click.ClickException("docker is not installed: `make images` needs a container engine") from err
    except subprocess.CalledProcessError as err:
        raise click.ClickException(f"{' '.join(argv[:2])} failed with exit code {err.returncode}") from err


@main.command()
@click.option("--registry", default=DEFAULT_REGISTRY, show_default=True, help="Registry and namespace.")
@click.option("--tag", default=DEFAULT_TAG, show_default=True, help="Tag of every image.")
@click.option("--push/--no-push", default=False, help="Push each image after building it.")
@click.option(
    "--digests",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --push: record each pushed image's digest in this JSON file (for `pin`).",
)
@click.option("--dry-run", is_flag=True, help="Print the commands instead of running them.")
def build(registry: str, tag: str, push: bool, digests: Path | None, dry_run: bool) -> None:
    """Build (and push) every image with the names the pipeline components reference."""
    from cityseg.components.tracking import git_commit

    if digests is not None and not push:
        raise click.BadParameter("digests exist only for pushed images: add --push", param_hint="--digests")
    pushed = []
    for argv in build_commands(registry, tag, push, git_commit()):
        click.echo(" ".join(argv))
        if not dry_run:
            _run(argv)
            if argv[:2] == ["docker", "push"]:
                pushed.append(argv[2])
    if digests is not None and pushed:
        try:
            table = {reference: repo_digest(reference) for reference in pushed}
        except (ValueError, subprocess.CalledProcessError) as err:
            raise click.ClickException(f"cannot read a pushed image's digest: {err}") from err
        write_digests(digests, table)
        click.echo(f"recorded {len(table)} digests in {digests}")


@main.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--digests",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file written by `build --push --digests`.",
)
def pin(files: tuple[Path, ...], digests: Path) -> None:
    """Rewrite every pushed image's tag reference in FILES (e.g. pipeline.yaml) to its digest."""
    try:
        table = load_digests(digests)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    for path in files:
        text, count = pin_text(path.read_text(), table)
        if count == 0:
            raise click.ClickException(
                f"{path}: no image reference of {digests} in it; compiled for another tag?"
            )
        missing = unpinned(text, table)
        if missing:
            raise click.ClickException(f"{path}: no digest recorded for {', '.join(missing)}; left unchanged")
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        click.echo(f"{path}: pinned {count} image references by digest")


if __name__ == "__main__":
    main()
