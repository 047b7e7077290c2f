# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/example.toml

.PHONY: run test bench clean

$(BIN)/evedge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/evedge
	$(BIN)/evedge run --config $(CONFIG)

test: $(BIN)/evedge
	$(BIN)/python -m pytest -q

# The benchmark (docs/performance.md): evedge against the ocpp library's asyncio ChargePoint and a
# bare trio-websocket echo, in one run. `make bench BENCH_ARGS=--quick` for a ~30 s run.
BENCH_ARGS ?=
bench: $(BIN)/evedge
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var config/var
