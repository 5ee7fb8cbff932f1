# Entry points: `make demo` (quickstart + mini studies into outputs/, then the findings scorecard),
# `make study` (every notebook at the patient scale into outputs/study/, then its scorecard) and `make test`.
# Each first installs the system packages it lacks (.ci/system-deps: apt-get as root or with
# password-less sudo; otherwise it stops and prints the command to run).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# Where the executed notebooks go: outputs/, or $KDLIB_OUTPUTS when set (kdlib writes there too).
OUTPUTS   := $(or $(KDLIB_OUTPUTS),outputs)
PAPERMILL ?= $(VENV)/bin/papermill --cwd notebooks

.PHONY: demo study findings test test-fast install bench clean-outputs

$(STAMP): pyproject.toml
	test -x $(PY) || { PYTHON=$(PYTHON) .ci/system-deps venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@.ci/system-deps data
	@mkdir -p $(OUTPUTS)
	@for nb in $(NOTEBOOKS); do \
	  name=$$(basename $$nb); echo "== $$name"; \
	  $(PAPERMILL) $$nb $(OUTPUTS)/$$name -k python3 || exit 1; \
	done
	$(PY) -m kdlib.findings
	@echo "Executed notebooks and figures are in $(OUTPUTS)/; the scorecard is $(OUTPUTS)/findings.md and .html"

# The patient scale: the same notebooks with `-p preset patient` and three seeds (hours on a
# 2-core CPU). Each notebook's wall time goes to outputs/study/costs.txt; a rerun skips finished runs.
STUDY_PRESET ?= patient
STUDY_SEEDS  ?= [0, 1, 2]

study: $(STAMP)
	@.ci/system-deps data
	@mkdir -p $(OUTPUTS)/study
	@for nb in $(NOTEBOOKS); do \
	  name=$$(basename $$nb .ipynb); echo "== $$name (preset $(STUDY_PRESET))"; start=$$(date +%s); \
	  if grep -q '"seeds = ' $$nb; then \
	    $(PAPERMILL) $$nb $(OUTPUTS)/study/$$name.ipynb -k python3 -p preset $(STUDY_PRESET) \
	      -p output_dir study/$$name -p seeds "$(STUDY_SEEDS)" || exit 1; \
	  else \
	    $(PAPERMILL) $$nb $(OUTPUTS)/study/$$name.ipynb -k python3 -p preset $(STUDY_PRESET) \
	      -p output_dir study/$$name || exit 1; \
	  fi; \
	  echo "$$name $$(( $$(date +%s) - start )) s" >> $(OUTPUTS)/study/costs.txt; \
	done
	$(PY) -m kdlib.findings --preset $(STUDY_PRESET) --out $(OUTPUTS)/study
	$(PY) -m kdlib.findings
	@echo "Patient-scale notebooks, figures and findings.md/.html are in $(OUTPUTS)/study/ (costs: $(OUTPUTS)/study/costs.txt)"

findings: $(STAMP)
	$(PY) -m kdlib.findings

test: $(STAMP)
	@.ci/system-deps data chromium slurm
	$(PY) -m pytest -q

# Unit tests: nothing that trains, runs a notebook, drives a browser, needs Slurm or is marked slow (spawns
# Python or takes over a CPU second): about one CPU minute.
test-fast: $(STAMP)
	@.ci/system-deps data
	$(PY) -m pytest -q -m "not training and not browser and not notebook and not slow and not slurm"

bench: $(STAMP)
	$(PY) -m kdlib.bench

clean-outputs:
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
