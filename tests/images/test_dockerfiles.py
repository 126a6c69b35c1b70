"""The container images: one Dockerfile each, hadolint-clean, built under the names the components use."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cityseg.components import container_images, image_base
from cityseg.components.registry import TASKS

HADOLINT = Path(sys.executable).with_name("hadolint")
DOCKERFILES = sorted(container_images.IMAGES_DIR.glob("*/Dockerfile"))


def test_every_image_and_step_has_a_dockerfile_and_no_dockerfile_is_orphaned():
    assert {spec.dockerfile for spec in container_images.IMAGES} == set(DOCKERFILES)
    for name, (_, task) in TASKS.items():
        assert container_images.BY_NAME[task.image].dockerfile.is_file(), name


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_hadolint_is_clean(dockerfile):
    result = subprocess.run([str(HADOLINT), str(dockerfile)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_images_run_as_a_non_root_user_and_pin_their_base(dockerfile):
    text = dockerfile.read_text()
    assert re.findall(r"^USER (\S+)", text, re.M)[-1] == "1000:1000"
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    argument = {"${BASE_IMAGE}": "BASE_IMAGE", "${PYTHON_IMAGE}": "PYTHON_IMAGE"}[base]
    default = re.search(rf"^ARG {argument}=(\S+)", text, re.M).group(1)
    if argument == "BASE_IMAGE":
        assert default.endswith(f":{container_images.DEFAULT_TAG}")
    else:
        assert default == image_base.OFFICIAL_PYTHON
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", default), default


def test_pip_gets_the_ca_bundle_as_a_build_secret_never_as_a_layer():
    for name in ("base", "mlflow"):
        text = (container_images.IMAGES_DIR / name / "Dockerfile").read_text()
        installs = [block for block in text.split("\nRUN ") if "pip install" in block]
        assert installs, name
        for block in installs:
            assert block.startswith("--mount=type=secret,id=ca "), name
            assert "export PIP_CERT=/run/secrets/ca" in block, name
        assert text.count("PIP_CERT") == sum(block.count("PIP_CERT") for block in installs), name


def test_train_and_evaluate_start_from_the_cuda_base():
    for step in ("train", "evaluate"):
        assert container_images.BY_NAME[step].base == "base-gpu"
    assert container_images.BY_NAME["base-gpu"].extras == "gpu"
    setup = (container_images.IMAGES_DIR.parent / "setup.cfg").read_text()
    assert re.search(r"^gpu =\n\s+tensorflow\[and-cuda\]==2\.21\.0$", setup, re.M)


def _builds(commands: list[list[str]]) -> dict[str, list[str]]:
    return {argv[argv.index("-t") + 1]: argv for argv in commands if argv[1] == "build"}


def _build_args(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--build-arg"]


def test_build_pushes_the_references_the_components_use():
    commands = container_images.build_commands("europe-docker.pkg.dev/p/r", "v2", push=True, commit="abc123")
    pushed = [argv[2] for argv in commands if argv[:2] == ["docker", "push"]]
    assert pushed == [
        container_images.image(spec.name, "europe-docker.pkg.dev/p/r", "v2")
        for spec in container_images.IMAGES
    ]
    for name in TASKS:
        assert container_images.image(name, "europe-docker.pkg.dev/p/r", "v2") in pushed
    builds = _builds(commands)
    train = builds["europe-docker.pkg.dev/p/r/cityseg-train:v2"]
    assert _build_args(train) == ["BASE_IMAGE=europe-docker.pkg.dev/p/r/cityseg-base-gpu:v2"]
    gpu_base = builds["europe-docker.pkg.dev/p/r/cityseg-base-gpu:v2"]
    python = f"PYTHON_IMAGE={image_base.OFFICIAL_PYTHON}"
    assert _build_args(gpu_base) == [python, "EXTRAS=gpu", "GIT_COMMIT=abc123"]
    assert gpu_base[gpu_base.index("-f") + 1] == str(container_images.IMAGES_DIR / "base" / "Dockerfile")


def test_cpu_only_builds_train_and_evaluate_on_the_cpu_base_and_leaves_the_cuda_images_out():
    options = container_images.BuildOptions("cityseg/python-debian:bookworm-k", cpu_only=True)
    builds = _builds(container_images.build_commands("r.io/p", "v3", push=False, options=options))
    kept = ("base", "synth", "remap", "shard", "validate", "train", "evaluate", "push", "serve", "mlflow")
    assert sorted(reference.split("/")[-1] for reference in builds) == sorted(f"cityseg-{n}:v3" for n in kept)
    for step in ("train", "evaluate"):
        assert _build_args(builds[f"r.io/p/cityseg-{step}:v3"]) == ["BASE_IMAGE=r.io/p/cityseg-base:v3"]
    assert _build_args(builds["r.io/p/cityseg-mlflow:v3"]) == [
        "PYTHON_IMAGE=cityseg/python-debian:bookworm-k"
    ]
    with pytest.raises(ValueError, match="never pushed"):
        container_images.build_commands("r.io/p", "v3", push=True, options=options)


def test_every_build_uses_the_host_network_and_passes_the_ca_bundle_as_a_secret(tmp_path):
    options = container_images.BuildOptions(ca_bundle=tmp_path / "ca.pem", docker="/usr/bin/docker")
    for argv in container_images.build_commands("r.io/p", "v3", push=False, options=options):
        assert argv[:2] == ["/usr/bin/docker", "build"]
        assert argv[argv.index("--network") + 1] == "host"
        assert argv[argv.index("--secret") + 1] == f"id=ca,src={tmp_path / 'ca.pem'}"


def test_make_images_builds_locally_and_pushes_only_when_asked():
    makefile = (container_images.IMAGES_DIR.parent / "Makefile").read_text()
    command = "python -m cityseg.components.container_images build --registry $(REGISTRY) --tag $(TAG)"
    assert command in makefile
    assert "IMAGE_FLAGS = $(if $(CPU_ONLY),--cpu-only) $(if $(PUSH),--push --digests $(DIGESTS))" in makefile
    assert "DIGESTS ?= images/digests.json" in makefile


def test_the_gpu_serving_image_is_the_serve_dockerfile_on_the_cuda_base():
    builds = _builds(container_images.build_commands("r.io/p", "v3", push=False, commit="abc"))
    gpu = builds["r.io/p/cityseg-serve-gpu:v3"]
    assert gpu[gpu.index("-f") + 1] == str(container_images.IMAGES_DIR / "serve" / "Dockerfile")
    assert _build_args(gpu) == ["BASE_IMAGE=r.io/p/cityseg-base-gpu:v3"]
    assert _build_args(builds["r.io/p/cityseg-serve:v3"]) == ["BASE_IMAGE=r.io/p/cityseg-base:v3"]
    # The bases install the serve extra once; the step images add no pip layer of their own.
    base = (container_images.IMAGES_DIR / "base" / "Dockerfile").read_text()
    assert '"${EXTRAS}" serve > /src/requirements.txt' in base
    for spec in container_images.IMAGES:
        if spec.base is not None:
            assert "RUN " not in spec.dockerfile.read_text(), spec.name
    assert container_images.image("deploy", "r.io/p", "v3") == "r.io/p/cityseg-push:v3"


def test_only_the_images_that_start_from_python_alone_build_beside_the_others():
    commands = container_images.build_commands("r.io/p", "v3", push=False)
    beside = container_images._beside(commands, "r.io/p", "v3")
    assert [argv[argv.index("-t") + 1] for argv in beside] == ["r.io/p/cityseg-mlflow:v3"]
