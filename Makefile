# pixelseg developer commands. `make demo` and `make test` do all the set-up on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint train-camvid train-membrane clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/pixelseg demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check pixelseg tests

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

# Real training runs (long; not tests). Results are recorded in docs/results.md.
train-camvid: $(STAMP)
	$(BIN)/pixelseg train configs/camvid_unet_cpu.yaml
	$(BIN)/pixelseg eval runs/camvid_unet_cpu/best.pt --split val --out runs/camvid_unet_cpu/eval_val

train-membrane: $(STAMP)
	$(BIN)/pixelseg train configs/membrane_unet_cpu.yaml
	$(BIN)/pixelseg eval runs/membrane_unet_cpu/best.pt --split val --out runs/membrane_unet_cpu/eval_val

clean:
	rm -rf runs/demo .pytest_cache .ruff_cache
