# The two commands: `make demo` and `make test`. Both create .venv and install everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint bench clean k8s-sim test-base-image

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh scripts/install_postgres.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install.sh
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/scanflow demo

test: $(STAMP) k8s-sim test-base-image
	$(VENV)/bin/ruff check scanflow tests bench scripts
	$(VENV)/bin/ruff format --check scanflow tests bench scripts
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 2  # tests of one shared resource stay in one worker (tests/conftest.py)

lint: $(STAMP)
	$(VENV)/bin/ruff check scanflow tests bench scripts
	$(VENV)/bin/ruff format --check scanflow tests bench scripts
	$(VENV)/bin/mypy

# Kubernetes control plane binaries for tests/k8s (cached outside the repo; seconds when built).
k8s-sim:
	scripts/k8s-sim build

# The Debian base image of the image-build tests (debootstrap, cached in ~/.cache/scanflow/images;
# seconds when built).
test-base-image: $(STAMP)
	$(PY) -c "from tests.build.support import base_tarball; print(base_tarball())"

bench: $(STAMP)
	bash bench/run_all.sh

clean:
	rm -rf $(VENV) .pytest_cache
