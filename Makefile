# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# the CPU build of torch, pinned and installed first: an unpinned torch pulls gigabytes of CUDA packages
TORCH  ?= torch==2.13.0

.PHONY: demo test test-slow install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# the main job on the built-in benchmark: data, tokenizer, target + retain models, unlearning, evaluation, report
demo: $(STAMP)
	$(BIN)/lethe run

# two test processes with one torch thread each (two 2-thread processes on 2 cores slow down 20-70x)
test: $(STAMP)
	OMP_NUM_THREADS=1 LETHE_NO_PROGRESS=1 $(BIN)/python -m pytest -q -n 2 -p no:cacheprovider

test-slow: $(STAMP)
	LETHE_NO_PROGRESS=1 $(BIN)/python -m pytest -q -m slow -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/bench.py

clean:
	rm -rf $(VENV) .lethe-cache runs bench/results
