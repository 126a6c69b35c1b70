"""The container images: one Dockerfile each, hadolint-clean, built under the names the components use."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cityseg.components import container_images

HADOLINT = Path(sys.executable).with_name("hadolint")
DOCKERFILES = sorted(container_images.IMAGES_DIR.glob("*/Dockerfile"))


def test_every_image_and_step_has_a_dockerfile_and_no_dockerfile_is_orphaned():
    assert {spec.dockerfile for spec in container_images.IMAGES} == set(DOCKERFILES)
    for step, name in container_images.STEP_IMAGES.items():
        assert container_images.BY_NAME[name].dockerfile.is_file(), step


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_hadolint_is_clean(dockerfile):
    result = subprocess.run([str(HADOLINT), str(dockerfile)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_images_run_as_a_non_root_user_and_pin_their_base(dockerfile):
    text = dockerfile.read_text()
    assert re.findall(r"^USER (\S+)", text, re.M)[-1] == "1000:1000"
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    if base.startswith("${"):
        default = re.search(r"^ARG BASE_IMAGE=(\S+)", text, re.M).group(1)
        assert default.endswith(f":{container_images.DEFAULT_TAG}")
    else:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base


def test_train_and_evaluate_start_from_the_cuda_base():
    for step in ("train", "evaluate"):
        assert container_images.BY_NAME[step].base == "base-gpu"
    assert container_images.BY_NAME["base-gpu"].extras == "gpu"
    setup = (container_images.IMAGES_DIR.parent / "setup.cfg").read_text()
    assert re.search(r"^gpu =\n\s+tensorflow\[and-cuda\]==2\.21\.0$", setup, re.M)


def test_build_pushes_the_references_the_components_use():
    commands = container_images.build_commands("europe-docker.pkg.dev/p/r", "v2", push=True, commit="abc123")
    pushed = [argv[2] for argv in commands if argv[:2] == ["docker", "push"]]
    assert pushed == [
        container_images.image(spec.name, "europe-docker.pkg.dev/p/r", "v2")
        for spec in container_images.IMAGES
    ]
    for step in container_images.STEP_IMAGES:
        assert container_images.image(step, "europe-docker.pkg.dev/p/r", "v2") in pushed
    builds = {argv[argv.index("-t") + 1]: argv for argv in commands if argv[1] == "build"}
    train = builds["europe-docker.pkg.dev/p/r/cityseg-train:v2"]
    assert "BASE_IMAGE=europe-docker.pkg.dev/p/r/cityseg-base-gpu:v2" in train
    gpu_base = builds["europe-docker.pkg.dev/p/r/cityseg-base-gpu:v2"]
    assert [arg for arg in gpu_base if "=" in arg] == ["EXTRAS=gpu", "GIT_COMMIT=abc123"]
    assert gpu_base[gpu_base.index("-f") + 1] == str(container_images.IMAGES_DIR / "base" / "Dockerfile")


def test_make_images_calls_the_build_command_and_records_the_digests():
    makefile = (container_images.IMAGES_DIR.parent / "Makefile").read_text()
    command = "python -m cityseg.components.container_images build --registry $(REGISTRY) --tag $(TAG)"
    assert f"{command} --push --digests $(DIGESTS)" in makefile
    assert "DIGESTS ?= images/digests.json" in makefile


def test_the_gpu_serving_image_is_the_serve_dockerfile_on_the_cuda_base():
    commands = container_images.build_commands("r.io/p", "v3", push=False, commit="abc")
    builds = {argv[argv.index("-t") + 1]: argv for argv in commands}
    gpu = builds["r.io/p/cityseg-serve-gpu:v3"]
    assert gpu[gpu.index("-f") + 1] == str(container_images.IMAGES_DIR / "serve" / "Dockerfile")
    assert [arg for arg in gpu if "=" in arg] == ["BASE_IMAGE=r.io/p/cityseg-base-gpu:v3", "EXTRAS=gpu"]
    cpu = builds["r.io/p/cityseg-serve:v3"]
    assert [arg for arg in cpu if "=" in arg] == ["BASE_IMAGE=r.io/p/cityseg-base:v3"]
    dockerfile = (container_images.IMAGES_DIR / "serve" / "Dockerfile").read_text()
    assert "ARG EXTRAS=cpu" in dockerfile and '"/opt/cityseg[${EXTRAS},serve]"' in dockerfile
    assert container_images.image("deploy", "r.io/p", "v3") == "r.io/p/cityseg-push:v3"
