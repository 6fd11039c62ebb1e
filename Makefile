# Thin wrappers around the project's entry points; all logic lives in Python.
# Variables: MODEL (registry name), CKPT (checkpoint), BOARD, ONNX, ARGS (extra CLI arguments),
# TRAIN_CONFIG (YAML options of `make train`).

PY      := .venv/bin/python
MODEL   ?= bnext_nano_hw
OUT     ?= build
ARGS    ?=
TRAIN_CONFIG ?= configs/train/default.yaml
PYTEST  := $(PY) -m pytest

.PHONY: help install test test-all demo metrics export train estimate build-bitstream verify \
	all clean package deploy

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

install:  ## create .venv with the pinned offline stack (idempotent)
	scripts/install.sh

test: install  ## the default test tier (no slow, Vivado or board tests)
	$(PYTEST) -m "not slow and not vivado and not board" $(ARGS)

test-all: install  ## every test that can run here, slow ones included
	$(PYTEST) -m "not vivado and not board" $(ARGS)

demo: install  ## build the default model, print its costs, export it to QONNX and check it
	$(PY) -m bnn_brevitas.metrics --model $(MODEL)
	$(PY) -m bnn_brevitas.export --model $(MODEL) -o $(OUT)/$(MODEL).onnx $(ARGS)

metrics: install  ## cost metrics of MODEL (per layer)
	$(PY) -m bnn_brevitas.metrics --model $(MODEL) --per-layer $(ARGS)

export: install  ## export MODEL (or CKPT) to QONNX with the exactness check
	$(PY) -m bnn_brevitas.export $(if $(CKPT),--checkpoint $(CKPT),--model $(MODEL)) $(ARGS)

# FINN flow. SOURCE: ONNX=file.onnx, CKPT=checkpoint, MODEL=registry name; without any of
# them, the committed trained default checkpoint (or the fresh default model if there is none).
BOARD   ?= zcu104
DEFAULT_CKPT := checkpoints/bnext_nano_hw_fmnist.pt
SOURCE  = $(if $(ONNX),--onnx $(ONNX),$(if $(CKPT),--checkpoint $(CKPT),$(if \
	$(filter command line,$(origin MODEL)),--model $(MODEL),$(if $(wildcard $(DEFAULT_CKPT)),\
	--checkpoint $(DEFAULT_CKPT),--model $(MODEL)))))
# build name: the ONNX/CKPT file's stem when one is given, else MODEL
NAME    = $(if $(ONNX),$(basename $(notdir $(ONNX))),$(if $(CKPT),$(basename $(notdir $(CKPT))),$(MODEL)))
BUILD   ?= $(OUT)/$(NAME)_$(BOARD)
BUNDLE  ?= $(OUT)/deploy/$(notdir $(BUILD))

estimate: install  ## FINN flow without Xilinx tools: HW layers, folding, code, estimates (BOARD, MODEL|CKPT|ONNX)
	$(PY) -m flows.pipeline $(SOURCE) --board $(BOARD) -o $(BUILD) $(ARGS)

build-bitstream: install  ## estimate, then HLS/Vivado to a bitfile; stops (exit 3) naming a missing tool
	$(PY) -m hw.bitstream $(SOURCE) --board $(BOARD) -o $(BUILD) $(ARGS)

vivado-dry-run: install  ## FINN's Vivado hand-off, scripts written and checked; the Xilinx tools do not run
	$(PY) -m hw.bitstream $(SOURCE) --board $(BOARD) -o $(BUILD) --vivado-dry-run $(ARGS)

# The whole loop on the built-in default: train → export → compile (as far as the installed
# tools go: without Vivado, build-bitstream stops with exit code 3 after everything else) → verify.
ALL_RUN := runs/$(MODEL)-all-$(shell date +%Y%m%d-%H%M%S)
all: install  ## train the default model, compile it for BOARD (as far as the tools allow), verify it
	$(PY) -m bnn_brevitas.train --config $(TRAIN_CONFIG) --output-dir $(ALL_RUN) $(ARGS)
	$(PY) -m hw.bitstream --checkpoint $(ALL_RUN)/best.pt --board $(BOARD) -o $(BUILD) \
		|| [ $$? -eq 3 ]
	$(PY) -m flows.verify --build $(BUILD)

verify: install  ## bit-exact verification of BUILD, stage by stage (flows/verify.py)
	$(PY) -m flows.verify $(if $(wildcard $(BUILD)/flow_config.yaml),--build $(BUILD)) $(ARGS)

# Deploy bundle: BUILD is the FINN build folder holding accel_meta.json; HOST=user@board.

package: install  ## deploy bundle (driver, metadata, golden vectors, bitstream if built) from BUILD
	$(PY) -m hw.package --build-dir $(BUILD) --board $(BOARD) -o $(BUNDLE) --force $(ARGS)

deploy:  ## copy BUNDLE to HOST=user@board over ssh (rsync), into ~/<bundle name>
	@test -n "$(HOST)" || { echo "deploy: set HOST=user@board" >&2; exit 2; }
	rsync -az --delete $(BUNDLE)/ $(HOST):$(notdir $(BUNDLE))/

train: install  ## train (default: bnext_nano_hw on Fashion-MNIST, CPU, < 20 min) into runs/
	$(PY) -m bnn_brevitas.train --config $(TRAIN_CONFIG) $(if $(filter command line,$(origin MODEL)),--model $(MODEL)) $(ARGS)

clean:  ## remove build outputs (keeps .venv and runs/)
	rm -rf build .pytest_cache
