# pixelseg developer commands. `make demo` and `make test` do all the set-up on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-slow test-browser lint bench bench-crf compare-peers classical-vs-deep load-check train-camvid \
	train-membrane train-default train-portrait train-applications train-zoo ablation unseen-camvid bench-cutout clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/pixelseg demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check pixelseg tests scripts

# One pytest worker per core (pytest-xdist; tests/conftest.py gives each worker one thread): about half the
# serial time, since many tests wait on the commands they start.
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n auto

# Every architecture overfits a tiny batch (minutes on 2 cores; not in the default suite).
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The page in headless Chromium: installs Debian's chromium and the playwright package, then runs the browser test
# (the screenshot lands in test-artifacts/cutout_page.png).
test-browser: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python -m pip install --quiet playwright
	$(BIN)/python -m pytest -q -m browser tests/test_browser.py

# Benchmarks and comparisons (not tests); their results are in docs/ with these commands.
bench-crf: $(STAMP)
	$(BIN)/python scripts/bench_crf.py --model camvid --images 10

# docs/performance.md: inference backends against smp, class-map agreement, scaling, metrics, training.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(BIN)/python scripts/bench_inference.py --sections peers,roofline,agreement,mixed,window,folder --repeats 10 --images 20
	$(BIN)/python scripts/bench_inference.py --sections scaling --repeats 10
	$(BIN)/python scripts/bench_metrics.py
	$(BIN)/python scripts/bench_training.py
	$(BIN)/python scripts/bench_training.py --sections allocator --models unet,fcdensenet56 --steps 3
	$(BIN)/python scripts/bench_training.py --sections allocator --models upernet --steps 2
	$(BIN)/python scripts/bench_training.py --sections fc6 --steps 1 --size 176,240
	$(BIN)/python scripts/bench_training.py --sections layout --float32-only --steps 3 --models unet,segformer,deeplabv3plus,pspnet,fcdensenet56,upernet
	$(BIN)/python scripts/bench_training.py --sections fusion_conv --batch 2 --steps 2

compare-peers: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(BIN)/python scripts/compare_peers.py --size 512,512 --repeats 10

classical-vs-deep: $(STAMP)
	$(BIN)/python scripts/classical_vs_deep.py membrane --models runs/membrane_unet_fullres_cpu/model \
		runs/membrane_unet_cpu/model --crf-option smoothness_weight=0.5 --crf-option appearance_weight=1 \
		--crf-option appearance_sxy=10 --crf-option appearance_srgb=10
	$(BIN)/python scripts/classical_vs_deep.py camvid --models camvid runs/camvid_unet_cpu/model

load-check: $(STAMP)
	$(BIN)/python scripts/load_check.py --clients 4 --seconds 30

# Real training runs (long; not tests). Results are recorded in docs/results.md.
train-camvid: $(STAMP)
	$(BIN)/pixelseg train configs/camvid_unet_cpu.yaml
	$(BIN)/pixelseg eval runs/camvid_unet_cpu/best.pt --split val --out runs/camvid_unet_cpu/eval_val

train-membrane: $(STAMP)
	$(BIN)/pixelseg train configs/membrane_unet_cpu.yaml
	$(BIN)/pixelseg eval runs/membrane_unet_cpu/best.pt --split val --out runs/membrane_unet_cpu/eval_val

train-default: $(STAMP)
	bash scripts/train_default.sh

train-portrait: $(STAMP)
	bash scripts/train_portrait.sh

# docs/applications.md: the recipes for retina, roads, weeds, faces and fashion, scored on their validation splits
train-applications: $(STAMP)
	bash scripts/train_applications.sh
	$(BIN)/python scripts/applications_table.py

train-zoo: $(STAMP)
	bash scripts/train_zoo.sh

ablation: $(STAMP)
	bash scripts/ablation_camvid.sh

# docs/models/camvid.md's ablations and docs/model_zoo.md's unseen-sequence column (about 2.5 h on 2 cores)
unseen-camvid: $(STAMP)
	bash scripts/unseen_camvid.sh
	$(BIN)/python scripts/unseen_table.py

# docs/models/portrait.md: one-click cutout latency per stage, and the picture of cutouts
bench-cutout: $(STAMP)
	$(BIN)/python scripts/bench_cutout.py --repeats 10
	$(BIN)/python scripts/portrait_examples.py --out docs/img/portrait_cutouts.png

clean:
	rm -rf runs/demo .pytest_cache .ruff_cache test-artifacts
