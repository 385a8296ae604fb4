# TapeCL — two commands set up a fresh Debian machine: `make run` and `make test`.
# Both install the Debian packages they need when missing (as root, or with sudo).

SWIFT ?= swift
DEBIAN_PACKAGES := ocl-icd-opencl-dev pocl-opencl-icd libopenblas-dev libopenmpi-dev openmpi-bin python3-venv
RELEASE := .build/release/tapecl

.PHONY: all deps build release run test lint format docs python-safetensors device-check device-check-local check bench bench-distributed bench-peers clean

all: build

## Installs the OpenCL loader and headers, PoCL (the CPU OpenCL device), OpenBLAS and Open MPI when missing.
deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

## The Swift runtime is linked statically: the binary runs where no Swift toolchain is installed,
## and calls into the runtime (retain, release: a quarter of W1's instructions) skip the dynamic linker's stubs.
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

## The main job on the default device: list devices, differentiate the seed example, train on digits
## (the MLP, then the CNN).
run: release
	$(RELEASE) devices
	$(RELEASE) grad "(x+y)^2 + 2*x*y" --at x=2 --at y=-4
	$(RELEASE) train --epochs 10
	$(RELEASE) train --model cnn

## Every test, on the host and on every OpenCL device found (PoCL here). `tapecl-stop` and `tapecl` are
## built in release too: tests check that a stop prints its message and that the workloads run in an
## optimised build (the optimiser once freed values early that a debug build kept).
test: deps lint python-safetensors
	$(SWIFT) build --build-tests
	$(SWIFT) build -c release --static-swift-stdlib --product tapecl-stop
	$(SWIFT) build -c release --static-swift-stdlib --product tapecl
	@echo "OpenCL devices under test:"; ./.build/debug/tapecl devices | grep -E '^[ *] opencl' || echo "  none (host only)"
	$(SWIFT) test --skip-build
	$(MAKE) docs
	$(MAKE) device-check-local

## Python's safetensors reader for the interoperability test, in .build/pyvenv: best effort (it needs PyPI);
## without it that one test reports itself skipped.
python-safetensors:
	@[ -x .build/pyvenv/bin/python ] && .build/pyvenv/bin/python -c 'import safetensors.numpy' 2>/dev/null || \
		{ python3 -m venv .build/pyvenv && .build/pyvenv/bin/pip install -q safetensors numpy; } || \
		echo "python-safetensors: could not install safetensors; the interoperability test will be skipped"

## The formatter's rules (.swift-format: 120 columns), checked before the tests so CI fails on a violation;
## `make format` applies them.
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Plugins Examples

format:
	$(SWIFT) format format --in-place --recursive Sources Tests Plugins Examples

## The documentation of every public module (TapeCL, TapeCLRuntime, TapeCLNN, TapeCLDistributed), failing on any DocC warning;
## the archives are in .build/plugins/Swift-DocC/outputs.
DOC_TARGETS := TapeCL TapeCLRuntime TapeCLNN TapeCLDistributed
docs: deps
	@for t in $(DOC_TARGETS); do \
		$(SWIFT) package --disable-sandbox generate-documentation --target $$t --warnings-as-errors || exit 1; done

## The GPU check: `device-check` prepares the bundle (.device-bundle/) and prints the command for the
## GPU machine; `device-check-local` runs that on-device part here against PoCL, so it is known to work.
device-check: deps
	bash scripts/device-check.sh

device-check-local: deps
	bash scripts/device-check.sh --local

## `tapecl check` on every device.
check: release
	@for d in $$($(RELEASE) devices --json | python3 -c 'import json,sys; print(" ".join(d["name"] for d in json.load(sys.stdin)))'); do \
		$(RELEASE) check --device $$d || exit 1; done

## TapeCL on the host and the OpenCL device, and the peers, alternating; writes Benchmarks/RESULTS.md.
bench: release bench-peers
	python3 Benchmarks/run.py --tapecl $(RELEASE)

## W2 data-parallel: two ranks against one on the host and on the first OpenCL device, 3 runs each;
## writes Benchmarks/RESULTS-distributed.md.
bench-distributed: release
	bash scripts/bench-distributed.sh $(RELEASE)

## PyTorch and TensorFlow (CPU builds) in Benchmarks/peers/.venv.
bench-peers:
	@test -x Benchmarks/peers/.venv/bin/python || python3 -m venv Benchmarks/peers/.venv
	@Benchmarks/peers/.venv/bin/python -c 'import torch, tensorflow' 2>/dev/null || \
		Benchmarks/peers/.venv/bin/pip install -q -r Benchmarks/peers/requirements.txt

clean:
	rm -rf .build
