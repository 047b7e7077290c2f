# The two commands a newcomer needs: `make run` and `make test`.
# `run` installs the runtime only; `test` adds the test tools. Both install the versions in
# constraints.txt (the ones the suite passed with); `make constraints` rewrites it from .venv.
# The install is a regular one, as on a site (no editable-install notices), redone when the
# code changes; `build/` is cleared first so a deleted module cannot linger in it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/example.toml
SOURCES := pyproject.toml constraints.txt $(shell find controller drivers -type f -not -path '*/__pycache__/*' 2>/dev/null)
PIP_INSTALL = rm -rf build && $(BIN)/pip install --quiet --constraint constraints.txt

.PHONY: run test bench constraints clean

$(BIN)/pip:
	@$(PYTHON) -m venv $(VENV) || { echo "make: cannot create $(VENV): install python3-venv (sudo apt install python3-venv)" >&2; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip

# One stamp per install, so `make test` after `make run` adds the test tools.
$(VENV)/.runtime: $(SOURCES) | $(BIN)/pip
	$(PIP_INSTALL) .
	touch $@

$(VENV)/.test: $(SOURCES) | $(BIN)/pip
	$(PIP_INSTALL) '.[test]'
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/evedge run --config $(CONFIG)

test: $(VENV)/.test
	$(BIN)/python -m pytest -q

# The benchmark (docs/performance.md): evedge against the ocpp library's asyncio ChargePoint and a
# bare trio-websocket echo, in one run. `make bench BENCH_ARGS=--quick` for a ~30 s run.
BENCH_ARGS ?=
bench: $(VENV)/.test
	$(BIN)/python -m bench.run $(BENCH_ARGS)

constraints: $(VENV)/.test
	$(BIN)/python -m tools.constraints > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) var config/var build dist *.egg-info
