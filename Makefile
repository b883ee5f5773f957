# disalign_mm -- see README.md. Every target builds the environment first
# (tools/setup_env.sh: idempotent, seconds when .venv/ is up to date).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test lint wheel benchmark clean

install:
	bash tools/setup_env.sh

demo: install
	$(PY) tools/demo.py

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

# DisAlign vs cRT / LWS / tau-norm / logit adjustment, the paper's ablations,
# 3 seeds on Fashion-MNIST-LT (about 11 minutes on 2 cores); rewrites
# tools/benchmark/results/ and the README's results section
benchmark: install
	$(PY) tools/benchmark/effectiveness.py --out-dir tools/benchmark/results --readme README.md

lint: install
	$(PY) -m flake8 disalign_mm tools tests configs setup.py
	$(PY) -m isort --check-only --diff disalign_mm tools tests setup.py

wheel: install
	$(PY) -m pip wheel --no-deps --no-build-isolation -w dist .

clean:
	rm -rf build dist *.egg-info disalign_mm/.mim .pytest_cache
