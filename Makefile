# Everything a newcomer needs: `make demo` and `make test` create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench clean tools/groovy tools/gt nf-test

# Groovy 4 jars (from the npm package npm-groovy-lint) for the Nextflow syntax check in
# tests/test_nextflow.py; installed once into .tools/.
GROOVY_LINT_VERSION := 16.2.0
GROOVY_STAMP := .tools/.groovy-$(GROOVY_LINT_VERSION)
tools/groovy: $(GROOVY_STAMP)
$(GROOVY_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --prefix .tools --no-audit --no-fund --ignore-scripts --loglevel=error npm-groovy-lint@$(GROOVY_LINT_VERSION) && touch $@; \
	else echo "npm not found: the Groovy syntax check of the Nextflow files will be skipped"; fi

# genometools (`gt gff3validator`, the reference GFF3 checker) from the system packages:
# installed with apt-get when missing (as root, or through passwordless sudo); where it
# cannot be installed the GFF3 validation tests are skipped with a message saying so.
tools/gt:
	@if command -v gt >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "genometools (gt) missing and no apt-get here: install it (conda: bioconda::genometools-genometools) or the GFF3 validation tests are skipped"; \
	else \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
		if [ "$$SUDO" = none ]; then \
			echo "genometools (gt) missing and this user cannot run apt-get (not root, no passwordless sudo): the GFF3 validation tests are skipped"; \
		else \
			echo "installing genometools (gt) with apt-get"; \
			DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q genometools >/dev/null 2>&1 || \
			{ $$SUDO apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q genometools >/dev/null 2>&1; } || \
			echo "apt-get could not install genometools: the GFF3 validation tests are skipped"; \
		fi; \
	fi

venv: $(STAMP)

# constraints.txt pins the versions the test suite was last verified with, so that a
# clean clone installs the same stack; pyproject.toml keeps the looser ranges.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# A held-out seed: the demo model was trained on other seeds.
DEMO_SEED ?= 7
demo: $(STAMP)
	rm -rf demo_out
	$(VENV)/bin/genoseg simulate --seed $(DEMO_SEED) --out demo_out/genome
	$(VENV)/bin/genoseg annotate --fasta demo_out/genome/genome.fa --truth demo_out/genome/truth.gff3 \
		--truth-genes demo_out/genome/truth_genes.gff3 --outdir demo_out/results
	@echo "report: demo_out/results/segment_nt/report.html"

# nf-test first, so that pytest's summary is the run's closing line.
test: $(STAMP) tools/groovy tools/gt
	@$(MAKE) --no-print-directory nf-test
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The pipeline's nf-test suite, where Nextflow and nf-test are installed.
nf-test:
	@if command -v nextflow >/dev/null 2>&1 && command -v nf-test >/dev/null 2>&1; then \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" nf-test test --profile test; \
	else echo "nextflow/nf-test not on PATH: skipping the nf-test suite"; fi

bench: $(STAMP)
	$(PY) benchmarks/bench_predict.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
