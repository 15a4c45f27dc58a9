# Every target sets the environment up first (idempotent): a fresh clone needs nothing else.
VENV ?= .venv
STAMP := $(VENV)/.dnahnet-installed
BIN := $(VENV)/bin

.PHONY: setup test test-slow lint demo bench clean gpu-check

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
	$(BIN)/dnahnet demo --out demo_output --overwrite

PIN := $(shell command -v taskset >/dev/null 2>&1 && echo taskset -c 0)

# docs/benchmarks.md's inference table: one pinned core, one thread, same-run ratios
bench: $(STAMP)
	OMP_NUM_THREADS=1 $(PIN) $(BIN)/python benchmarks/inference_speed.py --threads 1

# On a GPU machine (docs/gpu.md): no .venv there; python3 and the carried .whl/ wheels.
# Report: $(GPU_CHECK_DIR)/gpu-check.md ($OUT on the device machine); GPU_CHECK_ARGS=--dry-run on a CPU.
GPU_CHECK_DIR ?= $(or $(OUT),gpu_check_output)
gpu-check:
	bash scripts/gpu_check.sh $(GPU_CHECK_ARGS) $(GPU_CHECK_DIR)

clean:
	rm -rf $(VENV) demo_output .pytest_cache
