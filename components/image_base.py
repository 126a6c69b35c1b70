"""What an image build takes from the host: the Python image to start from, pip's CA bundle, the sources.

The bases start from the official `python:3.11-slim` when docker can pull it. Where no registry can
be reached, `images/base-debian/build.sh` makes the same Python from Debian packages (mmdebstrap,
then `docker import`), cached under a key of its inputs. Behind a TLS-intercepting proxy pip needs
the host's CA bundle: the builds get it as a BuildKit secret, so no image layer holds it.

KFP ships each component's function from the host while the package comes from the image, so the
bases carry a key of the package's sources (`SOURCE_LABEL`): a run in the images can tell that they
were built from other sources than the checkout's.
"""

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

OFFICIAL_PYTHON = "python:3.11.7-slim-bookworm"
DEBIAN_BASE_SCRIPT = Path(__file__).resolve().parent.parent / "images" / "base-debian" / "build.sh"
# How pip and requests are told which CA bundle to trust, in the order pip itself reads them.
CA_SETTINGS = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The files the wheel takes from the package (setup.cfg: the modules and the package data).
PACKAGE_SUFFIXES = (".py", ".html", ".css", ".js", ".json")
SOURCE_LABEL = "io.cityseg.source-key"
# A registry that drops packets instead of refusing would otherwise hold the build for many minutes.
PULL_TIMEOUT_S = 120


def _pip_config_cert() -> str:
    argv = [sys.executable, "-m", "pip", "config", "get", "global.cert"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def host_ca_bundle(environ: Mapping[str, str] = os.environ) -> Path:
    """The CA bundle that pip on this host trusts: its environment, its config, the system's, certifi's.

    Raises:
        ValueError: a setting names a file that does not exist, naming the setting.
    """
    settings = [(name, environ.get(name, "")) for name in CA_SETTINGS]
    settings.append(("pip config global.cert", _pip_config_cert()))
    for name, value in settings:
        if value:
            if not Path(value).is_file():
                raise ValueError(f"{name}={value}: no such CA bundle file")
            return Path(value)
    if SYSTEM_BUNDLE.is_file():
        return SYSTEM_BUNDLE
    import certifi

    return Path(certifi.where())


def _succeeds(argv: list[str], timeout_s: float | None = None) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, check=False, timeout=timeout_s).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def python_image(choice: str, docker: str = "docker") -> str:
    """The Python image the bases start from: `choice`, or with "auto" the official one if docker has or
    can pull it, else the Debian-made one (built once per key).

    Raises:
        subprocess.CalledProcessError: the Debian-made base could not be built.
    """
    if choice != "auto":
        return choice
    if _succeeds([docker, "image", "inspect", OFFICIAL_PYTHON]) or _succeeds(
        [docker, "pull", OFFICIAL_PYTHON], PULL_TIMEOUT_S
    ):
        return OFFICIAL_PYTHON
    log.warning("cannot pull %s: the bases start from Python made from Debian packages", OFFICIAL_PYTHON)
    env = {**os.environ, "DOCKER": docker}
    built = subprocess.run([str(DEBIAN_BASE_SCRIPT)], env=env, check=True, stdout=subprocess.PIPE, text=True)
    return built.stdout.strip().splitlines()[-1]


def source_key(package: Path) -> str:
    """A hash of the files that the wheel takes from `package` (symlinked folders followed)."""
    files = []
    for folder, subfolders, names in os.walk(package, followlinks=True):
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        files += [Path(folder, name) for name in names if name.endswith(PACKAGE_SUFFIXES)]
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda path: path.relative_to(package).as_posix()):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
