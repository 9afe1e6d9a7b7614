# The two commands of README.md, and the steps behind them. Everything runs inside .venv,
# which `make setup` builds from scratch with only a Python 3.10+ interpreter present.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# pip prints one warning per package for each empty local index folder: keep real errors only.
PIPQ   := 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
# torch==2.13.0 first: a plain `torch` requirement could otherwise pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: setup run test test-nbs test-py export clean-nbs readme html docs bench gpu-check

$(VENV)/.installed: setup.py settings.ini pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip $(PIPQ)
	$(BIN)/python -m pip install -q "$(TORCH)" $(PIPQ)
	$(BIN)/python -m pip install -q -e ".[dev]" $(PIPQ)
	$(BIN)/python -c "import torch, lmlab, nbdev; print('lmlab', lmlab.__version__, '| torch', torch.__version__)"
	$(BIN)/python -m pip check $(PIPQ)
	touch $@

setup: $(VENV)/.installed  ## Build the virtual environment (once; again when settings.ini changes)

run: setup  ## The main job: Experiment 1 headless in its quick profile
	$(BIN)/python scripts/run_experiment.py nbs/experiments/01_experiment1.ipynb --mode quick --runs runs

test: setup test-nbs test-py  ## Every notebook under nbdev_test, then pytest tests/

test-nbs: setup
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing  # one thread each: two notebooks share two cores

# two test processes, one thread each (two cores); -rs: say why each skipped test was skipped
test-py: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests -q -rs -n 2 --dist load

export: setup  ## Notebooks -> lmlab/ (run before every commit, with clean-nbs)
	$(BIN)/nbdev_export

clean-nbs: setup
	$(BIN)/nbdev_clean

readme: setup  ## README.md from index.ipynb, offline (no quarto needed)
	$(BIN)/python scripts/docs.py readme

html: setup  ## The docs pages as HTML under _site/, offline (no quarto needed)
	$(BIN)/python scripts/docs.py html

docs: setup  ## The full quarto site under _docs/ (needs quarto installed)
	$(BIN)/nbdev_docs

bench: setup  ## Benchmarks, lmlab beside a plain baseline; results in bench/results/
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/tokenization.py
	$(BIN)/python bench/sweep.py

gpu-check: setup  ## On a GPU machine: GPU tests, benchmarks, a real sweep and lmlab-eval on CUDA, at most 8 minutes
	$(BIN)/python scripts/gpu_check.py
