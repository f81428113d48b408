# Two commands for a new user: `make run` (set up + default simulation) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
OVERRIDES ?=

.PHONY: setup run serve test test-fast test-deploy lint sweep clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first, so that torch>=2.6 in pyproject is already met.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# The default run: DP-SGD at epsilon 2 on 5k MNIST digits; only AUREON's rows and summary
# (OVERRIDES="verbose=true" shows Flower's, Ray's and the libraries' logs too).
run: setup
	@$(BIN)/python -m simulations.run $(OVERRIDES)

# Serve a finished run's model: `make serve RUN=outputs/<date>/<time>` (OVERRIDES="serving.port=9000").
serve: setup
	$(BIN)/python -m simulations.serve run_dir=$(RUN) $(OVERRIDES)

sweep: setup
	$(BIN)/python -m simulations.run -m privacy.target_epsilon=0.5,1,2,4 strategy=fedavg,fedprox $(OVERRIDES)

test: setup
	$(BIN)/python -m pytest -q -m "not deployment"

test-deploy: setup
	$(BIN)/python -m pytest -q -m deployment

LINT_PATHS := aureon server clients simulations hydra_plugins

lint: setup
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy --explicit-package-bases $(LINT_PATHS)

test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration"

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
