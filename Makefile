# latent_jax: set-up, tests, demo. Every target builds the virtual environment it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp

.PHONY: install test test-isa test-slow lint format demo docs bench bench-gpu clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2 -q

# The numerically sensitive tests again as CPUs without AVX-512 (and without AVX) compute them.
ISAS ?= SSE4_2 AVX2
test-isa: $(STAMP)
	@for isa in $(ISAS); do \
		echo "XLA_FLAGS=--xla_cpu_max_isa=$$isa"; \
		XLA_FLAGS="--xla_cpu_max_isa=$$isa" $(BIN)/python -m pytest -m "numerics and not slow" -n 2 -q || exit 1; \
	done

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP)
	$(BIN)/latent-jax reduce --overwrite --out runs/reduce
	$(BIN)/latent-jax vae --preset cpu-demo --overwrite --out runs/vae-faces
	$(BIN)/latent-jax vae --preset mnist-demo --overwrite --out runs/vae-mnist
	@echo "PCA against the autoencoder (tutorial example 1): figures and metrics.json in runs/reduce/"
	@echo "Conv VAE on the 100 bundled LFW faces (tutorial example 2): samples.png, interpolation.png, traversal.png in runs/vae-faces/"
	@echo "Conv VAE on 5,000 MNIST digits at 14x14: samples.png and the generation score in runs/vae-mnist/metrics.json"

# The documentation site, into docs/_build/html: the notebook pages executed, warnings as errors.
DOCS_STAMP := $(VENV)/.docs-stamp
$(DOCS_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	rm -rf docs/_build docs/api/generated
	$(BIN)/python -m sphinx -W --keep-going -j 2 -q -b html docs docs/_build/html
	$(BIN)/python -m pytest -q -m slow -n 2 tests/test_code_blocks.py
	@echo "docs/_build/html/index.html"

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python benchmarks/bench_pca.py
	$(BIN)/python benchmarks/bench_train_step.py
	$(BIN)/python benchmarks/bench_example1.py
	$(BIN)/python benchmarks/bench_conv_vae.py --images 320
	$(BIN)/python benchmarks/bench_scaling.py
	$(BIN)/python benchmarks/bench_compile.py
	$(BIN)/python benchmarks/bench_time_to_result.py
	$(BIN)/python benchmarks/bench_vs_pythae.py
	$(BIN)/python benchmarks/bench_linear.py
	$(BIN)/python benchmarks/bench_vs_pyod.py --pca-timing

# The GPU suite: every GPU measurement in one command (at most 9 minutes: its --budget), into
# benchmarks/results/gpu_suite.json and .md. It installs JAX for CUDA 12 in the virtual
# environment; on a machine whose own Python has JAX for its GPU and no package index, run
# `PYTHONPATH=. python3 benchmarks/gpu_suite.py` instead.
bench-gpu: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench,cuda]"
	$(BIN)/python benchmarks/gpu_suite.py --out benchmarks/results/gpu_suite.json

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache docs/_build docs/api/generated docs/jupyter_execute
