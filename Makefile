# boltgate: `make run` serves the gateway; `make test` installs everything and runs the checks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev system-tools lint typecheck pytest bench bench-hedging clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

# torch first, pinned: the CPU build that lies on this machine's disk (any other pulls GBs).
# The dev install holds the plain one, so `make run` after `make test` installs nothing again.
$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,local]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/boltgate serve --host $(HOST) --port $(PORT)

# Real parts for the tests, from Debian when missing: redis-server, promtool (package prometheus),
# and the chromium the playground's browser tests drive (Playwright never downloads its own).
DEBIAN_TOOLS := redis-server:redis-server promtool:prometheus chromium:chromium
system-tools:
	@missing=""; for pair in $(DEBIAN_TOOLS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages for the tests:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing) >/dev/null; fi

lint: install-dev
	$(BIN)/ruff check .

typecheck: install-dev
	$(BIN)/mypy

# Two workers per core (pytest-xdist): the suite waits ~40% of its time (servers and workers starting,
# simulated vendor latency, leases running out): its CPU time (548 s, 2026-12-02) is about 60% of
# what two cores give over a quiet 2-worker run (464 s of wall time). A module's tests stay on one
# worker, so a module-scoped server or browser starts once; modules go out in the order they are
# collected, not fewest-tests-last (xdist's default), which sent the long one-test modules (the GPU
# check, schemathesis, state restore) out last, behind everything else. Every test's ports, temp
# dirs and redis-servers are its own. PYTEST_WORKERS=auto: one per core, as before.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) * 2 )))
pytest: install-dev system-tools
	$(BIN)/pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder

test: lint typecheck pytest

bench: install-dev
	$(BIN)/python bench/overhead.py

bench-hedging: install-dev
	$(BIN)/python bench/hedging.py

# var/data (client keys and spend of `make run`) is kept: remove it by hand to start from nothing.
clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache var/images
