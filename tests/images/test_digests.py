"""Pinning images by digest: `build --push --digests` records them, `pin` rewrites a compiled pipeline.

No container engine runs here, so a stand-in `docker` on PATH records its argv and answers
`docker image inspect` with RepoDigests the way Docker does after a push (one digest per repository
the image was pushed to).
"""

import hashlib
import json
import os
import sys
import textwrap

import pytest
from click.testing import CliRunner

from cityseg.components import container_images, image_digests

REGISTRY, TAG = "europe-docker.pkg.dev/p/r", "v2"
STAND_IN = """\
    import hashlib, json, os, sys
    with open(os.environ["DOCKER_LOG"], "a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\\n")
    if sys.argv[1:3] == ["image", "inspect"]:
        reference = sys.argv[-1]
        repository = reference.rsplit(":", 1)[0]
        digest = hashlib.sha256(reference.encode()).hexdigest()
        print(json.dumps(["mirror.io/other@sha256:" + "0" * 64, f"{repository}@sha256:{digest}"]))
"""


def _digest(reference: str) -> str:
    return f"{reference.rsplit(':', 1)[0]}@sha256:{hashlib.sha256(reference.encode()).hexdigest()}"


@pytest.fixture
def docker(tmp_path, monkeypatch):
    """A stand-in `docker` first on PATH; yields the function that reads the argv it was called with."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(STAND_IN))
    script.chmod(0o755)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_LOG", str(log))
    return lambda: [json.loads(line) for line in log.read_text().splitlines()]


def test_build_push_records_the_digest_of_every_pushed_image(tmp_path, docker):
    digests = tmp_path / "digests.json"
    args = ["build", "--registry", REGISTRY, "--tag", TAG, "--push", "--digests", str(digests)]
    result = CliRunner().invoke(container_images.main, args)
    assert result.exit_code == 0, result.output
    pushed = [container_images.image(spec.name, REGISTRY, TAG) for spec in container_images.IMAGES]
    assert [argv[1] for argv in docker() if argv[0] == "push"] == pushed
    assert json.loads(digests.read_text()) == {reference: _digest(reference) for reference in pushed}
    assert f"recorded {len(pushed)} digests in {digests}" in result.output


def test_digests_need_push():
    result = CliRunner().invoke(container_images.main, ["build", "--digests", "d.json", "--dry-run"])
    assert result.exit_code == 2
    assert "digests exist only for pushed images: add --push" in result.output


def test_pin_rewrites_whole_references_only(tmp_path):
    serve, train = f"{REGISTRY}/cityseg-serve:{TAG}", f"{REGISTRY}/cityseg-train:{TAG}"
    table = {serve: _digest(serve), train: _digest(train)}
    text = f"image: {serve}\nimage: '{train}'\nother: {serve}-rc1\nx: {REGISTRY}/cityseg-serve:{TAG}0\n"
    pinned, count = image_digests.pin_text(text, table)
    assert count == 2
    assert pinned == (
        f"image: {_digest(serve)}\nimage: '{_digest(train)}'\nother: {serve}-rc1\nx: {serve}0\n"
    )
    assert image_digests.unpinned(pinned + f"image: {REGISTRY}/cityseg-push:{TAG}\n", table) == [
        f"{REGISTRY}/cityseg-push:{TAG}"
    ]


def test_a_compiled_pipeline_is_pinned_in_full_or_left_unchanged(tmp_path, docker):
    from cityseg.cli import main

    package = tmp_path / "pipeline.yaml"
    result = CliRunner().invoke(
        main, ["compile", "--out", str(package), "--registry", REGISTRY, "--tag", TAG]
    )
    assert result.exit_code == 0, result.output
    compiled = package.read_text()
    used = image_digests.unpinned(compiled, {f"{REGISTRY}/cityseg-base:{TAG}": ""})
    assert f"{REGISTRY}/cityseg-train:{TAG}" in used
    digests = tmp_path / "digests.json"
    image_digests.write_digests(digests, {reference: _digest(reference) for reference in used[1:]})
    refused = CliRunner().invoke(container_images.main, ["pin", str(package), "--digests", str(digests)])
    assert refused.exit_code == 1
    assert f"no digest recorded for {used[0]}; left unchanged" in refused.output
    assert package.read_text() == compiled
    image_digests.write_digests(digests, {used[0]: _digest(used[0])})
    result = CliRunner().invoke(container_images.main, ["pin", str(package), "--digests", str(digests)])
    assert result.exit_code == 0, result.output
    pinned = package.read_text()
    assert image_digests.unpinned(pinned, json.loads(digests.read_text())) == []
    assert pinned.count("@sha256:") == compiled.count(f":{TAG}")
    for reference in used:
        assert _digest(reference) in pinned


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"r/cityseg-a:1": "r/cityseg-a:1"}, "is not a repository@sha256:<64 hex> reference"),
        ({"r/cityseg-a:1": "q/cityseg-a@sha256:" + "a" * 64}, "is of another repository"),
        (["r/cityseg-a:1"], "expected a JSON object of image references"),
    ],
)
def test_bad_digest_files_are_refused_naming_the_entry(tmp_path, table, message):
    path = tmp_path / "digests.json"
    path.write_text(json.dumps(table))
    with pytest.raises(ValueError, match=message) as err:
        image_digests.load_digests(path)
    assert str(path) in str(err.value)
