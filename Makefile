# Two commands set up a fresh machine: `make run` and `make test` (each runs `setup` first).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export MPLBACKEND := Agg

.PHONY: setup run test bench clean

setup: $(STAMP)

# Re-install only when the project's dependencies change.
$(STAMP): pyproject.toml
	@bash scripts/setup.sh
	@touch $(STAMP)

run: setup
	$(VENV)/bin/drivestack run

test: setup
	$(PY) -m pytest

bench: setup
	$(VENV)/bin/drivestack bench sim

clean:
	rm -rf $(VENV) runs .pytest_cache
