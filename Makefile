# vidssm: `make test` and `make demo` work on a fresh machine (they create .venv on first use).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test demo lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# pytest exit 5 means "no tests collected": report it and fail rather than pass silently.
test: setup
	VIDSSM_PYTHON=$(PY) bash tools/install_test_deps.sh
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

demo: setup
	$(PY) -m vidssm.cli demo

bench: setup
	$(PY) tools/bench_scan.py

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
