# Everything runs from a local virtualenv that these targets create on demand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TESTNET_DIR ?= testnet

.PHONY: setup test tools promtool chromium testnet testnet-down sim chaos clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP) tools
	$(BIN)/python -m pytest -q

# Tools some tests need beyond Python packages; fetching them never fails the build
# (the tests that need a missing tool are skipped and say what to install).
tools: promtool chromium

# promtool checks configs/prometheus (tests/cli/test_operator_kit.py). Debian's
# `prometheus` package carries it: the package is downloaded and promtool alone is
# unpacked into the venv (no service installed, no root needed once apt's lists exist).
promtool: $(STAMP)
	@if command -v promtool >/dev/null 2>&1 || [ -x $(BIN)/promtool ]; then exit 0; fi; \
	tmp=$$(mktemp -d); \
	fetch() { (cd "$$tmp" && apt-get download -q prometheus) >/dev/null 2>&1; }; \
	if { fetch || { [ "$$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && fetch; }; } \
	   && dpkg-deb -x "$$tmp"/prometheus_*.deb "$$tmp/x" && cp "$$tmp/x/usr/bin/promtool" $(BIN)/promtool; then \
	  echo "promtool: unpacked from Debian's prometheus package into $(BIN)/promtool"; \
	else \
	  echo "promtool: not available, so the configs/prometheus checks will be skipped;" \
	       "install Debian's prometheus package (apt-get install prometheus) or put promtool on PATH"; \
	fi; \
	rm -rf "$$tmp"

# The explorer's browser test (tests/explorer) drives Debian's chromium headless through
# Playwright's executable_path (no browser is downloaded). Installed when make runs as
# root; the CJK font makes the screenshots' Chinese labels legible.
chromium: $(STAMP)
	@if command -v chromium >/dev/null 2>&1 || [ -x "$$YNCHAIN_CHROMIUM" ]; then exit 0; fi; \
	install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei >/dev/null 2>&1; }; \
	if [ "$$(id -u)" = 0 ] && { install || { apt-get update -qq >/dev/null 2>&1 && install; }; }; then \
	  echo "chromium: installed Debian's chromium package"; \
	else \
	  echo "chromium: not available, so the explorer's browser test (tests/explorer) will be skipped;" \
	       "install Debian's chromium package as root (apt-get install chromium)" \
	       "or set YNCHAIN_CHROMIUM to a Chromium binary"; \
	fi

testnet: $(STAMP)
	$(BIN)/python -m cli.demo --dir $(TESTNET_DIR)

testnet-down: $(STAMP)
	$(BIN)/ynchain testnet down --dir $(TESTNET_DIR)

sim: $(STAMP)
	$(BIN)/python -m consensus.sim --seeds 2000

# A seeded fault campaign against a fresh local testnet; CHAOS_MINUTES (default 5) of
# faults, CHAOS_SEED replays a run. Prints one JSON summary; exits 1 if a check failed.
chaos: $(STAMP)
	$(BIN)/python -m cli.chaos

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
