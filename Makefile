# Everything runs from a local virtualenv that these targets create on demand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TESTNET_DIR ?= testnet

.PHONY: setup test testnet testnet-down sim chaos clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

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
