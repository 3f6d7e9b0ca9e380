# Two commands a person needs, each creating what it lacks (.venv, the CPU torch build):
#   make test        the test suite
#   make reproduce   seqbench reproduce (the quick and quick_cost presets) into results/local/ (git-ignored), then
#                    seqbench compare results results/local (its verdicts beside the committed ones)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build on disk; on a GPU machine: make install TORCH=torch (keeps a CUDA build).
TORCH ?= torch==2.13.0
EXTRAS ?= test,report,data,ray
STAMP := $(VENV)/.installed
# Where make reproduce writes: a folder of its own, so the committed results/ stay as they are.
# make reproduce LOCAL=results refreshes the committed records (what the developers do).
LOCAL ?= results/local

.PHONY: install test test-slow lint reproduce smoke verify

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

reproduce: $(STAMP)
	$(BIN)/seqbench reproduce --results $(LOCAL)
	$(BIN)/seqbench compare results $(LOCAL)

smoke: $(STAMP)
	$(BIN)/seqbench run smoke

verify: $(STAMP)
	$(BIN)/seqbench verify --arch all --dtype float64
