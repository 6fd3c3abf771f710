# meshinv-lite: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PROFILE ?= quick
DEVICE  ?= cpu
# Extra pip arguments for torch, e.g. a CPU-only wheel index on a laptop without a GPU.
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.installed

.PHONY: help install data demo test test-fast lab bench clean

help:
	@echo "make demo     set up .venv, build the data, run every notebook at PROFILE=$(PROFILE) into outputs/"
	@echo "make test     the full test suite (unit tests + notebook runs)"
	@echo "make lab      open JupyterLab on notebooks/ with the venv's kernel"
	@echo "make bench    speed figures (bench/*.py)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip >/dev/null
	$(BIN)/python -m pip install "torch==2.13.0" $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install -e ".[test,notebooks]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (meshinv-lite)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

data: install
	@if [ -f data_scripts/make_synthbirds.py ]; then \
	  $(BIN)/python data_scripts/make_synthbirds.py --profile $(PROFILE) --out data/synthbirds_$(PROFILE); \
	else echo "(no dataset script yet)"; fi

demo: data
	$(BIN)/python -m meshinv_lite.pipeline --profile $(PROFILE) --device $(DEVICE) --data-dir data

test: install
	$(BIN)/python -m pytest -q -ra

test-fast: install
	$(BIN)/python -m pytest -q -m "not notebook and not slow and not browser"

lab: install
	$(BIN)/jupyter lab notebooks/

bench: install
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf outputs .pytest_cache
