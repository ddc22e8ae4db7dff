# Two commands: `make demo` (end to end on configs/quick.yaml) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned in the same pip command as the project so a CPU-only machine gets the local CPU build.
TORCH := torch==2.13.0

.PHONY: demo test install install-dev lint typecheck clean wheels

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH) -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH) -e ".[dev]"

demo: install
	$(BIN)/harmonic-nas run configs/quick.yaml

lint: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install-dev
	$(BIN)/mypy

test: install-dev lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

# Every dependency but torch as wheels in ./wheels, for a GPU machine without a package registry
# (benchmarks/gpu_check.sh installs them from there). Run it with the GPU machine's Python version.
wheels: $(BIN)/python
	$(BIN)/python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith('torch')))" > requirements-wheels.txt
	$(BIN)/pip download --quiet --only-binary=:all: --dest wheels -r requirements-wheels.txt
	mv requirements-wheels.txt wheels/requirements.txt

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
