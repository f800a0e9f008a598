# The README's commands. Each target creates .venv from zero when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1

.PHONY: setup quickstart test test-slow lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

quickstart: setup  ## train + evaluate the default inverter (sized for 20 minutes on 2 CPU cores)
	$(PY) experiments/train_inverter.py experiment=quickstart

test: setup  ## the fast suite: tiny models and data, in-process
	$(PY) -m pytest -q

test-slow: setup  ## the second tier: notebooks, torchrun, Hydra subprocesses, the packaged LM
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup  ## throughput + quick-start quality, as JSON
	$(PY) experiments/bench_inverter.py

clean:
	rm -rf outputs multirun
