# tinybpf developer entry points. Every target works on a fresh clone, as root.
#   make test   - the whole suite on the running kernel
#   make stress - the stress suite for longer (STRESS_SECONDS per scenario)
#   make demo   - a small exec snooper built on the library, for a few seconds
#   make kernels - the kernel-dependent tests on Debian kernels in VMs (KERNELS=...)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_SRC := $(wildcard tests/bpf/*.bpf.c)
BPF_OBJ := $(patsubst tests/bpf/%.bpf.c,tests/bpf/build/%.bpf.o,$(BPF_SRC))
VMLINUX_H := tests/bpf/build/vmlinux.h
EXT_STAMP := $(VENV)/.tinybpf-built
DEVTOOLS_STAMP := $(VENV)/.tinybpf-devtools
APT_PACKAGES := clang llvm libelf-dev zlib1g-dev pkg-config make gcc systemtap-sdt-dev iproute2
CLANG ?= clang
PYTEST_ARGS ?=

.PHONY: all deps venv devtools vendor build compile test demo wheel check clean mounts bench asan stress kernels

all: build

# System packages, installed only when something is missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The venv holds only what the library needs to build and run (the build requirements of
# pyproject.toml; cffi is also the one runtime dependency): enough for `make demo`.
$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "setuptools>=77" "cffi>=1.17"

venv: $(VENV)/bin/activate

# Developer tools (pyproject.toml's dependency group "dev"): tests, linters, wheel tooling.
$(DEVTOOLS_STAMP): $(VENV)/bin/activate pyproject.toml
	$(PY) -m pip install -q --group dev
	@touch $@

devtools: $(DEVTOOLS_STAMP)

vendor:
	$(PYTHON) vendor/libbpf.py fetch

