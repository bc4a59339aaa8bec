# The two commands of egolego: `make demo` and `make test`. Both create .venv when it is missing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test bench lint clean-venv

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (or run: make PY=/path/to/python3.11)"; exit 1; }
	$(PY) -m venv $(VENV)

# torch first and pinned: this machine serves the 2.13.0 CPU wheel; an unpinned torch would pull CUDA.
$(STAMP): $(BIN)/python pyproject.toml requirements-app.txt
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -r requirements-app.txt
	$(BIN)/pip install --quiet --no-deps gradio==6.31.0 gradio-client==2.7.2 hf-gradio==0.4.1
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/egolego demo

# Two pytest-xdist workers, one torch thread each (tests/conftest.py), each test file whole on one worker (its
# session fixtures built once): 1.3x faster than one process on 2 cores. TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean-venv:
	rm -rf $(VENV)
