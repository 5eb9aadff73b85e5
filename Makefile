# The two commands: `make demo` and `make test`. Both create .venv and install everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh scripts/install_postgres.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install.sh
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/scanflow demo

test: $(STAMP)
	$(VENV)/bin/ruff check scanflow tests bench
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check scanflow tests bench

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
