"""Container images: the one place that names them, and `python -m cityseg.components.images build`.

Every KFP component references `image(step)`, and `make images` builds and pushes exactly those
names, so the compiled pipeline and the registry never disagree. A shared base image carries the
project and its CPU dependencies; `base-gpu` is the same Dockerfile with the CUDA TensorFlow extra,
which the train and evaluate images start from.
"""

import importlib.metadata
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
    ImageSpec("train", base="base-gpu"),
    ImageSpec("evaluate", base="base-gpu"),
    ImageSpec("push", base="base"),
    ImageSpec("serve", base="base"),
    ImageSpec("mlflow"),
)
BY_NAME = {spec.name: spec for spec in IMAGES}
# Pipeline step -> image; the source check runs in the synth image, which already has the storage code.
STEP_IMAGES = {
    "synth": "synth",
    "source": "synth",
    "remap": "remap",
    "shard": "shard",
    "train": "train",
    "evaluate": "evaluate",
    "push": "push",
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
        if spec.extras and commit:
            argv += ["--build-arg", f"GIT_COMMIT={commit}"]
        commands.append([*argv, str(IMAGES_DIR.parent)])
        if push:
            commands.append(["docker", "push", image(spec.name, registry, tag)])
    return commands


@click.group()
def main() -> None:
    """Build the cityseg container images."""


@main.command()
@click.option("--registry", default=DEFAULT_REGISTRY, show_default=True, help="Registry and namespace.")
@click.option("--tag", default=DEFAULT_TAG, show_default=True, help="Tag of every image.")
@click.option("--push/--no-push", default=False, help="Push each image after building it.")
@click.option("--dry-run", is_flag=True, help="Print the commands instead of running them.")
def build(registry: str, tag: str, push: bool, dry_run: bool) -> None:
    """Build (and push) every image with the names the pipeline components reference."""
    from cityseg.components.tracking import git_commit

    for argv in build_commands(registry, tag, push, git_commit()):
        click.echo(" ".join(argv))
        if not dry_run:
            try:
                subprocess.run(argv, check=True)
            except FileNotFoundError as err:
                raise click.ClickException(
                    "docker is not installed: `make images` needs a container engine"
                ) from err
            except subprocess.CalledProcessError as err:
                raise click.ClickException(
                    f"{' '.join(argv[:2])} failed with exit code {err.returncode}"
                ) from err


if __name__ == "__main__":
    main()
