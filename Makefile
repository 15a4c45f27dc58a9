# Every target sets the environment up first (idempotent): a fresh clone needs nothing else.
VENV ?= .venv
STAMP := $(VENV)/.dnahnet-installed
BIN := $(VENV)/bin

.PHONY: setup test test-slow lint demo bench clean

$(STAMP): pyproject.toml scripts/setup_env.sh
	VENV=$(VENV) bash scripts/setup_env.sh
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]  # 5: none selected

lint: $(STAMP)
	$(BIN)/ruff check .

demo: $(STAMP)
	$(BIN)/dnahnet demo --out demo_output

PIN := $(shell command -v taskset >/dev/null 2>&1 && echo taskset -c 0)

# docs/benchmarks.md's inference table: one pinned core, one thread, same-run ratios
bench: $(STAMP)
	OMP_NUM_THREADS=1 $(PIN) $(BIN)/python benchmarks/inference_speed.py --threads 1

clean:
	rm -rf $(VENV) demo_output .pytest_cache
