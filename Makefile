# cityseg: `make run` and `make test` each work as the first command on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
REGISTRY ?= ghcr.io/cityseg
TAG ?= $(shell sed -n 's/^version = //p' setup.cfg)
DIGESTS ?= images/digests.json
PYTEST_ARGS ?=
# Debian's docker CLI: it builds with BuildKit secrets without buildx (a newer CLI may shadow it on PATH).
DOCKER ?= /usr/bin/docker
# auto: python:3.11-slim when it can be pulled, else the same Python made from Debian packages.
PYTHON_IMAGE ?= auto
# `make images CPU_ONLY=1` leaves out the CUDA images; `make images PUSH=1` pushes and records digests.
IMAGE_FLAGS = $(if $(CPU_ONLY),--cpu-only) $(if $(PUSH),--push --digests $(DIGESTS))

.PHONY: setup browser docker run test e2e bench lint images clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[cpu,serve,dev,beam]"
	touch $(STAMP)

# Debian's Chromium drives the web-app tests; pip cannot download a browser here.
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }

# Debian's docker.io and mmdebstrap (for the Debian-made Python base); starts dockerd when none answers.
docker:
	@[ -x $(DOCKER) ] && command -v mmdebstrap >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends docker.io mmdebstrap >/dev/null; }
	@$(DOCKER) info >/dev/null 2>&1 || { mkdir -p work && echo "starting dockerd (log: work/dockerd.log)" && \
		{ $(SUDO) dockerd >work/dockerd.log 2>&1 & } && \
		for i in $$(seq 60); do $(DOCKER) info >/dev/null 2>&1 && break; sleep 1; done && $(DOCKER) info >/dev/null; }

run: setup
	$(BIN)/cityseg run

# The unit tests, then the pipeline end to end in its containers.
test: setup browser
	$(BIN)/pytest $(PYTEST_ARGS)
	$(MAKE) e2e

# The CPU images, then `cityseg run --runner docker` at small settings through push and deploy
# (docs/containers.md).
e2e: setup docker
	$(MAKE) images CPU_ONLY=1
	$(BIN)/python -m tests.e2e --docker $(DOCKER)

bench: setup
	$(BIN)/python -m tests.benchmarks

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint images/*/Dockerfile
	$(BIN)/pyright

# Builds every image under local tags. With PUSH=1 it pushes them and records each digest in $(DIGESTS);
# `python -m cityseg.components.container_images pin` then rewrites a compiled pipeline to those digests
# (docs/gke.md).
images: setup docker
	$(BIN)/python -m cityseg.components.container_images build --registry $(REGISTRY) --tag $(TAG) \
		--docker $(DOCKER) --python-image $(PYTHON_IMAGE) $(IMAGE_FLAGS)

clean:
	rm -rf $(VENV) work .pytest_cache
