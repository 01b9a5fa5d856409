# Everything a newcomer needs: `make demo` and `make test` create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# A held-out seed: the demo model was trained on other seeds.
DEMO_SEED ?= 7
demo: $(STAMP)
	rm -rf demo_out
	$(VENV)/bin/genoseg simulate --seed $(DEMO_SEED) --out demo_out/genome
	$(VENV)/bin/genoseg annotate --fasta demo_out/genome/genome.fa --truth demo_out/genome/truth.gff3 --outdir demo_out/results
	@echo "report: demo_out/results/segment_nt/report.html"

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench_predict.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
