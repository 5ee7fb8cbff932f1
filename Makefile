# Two entry points: `make demo` (quickstart + mini studies into outputs/) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: demo test install bench clean-outputs

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@mkdir -p outputs
	@for nb in $(NOTEBOOKS); do \
	  name=$$(basename $$nb); echo "== $$name"; \
	  $(VENV)/bin/papermill --cwd notebooks $$nb outputs/$$name -k python3 || exit 1; \
	done
	@echo "Executed notebooks and figures are in outputs/"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m kdlib.bench

clean-outputs:
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
