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

clean:
	rm -rf $(VENV) var config/var
