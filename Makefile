# The two commands of the README: `make demo` and `make test`. Both create .venv and install on first use.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
# The CPU build of torch lies on this machine kind's disk; installing it first keeps pip from fetching a CUDA build.
TORCH_SPEC ?= torch==2.13.0
PORT ?= 8050
PATIENTS ?= 2000

.PHONY: install demo test test-fast lint format bench chromium clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/dynairx demo --patients $(PATIENTS) --port $(PORT)

# Browser tests drive Debian's Chromium; never `playwright install` (no downloads on CI).
chromium:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: install chromium
	$(VENV)/bin/pytest

test-fast: install
	$(VENV)/bin/pytest -m "not e2e and not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf var test-artifacts .pytest_cache .ruff_cache
