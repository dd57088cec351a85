# Everything runs from a local virtualenv that these targets create on demand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TESTNET_DIR ?= testnet

.PHONY: setup test testnet testnet-down sim clean

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

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
