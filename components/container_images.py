"""Container images: the one place that names them, and `python -m cityseg.components.container_images build`.

Every KFP component references `image(task)`, and `make images` builds (and with PUSH=1 pushes)
exactly those names, so the compiled pipeline and the registry never disagree. A shared base image
carries the project and all its heavy dependencies; `base-gpu` is the same Dockerfile with the CUDA
TensorFlow extra, which the train and evaluate images start from. `--cpu-only` leaves the CUDA
images out and builds train and evaluate on the CPU base, for `cityseg run --runner docker` on a
machine without a GPU; such images are never pushed.

Pinning by digest (`image_digests`): `build --push --digests FILE` records the registry digest of
every pushed image, and `pin FILE...` rewrites a compiled pipeline's tag references to them.
"""

import importlib.metadata
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
from kfp import dsl

from cityseg.components import image_base, image_digests
from cityseg.components.registry import TASKS

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

    @property
    def cuda(self) -> bool:
        """Whether the image holds CUDA TensorFlow (itself or through its base)."""
        return self.extras == "gpu" or self.base == "base-gpu"


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
    ImageSpec("serve-gpu", base="base-gpu", folder="serve"),
    ImageSpec("mlflow"),
)
BY_NAME = {spec.name: spec for spec in IMAGES}


def image(name: str, registry: str = DEFAULT_REGISTRY, tag: str = DEFAULT_TAG) -> str:
    """The full reference of image `name`, or of the image pipeline task `name` runs in (`TASKS`).

    For example ghcr.io/cityseg/cityseg-train:0.1.0.
    """
    folder = TASKS[name][1].image if name in TASKS else name
    if folder not in BY_NAME:
        raise ValueError(f"unknown image {name!r}; known: {', '.join(sorted(BY_NAME))}")
    return f"{registry.rstrip('/')}/cityseg-{folder}:{tag}"


def component(func: Callable):
    """`@dsl.component` on the image that the table of steps gives the task named like `func`.

    The images install kfp themselves, so nothing is pip-installed when a task starts.
    """
    return dsl.component(func, base_image=image(func.__name__), install_kfp_package=False)


def rebase(task_component, registry: str, tag: str):
    """The same component on another registry/tag (for `cityseg compile --registry ... --tag ...`)."""
    if registry == DEFAULT_REGISTRY and tag == DEFAULT_TAG:
        return task_component
    func = task_component.python_func
    return dsl.component(func, base_image=image(func.__name__, registry, tag), install_kfp_package=False)


@dataclass(frozen=True)
class BuildOptions:
    """How `docker build` runs: which Python the bases start from, with which CA bundle and docker,
    and the key of the sources the bases are labelled with (`image_base.source_key`).

    `cpu_only` leaves out the CUDA bases and serve-gpu, and builds train and evaluate on the CPU base.
    """

    python_image: str = image_base.OFFICIAL_PYTHON
    cpu_only: bool = False
    ca_bundle: Path | None = None
    docker: str = "docker"
    source_key: str | None = None


def _build_argv(spec: ImageSpec, registry: str, tag: str, options: BuildOptions) -> list[str]:
    argv = [options.docker, "build", "--network", "host", "-f", str(spec.dockerfile)]
    argv += ["-t", image(spec.name, registry, tag)]
    if options.ca_bundle is not None:
        argv += ["--secret", f"id=ca,src={options.ca_bundle}"]
    if spec.base is None:
        argv += ["--build-arg", f"PYTHON_IMAGE={options.python_image}"]
    else:
        base = "base" if options.cpu_only else spec.base
        argv += ["--build-arg", f"BASE_IMAGE={image(base, registry, tag)}"]
    return argv


def build_commands(
    registry: str, tag: str, push: bool, commit: str | None = None, options: BuildOptions = BuildOptions()
) -> list[list[str]]:
    """The `docker build` (and `docker push`) command lines for every image, bases first.

    `commit` is baked into the bases as CITYSEG_GIT_COMMIT, which MLflow runs are tagged with.

    Raises:
        ValueError: `push` with `options.cpu_only`: a CPU train image must not take the CUDA one's name.
    """
    if push and options.cpu_only:
        raise ValueError("CPU-only images are for local runs: they are never pushed")
    commands = []
    for spec in IMAGES:
        if options.cpu_only and spec.cuda and spec.name not in ("train", "evaluate"):
            continue
        argv = _build_argv(spec, registry, tag, options)
        if spec.extras:
            argv += ["--build-arg", f"EXTRAS={spec.extras}"]
        if spec.base is None and spec.extras and commit:
            argv += ["--build-arg", f"GIT_COMMIT={commit}"]
        if spec.base is None and spec.extras and options.source_key:
            argv += ["--build-arg", f"SOURCE_KEY={options.source_key}"]
        commands.append([*argv, str(IMAGES_DIR.parent)])
        if push:
            commands.append([options.docker, "push", image(spec.name, registry, tag)])
    return commands


