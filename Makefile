# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo reproduce test venv clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Main job on the embedded defaults: data, the quick physics and memory models, evaluation.
demo: $(STAMP)
	PLUMECAST=$(BIN)/plumecast bash scripts/demo.sh

# All five variants of docs/results.md on the same data and budget, compared side by side.
reproduce: $(STAMP)
	PLUMECAST=$(BIN)/plumecast bash scripts/demo.sh --all

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out
