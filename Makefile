# Two commands for a newcomer: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fast bench figures clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,dask,onnx]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m accelsim run workloads/digits_cnn.yaml --out out/demo

lint: $(STAMP)
	$(BIN)/ruff check accelsim faults optimizer workloads tests bench tools
	$(BIN)/ruff format --check accelsim faults optimizer workloads tests bench tools

test: $(STAMP) lint
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python -m accelsim bench

# every README figure from its command (over an hour on 2 cores); rewrites the generated
# README blocks, keeps each command's output in out/figures/
figures: $(STAMP)
	$(BIN)/python -m bench.figures

clean:
	rm -rf $(VENV) out .pytest_cache
