#!/usr/bin/env bash
# The Python base image made from Debian packages, for machines that cannot pull python:3.11-slim.
#
# mmdebstrap builds a bookworm root filesystem (Debian's python3 is 3.11, which the pins need) and
# `docker import` turns it into an image. The tag carries a key of everything that goes into it (this
# script: its package list and mmdebstrap arguments), so an image of the same key is reused, not
# rebuilt. Prints the image reference, for the base Dockerfiles' PYTHON_IMAGE build argument.
set -euo pipefail

DOCKER=${DOCKER:-docker}
REPOSITORY=${REPOSITORY:-cityseg/python-debian}
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates,passwd,libgomp1,libstdc++6
MIRRORS=(
    "deb http://deb.debian.org/debian $SUITE main"
    "deb http://deb.debian.org/debian $SUITE-updates main"
    "deb http://deb.debian.org/debian-security $SUITE-security main"
)
ARGS=(
    --variant=apt --include="$PACKAGES" --quiet
    # Documentation and translations have no use in a container.
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*'
)
# The image's settings: what python:3.11-slim sets and the Dockerfiles rely on.
CHANGES=(
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV LANG=C.UTF-8'
    --change 'CMD ["python3"]'
)

key=$(sha256sum "$0" | cut -c1-16)
reference="$REPOSITORY:$SUITE-$key"
if "$DOCKER" image inspect "$reference" >/dev/null 2>&1; then
    echo "$reference"
    exit 0
fi
command -v mmdebstrap >/dev/null || { echo "mmdebstrap is not installed (apt-get install mmdebstrap)" >&2; exit 1; }
echo "building $reference with mmdebstrap" >&2
mmdebstrap "${ARGS[@]}" "$SUITE" - "${MIRRORS[@]}" | "$DOCKER" import "${CHANGES[@]}" - "$reference" >&2
echo "$reference"
