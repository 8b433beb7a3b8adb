# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Main job on the embedded defaults: generate (or reuse) the paper-room data and plot it.
demo: $(STAMP)
	$(BIN)/plumecast generate paper-room --out data/paper-room.nc
	$(BIN)/plumecast info data/paper-room.nc
	$(BIN)/plumecast plot data/paper-room.nc --scenario static-00 --out out/paper-room
	$(BIN)/plumecast plot data/paper-room.nc --scenario moving-00 --out out/paper-room

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out
