# JournalKeeper-rs — the two commands a fresh machine needs are `make demo` and `make test`.
# Every target installs what it needs itself (nothing installed by hand is assumed).

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: demo test lint fmt-check clippy rust-test bench soak build

## Run the demo (builds the release binary first).
demo:
	$(CARGO) run --release --quiet --bin journalkeeper -- demo

## Every test: formatting, lints, unit/property/integration/simulation tests.
test: lint rust-test

lint: fmt-check clippy

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

rust-test:
	$(CARGO) test --workspace

## Benchmarks (not tests): print one JSON object per case.
bench:
	$(CARGO) run --release --quiet --bin journalkeeper -- bench storage

build:
	$(CARGO) build --workspace --release
