# JournalKeeper-rs — the two commands a fresh machine needs are `make demo` and `make test`.
# Every target installs what it needs itself (nothing installed by hand is assumed).

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: demo test lint fmt-check clippy rust-test python-test node-test c-test header header-check bench soak build

# cbindgen, pinned, installed into build/tools on first use.
CBINDGEN_VERSION := 0.29.4
CBINDGEN := build/tools/bin/cbindgen
VERSION := $(shell sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)

# The Python test environment: a venv of our own with maturin and pytest, made on first use.
VENV := build/venv

## Run the demo (builds the release binary first).
demo:
	$(CARGO) run --release --quiet --bin journalkeeper -- demo

## Every test: formatting, lints, unit/property/integration/simulation tests.
test: lint rust-test header-check c-test python-test node-test

lint: fmt-check clippy

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

rust-test:
	$(CARGO) test --workspace

## The C header, generated from ffi/ by the pinned cbindgen and checked in.
header: $(CBINDGEN)
	$(CBINDGEN) --quiet --config ffi/cbindgen.toml --crate journalkeeper-ffi --output include/journalkeeper.h ffi

## Fails when the checked-in header differs from a fresh generation.
header-check: $(CBINDGEN)
	$(CBINDGEN) --quiet --config ffi/cbindgen.toml --crate journalkeeper-ffi --output build/journalkeeper.h ffi
	diff -u include/journalkeeper.h build/journalkeeper.h || { echo "include/journalkeeper.h is stale: run make header"; exit 1; }

$(CBINDGEN):
	$(CARGO) install --quiet --locked --root build/tools --version $(CBINDGEN_VERSION) cbindgen

## C tests: compiled with -Wall -Wextra -Werror against the header, linked to the .so and the .a.
c-test:
	$(CARGO) build --release -p journalkeeper-ffi
	mkdir -p build/c
	gcc -Wall -Wextra -Werror -Iinclude -DEXPECTED_VERSION='"$(VERSION)"' tests/c/version_test.c \
		-Ltarget/release -ljournalkeeper -Wl,-rpath,$(abspath target/release) -o build/c/version_test_shared
	gcc -Wall -Wextra -Werror -Iinclude -DEXPECTED_VERSION='"$(VERSION)"' tests/c/version_test.c \
		target/release/libjournalkeeper.a -lpthread -ldl -lm -o build/c/version_test_static
	build/c/version_test_shared
	build/c/version_test_static

## The Python wheel (maturin, abi3), installed into our venv, then its pytest suite and the
## example (both start embedded 3-node clusters on loopback ephemeral ports), then mypy --strict
## over the package, its stubs, the tests and the example.
python-test: $(VENV)/.ready-2
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/pip install --quiet --no-build-isolation --force-reinstall --no-deps ./bindings/python
	$(VENV)/bin/python -m pytest -q --durations=5 bindings/python/tests
	$(VENV)/bin/python examples/python/cluster_demo.py
	cd bindings/python && $(abspath $(VENV))/bin/python -m mypy --strict --cache-dir $(abspath build/mypy-cache) \
		python/journalkeeper tests $(abspath examples/python)

$(VENV)/.ready-2:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "maturin>=1.9,<2.0" "pytest>=8" "mypy>=1.10,<3"
	touch $@

## The Node addon (napi-rs, pinned @napi-rs/cli from package-lock.json), then `node --test`.
node-test:
	cd bindings/node && npm ci --no-audit --no-fund --loglevel=error
	cd bindings/node && npx napi build --platform --release
	cd bindings/node && node --test tests/

## Benchmarks (not tests): print one JSON object per case.
bench:
	$(CARGO) run --release --quiet --bin journalkeeper -- bench storage

build:
	$(CARGO) build --workspace --release