# In-place build: libbpf.a, the cffi extension and the packaged BPF headers.
$(EXT_STAMP): $(VENV)/bin/activate setup.py ffi_build/*.py ffi_build/shim_*.c .libbpf-version vendor/libbpf.py
	$(MAKE) deps
	$(PY) -m pip install -q --no-build-isolation -e .
	@touch $@

build: $(EXT_STAMP)

mounts:
	@mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing || true
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || true

$(VMLINUX_H): $(EXT_STAMP)
	@mkdir -p $(dir $@)
	$(PY) -m tinybpf vmlinux -o $@

tests/bpf/build/%.bpf.o: tests/bpf/%.bpf.c $(VMLINUX_H) $(wildcard tests/bpf/*.h)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Wno-unused-variable \
	  -I tests/bpf/build -I tests/bpf -I src/tinybpf/include \
	  -idirafter /usr/include/$(shell uname -m)-linux-gnu -c $< -o $@

compile: $(BPF_OBJ)

test: build devtools compile mounts
	$(PY) -m pytest -q -ra $(PYTEST_ARGS) tests

# The stress suite (threads x close x operations, signals, fd reuse) for longer than the
# few seconds per scenario it gets in `make test`: STRESS_SECONDS per scenario.
STRESS_SECONDS ?= 120
stress: build compile mounts
	TINYBPF_STRESS_SECONDS=$(STRESS_SECONDS) $(PY) -m pytest -q -ra -s $(PYTEST_ARGS) \
	  tests/test_reliability_stress.py tests/test_reliability_safety.py

# Kernel matrix: each kernel of KERNELS (5.10 6.1 6.12 newest; "5.10+bpflsm" boots 5.10 with
# bpf added to lsm=) fetched from Debian's archive (cached in .kernels/), booted with
# virtme-ng (KVM when it works, else TCG) and the kernel-dependent tests run inside; one
# line per kernel, docs/kernels.md regenerated. See docs/kernels.md.
KERNELS ?= 5.10 6.1 6.12 newest
VM_APT_PACKAGES := qemu-system-x86 kmod busybox-static debian-archive-keyring
VIRTME_NG ?= virtme-ng==1.42
kernels: build devtools compile
	@missing=""; for p in $(VM_APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@test -x $(VENV)/bin/vng || $(PY) -m pip install -q "$(VIRTME_NG)"
	$(PY) vm/kernels.py $(KERNELS) $(KERNELS_ARGS)

demo: build mounts
	$(PY) -m tinybpf compile examples/execsnoop.bpf.c -o examples/build/
	@echo "tracing execve() for 3 seconds (the demo runs a few commands itself):"
	$(PY) examples/execsnoop.py --demo --seconds 3

check: build devtools
	$(VENV)/bin/ruff check src tests ffi_build vendor/libbpf.py vendor/static_deps.py setup.py examples bench docs/gen_api.py vm
	$(VENV)/bin/ruff format --check src tests ffi_build vendor/libbpf.py vendor/static_deps.py setup.py examples bench docs/gen_api.py vm
	$(VENV)/bin/mypy

# Wheel: one cp310-abi3 wheel into dist/ with a glibc 2.28 floor, built here without
# containers: zig cc (PyPI's ziglang, dependency group "zig") targets ZIG_TARGET for libbpf,
# a static libelf and zlib (vendor/static_deps.py) and the extension, so the extension needs
# only libc. auditwheel repair tags it manylinux_2_28; abi3audit checks the limited API.
# ZIG_TARGET= (empty) builds with the system compiler instead (floor: this machine's glibc).
# Then the wheel goes into a fresh virtual environment per CPython 3.10-3.13 found here,
# each running WHEEL_TESTS (default: the C-boundary subset below; WHEEL_TESTS=tests for all).
ZIG_TARGET ?= $(shell uname -m)-linux-gnu.2.28
ZIG_STAMP := $(VENV)/.tinybpf-zig
WHEEL_TESTS ?= $(addprefix $(CURDIR)/tests/,test_ffi.py test_object.py test_program.py \
  test_map.py test_map_types.py test_globals.py test_ringbuf.py test_perfbuf.py \
  test_buffers_async.py test_attach.py test_link.py test_btf.py test_errors.py \
  test_vendoring.py)
$(ZIG_STAMP): $(VENV)/bin/activate pyproject.toml
	$(PY) -m pip install -q --group zig
	@touch $@

wheel: build devtools compile mounts $(if $(ZIG_TARGET),$(ZIG_STAMP))
	rm -rf build/wheelhouse dist && mkdir -p build/wheelhouse dist
	rm -rf build/lib.* build/temp.* build/bdist.*
	TINYBPF_ZIG_TARGET=$(ZIG_TARGET) $(PY) -m pip wheel -q --no-build-isolation --no-deps \
	  -w build/wheelhouse .
	rm -rf build/lib.* build/temp.* build/bdist.*
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/auditwheel repair -w dist \
	  $(if $(ZIG_TARGET),--plat manylinux_2_28_$(shell uname -m)) build/wheelhouse/tinybpf-*.whl
	$(VENV)/bin/auditwheel show dist/tinybpf-*.whl
	$(VENV)/bin/abi3audit --strict --summary dist/tinybpf-*.whl
	@ls -l dist/
	.ci/test-wheel dist/tinybpf-*.whl $(WHEEL_TESTS)

# Benchmarks (not tests): tinybpf against a C baseline built on the same static libbpf,
# and bcc where its Python package is installed. Prints a table of medians and ratios.
bench: build mounts
	$(PY) bench/run.py $(BENCH_ARGS)

# AddressSanitizer: libbpf and the extension rebuilt with -fsanitize=address into .venv-asan,
# the suite run with libasan preloaded (leak checking on the extension's own allocations).
ASAN_LIB = $(shell gcc -print-file-name=libasan.so)
asan: build compile mounts
	test -x .venv-asan/bin/python || $(PYTHON) -m venv .venv-asan
	.venv-asan/bin/pip install -q "setuptools>=77" "cffi>=1.17" pytest pytest-asyncio
	rm -rf build/lib.* build/temp.* build/bdist.*
	TINYBPF_SANITIZE=address .venv-asan/bin/pip install -q --no-build-isolation --no-deps --force-reinstall .
	rm -rf build/lib.* build/temp.* build/bdist.*
	nm .venv-asan/lib/python3*/site-packages/tinybpf/_libbpf_cffi*.so | grep -q __asan_report
	cd /tmp && LD_PRELOAD=$(ASAN_LIB) ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	  PYTHONMALLOC=malloc $(CURDIR)/.venv-asan/bin/python -m pytest -q -p no:cacheprovider \
	  --rootdir=/tmp $(CURDIR)/tests -m "not slow and not asan_incompatible" $(PYTEST_ARGS)
	cd /tmp && LD_PRELOAD=$(ASAN_LIB) ASAN_OPTIONS=detect_leaks=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  PYTHONMALLOC=malloc $(CURDIR)/.venv-asan/bin/python $(CURDIR)/tests/leakcheck.py

clean:
	rm -rf build dist tests/bpf/build src/tinybpf/_libbpf_cffi.* src/tinybpf/include \
	  src/*.egg-info examples/build .venv-asan

# Debian's prometheus and promtool for the exporter tests, unpacked into build/prometheus/
# (the tests fetch it themselves on first use; this target does it ahead of time).
prometheus: venv
	$(PY) tests/helpers/prometheus.py
