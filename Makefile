# TapeCL — two commands set up a fresh Debian machine: `make run` and `make test`.
# Both install the Debian packages they need when missing (as root, or with sudo).

SWIFT ?= swift
DEBIAN_PACKAGES := ocl-icd-opencl-dev pocl-opencl-icd oclgrind libopenblas-dev libopenmpi-dev openmpi-bin python3-venv
RELEASE := .build/release/tapecl

OPENCL_TARGETS := intel-opencl oclgrind-check conformance
.PHONY: all deps build $(OPENCL_TARGETS) release run test lint format docs python-safetensors device-check device-check-local check bench bench-distributed bench-peers clean

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

## Every test, on the host and on three OpenCL implementations: Intel's CPU runtime (opencl:0) and PoCL
## (opencl:1) under the whole suite, and Oclgrind, a simulated GPU that reports races and out-of-bounds
## accesses, under `tapecl check` and a subset of the suite (scripts/oclgrind.sh). `tapecl-stop` and `tapecl`
## are built in release too: tests check that a stop prints its message and that the workloads run in an
## optimised build (the optimiser once freed values early that a debug build kept). README's Swift snippets
## are type-checked against the built modules (scripts/readme-snippets.py).
test: deps lint python-safetensors intel-opencl
	$(SWIFT) build --build-tests
	python3 scripts/readme-snippets.py
	$(SWIFT) build -c release --static-swift-stdlib --product tapecl-stop
	$(SWIFT) build -c release --static-swift-stdlib --product tapecl
	@echo "OpenCL devices under test:"; $(WITH_INTEL) ./.build/debug/tapecl devices | grep -E '^[ *] opencl' || echo "  none (host only)"
	$(WITH_INTEL) TAPECL_EXPECT_OPENCL="$(EXPECTED_OPENCL)" $(SWIFT) test --skip-build
	$(MAKE) oclgrind-check
	$(MAKE) docs
	$(MAKE) device-check-local

## Intel's OpenCL CPU runtime (PyPI's intel-opencl-rt and intel-cmplr-lib-rt, about 800 MB) in .build/intel-opencl.
## Its own libOpenCL.so (the Khronos loader) comes first on LD_LIBRARY_PATH and also finds PoCL through
## /etc/OpenCL/vendors: WITH_INTEL runs a command with both. Without PyPI the install fails, and so does the
## test that expects it (`TAPECL_EXPECT_OPENCL`), saying why.
INTEL_OPENCL := $(CURDIR)/.build/intel-opencl
WITH_INTEL := LD_LIBRARY_PATH="$(INTEL_OPENCL)/lib$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}" \
	OCL_ICD_FILENAMES="$(INTEL_OPENCL)/lib/libintelocl.so"
EXPECTED_OPENCL := Intel(R) OpenCL,Portable Computing Language
intel-opencl:
	@test -f "$(INTEL_OPENCL)/lib/libintelocl.so" || { \
		echo "Installing Intel's OpenCL CPU runtime into $(INTEL_OPENCL)"; \
		python3 -m venv "$(INTEL_OPENCL)" && "$(INTEL_OPENCL)/bin/pip" install -q intel-opencl-rt intel-cmplr-lib-rt; \
	} || echo "intel-opencl: could not install Intel's OpenCL runtime from PyPI; the tests that expect it will fail"

## Oclgrind's simulated GPU: `tapecl check` over seeds 1-3 and the edge-case and model tests, with its
## data-race, bounds and API checks; any report fails (scripts/oclgrind.sh).
oclgrind-check: deps
	bash scripts/oclgrind.sh

## The conformance table of the README: `tapecl check` and the special-value pass on every implementation.
conformance: release intel-opencl
	$(WITH_INTEL) bash scripts/conformance.sh $(RELEASE)

## Python's safetensors reader for the interoperability test, in .build/pyvenv: best effort (it needs PyPI);
## without it that one test reports itself skipped.
python-safetensors:
	@[ -x .build/pyvenv/bin/python ] && .build/pyvenv/bin/python -c 'import safetensors.numpy' 2>/dev/null || \
		{ python3 -m venv .build/pyvenv && .build/pyvenv/bin/pip install -q safetensors numpy; } || \
		echo "python-safetensors: could not install safetensors; the interoperability test will be skipped"

## The formatter's rules (.swift-format: 120 columns), checked before the tests so CI fails on a violation;
## `make format` applies them.
## The runtime's SPI (`@_spi(Runtime)`) is for its own clients: the core, the op check, the benchmarks and the
## tests. The layers above and the command line use public (and, inside the package, `package`) API only.
SPI_FREE := Sources/TapeCLNN Sources/TapeCLData Sources/TapeCLDistributed Sources/TapeCLExamples Sources/tapecl Examples
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Plugins Examples
	@if grep -rln '@_spi(Runtime)' $(SPI_FREE); then \
		echo "error: the files above import the runtime's SPI; use public or package API (Makefile: SPI_FREE)"; exit 1; fi

format:
	$(SWIFT) format format --in-place --recursive Sources Tests Plugins Examples

## The documentation of every public module (TapeCL, TapeCLRuntime, TapeCLNN, TapeCLDistributed), failing on any DocC warning;
## the archives are in .build/plugins/Swift-DocC/outputs.
DOC_TARGETS := TapeCL TapeCLRuntime TapeCLNN TapeCLData TapeCLDistributed
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
