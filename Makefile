# famsim — the two commands are `make demo` and `make test`; both set up .venv first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

.PHONY: install demo test lint bench clean browser notebooks

# Find a Python >= 3.12 that really runs (a pyenv shim can exist on PATH and still fail).
define find_python
for c in python3.13 python3.12 python3 $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
  if command -v "$$c" >/dev/null 2>&1 && "$$c" -c 'import sys, venv; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then \
    echo "$$c"; exit 0; fi; \
done; exit 1
endef

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then \
	  rm -rf $(VENV); \
	  PYBIN=$$($(find_python)) || { echo "famsim: no working Python >= 3.12 found on PATH or under ~/.pyenv/versions; install one (e.g. 'pyenv install 3.12') and retry" >&2; exit 1; }; \
	  echo "famsim: creating $(VENV) with $$PYBIN ($$($$PYBIN --version))"; \
	  $$PYBIN -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dask,ema]'
	$(PY) -m sim.app.assets
	$(PY) -m sim.studies.warm scenarios/*.toml
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/famsim demo

# Debian's chromium for the browser test (Playwright cannot download browsers here)
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "famsim: installing Debian's chromium for the browser test"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
	      || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	      || echo "famsim: could not install chromium; the browser test will fail in CI" >&2; \
	  else \
	    echo "famsim: the browser test needs Debian's chromium ($(CHROMIUM)): apt-get install chromium" >&2; \
	  fi; \
	fi

test: $(STAMP) browser
	$(PY) -m pytest -n 2 --dist loadfile -p no:cacheprovider

# JupyterLab on the teaching notebooks (installed on first use; not needed by the tests)
notebooks: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,dask,ema,notebooks]'
	cd notebooks && ../$(VENV)/bin/jupyter lab

lint: $(STAMP)
	$(VENV)/bin/ruff check sim tests
	$(VENV)/bin/ruff format --check sim tests

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,dask,ema,bench]'
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
