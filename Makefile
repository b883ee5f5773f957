# disalign_mm -- see README.md and docs/install.md. Every target builds the
# environment it runs in first (tools/setup_env.sh: idempotent, seconds when
# the venv is up to date). The tested stacks (requirements/stack-*.txt):
#   .venv/          the maintained OpenMMLab fork (onedl-*), torch 2.14.1: the
#                   default (install, demo, test, lint, wheel, benchmark)
#   .venv-oldest/   upstream OpenMMLab, torch 2.1.2: the oldest supported
#                   stack (install-oldest, test-oldest)
# CI (.ci/run) builds and tests both (make test-all). Upstream OpenMMLab built
# for torch 2.14.1 (install-upstream, test-upstream, .venv-upstream/) is kept
# for comparisons and not tested by CI: docs/install.md says why.
PY := .venv/bin/python
PY_OLDEST := .venv-oldest/bin/python
PY_UPSTREAM := .venv-upstream/bin/python
PYTEST_ARGS ?=

.PHONY: install install-oldest install-upstream demo test test-oldest test-upstream test-all \
	gpu-check lint wheel benchmark benchmark-vit docs clean

install:
	bash tools/setup_env.sh fork

install-oldest:
	bash tools/setup_env.sh oldest

install-upstream:
	bash tools/setup_env.sh newest

demo: install
	$(PY) tools/demo.py

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

# the whole suite on the oldest supported stack (upstream, torch 2.1.2, numpy 1.26)
test-oldest: install-oldest
	$(PY_OLDEST) -m pytest tests $(PYTEST_ARGS)

# upstream OpenMMLab on torch 2.14.1: not a CI stack (docs/install.md)
test-upstream: install-upstream
	$(PY_UPSTREAM) -m pytest tests $(PYTEST_ARGS)

# the two CI stacks, both built before either suite runs (what .ci/run does)
test-all: install install-oldest
	$(PY) -m pytest tests $(PYTEST_ARGS)
	$(PY_OLDEST) -m pytest tests $(PYTEST_ARGS)

# on a machine with one CUDA GPU: stage-2 steps (float32, AMP float16/bfloat16)
# of the three hosts, select_second_stage --device cuda, a one-process NCCL
# launch; without CUDA a dry run of the CPU parts (tools/gpu_check.py)
gpu-check: install
	$(PY) tools/gpu_check.py

# DisAlign vs cRT / LWS / tau-norm / logit adjustment, the paper's ablations,
# 3 seeds on Fashion-MNIST-LT (about 11 minutes on 2 cores); rewrites
# tools/benchmark/results/ and the README's results section
benchmark: install
	$(PY) tools/benchmark/effectiveness.py --out-dir tools/benchmark/results --readme README.md

# the same comparison from the tiny ViT stage 1 (configs/fashion_mnist_lt/vit-tiny-*): one
# seed after another, each with both cores; rewrites tools/benchmark/results-vit/ (the tables
# docs/benchmark.md shows) and the README's tiny-ViT table
benchmark-vit: install
	$(PY) tools/benchmark/effectiveness.py --stage1 vit --out-dir tools/benchmark/results-vit \
		--jobs 1 --threads 2 --readme README.md

lint: install
	$(PY) -m flake8 disalign_mm tools tests configs setup.py
	$(PY) -m isort --check-only --diff disalign_mm tools tests setup.py

# the documentation (docs/, Sphinx + MyST) into docs/_build/html; every
# warning fails it, a broken link or a cited repository path that does not
# exist included (docs/_ext/repo_paths.py); needs requirements/docs.txt
docs: install
	$(PY) -m sphinx -E -W --keep-going -b html -d docs/_build/doctrees docs docs/_build/html

wheel: install
	$(PY) -m pip wheel --no-deps --no-build-isolation -w dist .

clean:
	rm -rf build dist *.egg-info disalign_mm/.mim .pytest_cache
