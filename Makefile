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

.PHONY: setup browser run test bench lint images clean

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

run: setup
	$(BIN)/cityseg run

test: setup browser
	$(BIN)/pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m tests.benchmarks

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint images/*/Dockerfile

# Records each pushed image's digest in $(DIGESTS); `python -m cityseg.components.container_images pin` then
# rewrites a compiled pipeline to those digests (README, "Run on GKE").
images:
	$(BIN)/python -m cityseg.components.container_images build --registry $(REGISTRY) --tag $(TAG) --push --digests $(DIGESTS)

clean:
	rm -rf $(VENV) work .pytest_cache