@click.group()
def main() -> None:
    """Build the cityseg container images."""


# The `ca` secret and the pip cache mounts are BuildKit features.
BUILD_ENV = {"DOCKER_BUILDKIT": "1"}
NO_DOCKER = "docker is not installed: `make images` needs a container engine"


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True, env={**os.environ, **BUILD_ENV})
    except FileNotFoundError as err:
        raise click.ClickException(NO_DOCKER) from err
    except subprocess.CalledProcessError as err:
        raise click.ClickException(f"{' '.join(argv[:2])} failed with exit code {err.returncode}") from err


def _beside(commands: list[list[str]], registry: str, tag: str) -> list[list[str]]:
    """The builds of images that start from Python alone (mlflow): they can run beside the others."""
    standalone = {image(spec.name, registry, tag) for spec in IMAGES if spec.base is None and not spec.extras}
    return [argv for argv in commands if argv[1] == "build" and argv[argv.index("-t") + 1] in standalone]


def _start(argv: list[str]) -> tuple[subprocess.Popen, Path]:
    """`argv` started in the background, its output in a log file: (process, log)."""
    fd, log = tempfile.mkstemp(prefix="cityseg-build-", suffix=".log")
    with os.fdopen(fd, "w") as out:
        try:
            return subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **BUILD_ENV}
            ), Path(log)
        except FileNotFoundError as err:
            raise click.ClickException(NO_DOCKER) from err


def _finish(started: list[tuple[list[str], subprocess.Popen, Path]]) -> None:
    for argv, process, log in started:
        reference = argv[argv.index("-t") + 1]
        if process.wait() != 0:
            click.echo(log.read_text(errors="replace")[-4000:])
            raise click.ClickException(
                f"building {reference} failed with exit code {process.returncode} ({log})"
            )
        click.echo(f"built {reference} (log: {log})")


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
@click.option(
    "--cpu-only", is_flag=True, help="Leave out the CUDA images; train and evaluate on the CPU base."
)
@click.option(
    "--python-image",
    default="auto",
    show_default=True,
    help="Image the bases start from; auto: python:3.11-slim if docker can pull it, else one made "
    "from Debian packages (images/base-debian/build.sh).",
)
@click.option("--docker", default="docker", show_default=True, help="The docker CLI (one with BuildKit).")
def build(registry: str, tag: str, push: bool, digests: Path | None, dry_run: bool, **how) -> None:
    """Build (and push) every image with the names the pipeline components reference."""
    from cityseg.components.tracking import git_commit

    if digests is not None and not push:
        raise click.BadParameter("digests exist only for pushed images: add --push", param_hint="--digests")
    if push and how["cpu_only"]:
        raise click.BadParameter("CPU-only images are for local runs, never pushed", param_hint="--cpu-only")
    try:
        ca_bundle = image_base.host_ca_bundle()
        choice = how["python_image"]
        python_image = choice if dry_run else image_base.python_image(choice, how["docker"])
    except (ValueError, subprocess.CalledProcessError) as err:
        raise click.ClickException(f"cannot prepare the build: {err}") from err
    source_key = image_base.source_key(IMAGES_DIR.parent / "cityseg")
    options = BuildOptions(python_image, how["cpu_only"], ca_bundle, how["docker"], source_key)
    commands = build_commands(registry, tag, push, git_commit(), options)
    # Pushes keep their order after their builds; a local build runs the standalone ones beside.
    beside = [] if push or dry_run else _beside(commands, registry, tag)
    started = [(argv, *_start(argv)) for argv in beside]
    pushed = []
    for argv in commands:
        click.echo(("(beside) " if argv in beside else "") + " ".join(argv))
        if not dry_run and argv not in beside:
            _run(argv)
            if argv[1] == "push":
                pushed.append(argv[2])
    _finish(started)
    if digests is not None and pushed:
        try:
            table = {ref: image_digests.repo_digest(ref, how["docker"]) for ref in pushed}
        except (ValueError, subprocess.CalledProcessError) as err:
            raise click.ClickException(f"cannot read a pushed image's digest: {err}") from err
        image_digests.write_digests(digests, table)
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
        table = image_digests.load_digests(digests)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    for path in files:
        text, count = image_digests.pin_text(path.read_text(), table)
        if count == 0:
            raise click.ClickException(
                f"{path}: no image reference of {digests} in it; compiled for another tag?"
            )
        missing = image_digests.unpinned(text, table)
        if missing:
            raise click.ClickException(f"{path}: no digest recorded for {', '.join(missing)}; left unchanged")
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        click.echo(f"{path}: pinned {count} image references by digest")


if __name__ == "__main__":
    main()
