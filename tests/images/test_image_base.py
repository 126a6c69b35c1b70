"""What a build takes from the host: the key of the package's sources, and pip's CA bundle."""

import shutil

import pytest

from cityseg.components import container_images, image_base


@pytest.fixture
def layouts(tmp_path):
    """The same package twice: with its step folders as symlinks (git) and as real files (a wheel)."""
    linked, copied = tmp_path / "git", tmp_path / "wheel"
    for root in (linked, copied):
        (root / "cityseg").mkdir(parents=True)
        (root / "cityseg" / "__init__.py").write_text('"""cityseg"""\n')
    (linked / "components" / "train").mkdir(parents=True)
    (linked / "components" / "train" / "core.py").write_text("EPOCHS = 1\n")
    (linked / "components" / "serve.html").write_text("<p>\n")
    (linked / "cityseg" / "components").symlink_to("../components")
    shutil.copytree(linked / "components", copied / "cityseg" / "components")
    return linked / "cityseg", copied / "cityseg"


def test_the_source_key_is_the_same_for_symlinks_and_real_files(layouts):
    linked, copied = layouts
    assert image_base.source_key(linked) == image_base.source_key(copied)


def test_the_source_key_follows_every_packaged_file_and_nothing_else(layouts):
    _, copied = layouts
    before = image_base.source_key(copied)
    (copied / "components" / "__pycache__").mkdir()
    (copied / "components" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"\0")
    (copied / "components" / "notes.txt").write_text("not packaged\n")
    assert image_base.source_key(copied) == before
    (copied / "components" / "train" / "core.py").write_text("EPOCHS = 2\n")
    assert image_base.source_key(copied) != before
    (copied / "components" / "train" / "core.py").write_text("EPOCHS = 1\n")
    (copied / "components" / "serve.html").rename(copied / "components" / "index.html")
    assert image_base.source_key(copied) != before


def test_the_bases_carry_the_source_key():
    options = container_images.BuildOptions(source_key="0123abcd")
    for argv in container_images.build_commands("r.io/p", "v3", push=False, options=options):
        reference = argv[argv.index("-t") + 1]
        is_base = reference.split("/")[-1].split(":")[0] in ("cityseg-base", "cityseg-base-gpu")
        assert ("SOURCE_KEY=0123abcd" in argv) == is_base, reference


@pytest.mark.parametrize("setting", image_base.CA_SETTINGS)
def test_a_ca_setting_that_names_no_file_is_named(tmp_path, setting):
    with pytest.raises(ValueError, match=f"{setting}={tmp_path / 'none.pem'}: no such CA bundle file"):
        image_base.host_ca_bundle({setting: str(tmp_path / "none.pem")})


def test_the_ca_bundle_is_the_one_pip_is_told_to_use(tmp_path):
    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert image_base.host_ca_bundle({"REQUESTS_CA_BUNDLE": str(bundle)}) == bundle
    assert image_base.host_ca_bundle({"PIP_CERT": str(bundle), "SSL_CERT_FILE": "/nowhere"}) == bundle
