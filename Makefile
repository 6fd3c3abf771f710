# meshinv-lite: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PROFILE ?= quick
DEVICE  ?= cpu
# birds (SynthBirds, outputs/<profile>/) or cars (SynthCars, outputs/cars_<profile>/)
CATEGORY ?= birds
DATASET := $(if $(filter cars,$(CATEGORY)),synthcars,synthbirds)
# Extra pip arguments for torch, e.g. a CPU-only wheel index on a laptop without a GPU.
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.installed

.PHONY: help install data demo test test-fast lab bench clean

help:
	@echo "make demo     set up .venv, build the data, run every notebook at PROFILE=$(PROFILE) into outputs/"
	@echo "              (CATEGORY=cars: SynthCars instead of SynthBirds, into outputs/cars_$(PROFILE)/)"
	@echo "make test     the full test suite (unit tests + notebook runs)"
	@echo "make lab      open JupyterLab on notebooks/ with the venv's kernel"
	@echo "make bench    speed figures (the quality studies in bench/ run on their own)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

INSTALL_LOG := $(VENV)/install.log
# JupyterLab settings of this venv: no news / update pop-ups over the first notebook
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing into $(VENV) (torch==2.13.0 and the package; details in $(INSTALL_LOG)) ..."
	@$(BIN)/python -m pip install -q --upgrade pip >$(INSTALL_LOG) 2>&1 || { tail -20 $(INSTALL_LOG); exit 1; }
	@$(BIN)/python -m pip install -q "torch==2.13.0" $(TORCH_PIP_ARGS) >>$(INSTALL_LOG) 2>&1 || { tail -20 $(INSTALL_LOG); exit 1; }
	@$(BIN)/python -m pip install -q -e ".[test,notebooks]" >>$(INSTALL_LOG) 2>&1 || { tail -20 $(INSTALL_LOG); exit 1; }
	@$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (meshinv-lite)" >>$(INSTALL_LOG) 2>&1
	@mkdir -p $(dir $(LAB_OVERRIDES))
	@echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $(LAB_OVERRIDES)
	@touch $(STAMP)
	@echo "installed."

install: $(STAMP)

data: install
	@$(BIN)/python data_scripts/make_synthbirds.py --category $(CATEGORY) --profile $(PROFILE) --out data/$(DATASET)_$(PROFILE) --quiet

demo: data
	MESHINV_ROOT=$(CURDIR) $(BIN)/python -m meshinv_lite.pipeline --profile $(PROFILE) --device $(DEVICE) --data-dir data --category $(CATEGORY)

test: install
	$(BIN)/python -m pytest -q -ra

test-fast: install
	$(BIN)/python -m pytest -q -m "not notebook and not slow and not browser"

# As root (Docker, many cloud notebooks) JupyterLab refuses to start without --allow-root.
ALLOW_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

lab: install
	MESHINV_ROOT=$(CURDIR) $(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/

# The speed figures (minutes). The quality studies take hours and run on their own:
# bench/loss_ablation.py (~2.5 h), mask_loss_ablation.py, unseen_species.py, prior_schedule.py, camera_estimation.py.
BENCH_SPEED := render synthbirds pseudo_gt pretrain invert profile_inversion
bench: install
	@for f in $(BENCH_SPEED); do echo "== bench/$$f.py"; $(BIN)/python bench/$$f.py || exit 1; done

clean:
	rm -rf outputs .pytest_cache
