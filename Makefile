# JournalKeeper-rs — the two commands a fresh machine needs are `make demo` and `make test`.
# Every target installs what it needs itself (nothing installed by hand is assumed).

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: demo test lint planted-bugs-test cross-language-test bench-bindings bench-machines bench-snapshot python-wheel node-addon node-generated-check readme-test fmt-check clippy rust-test python-test node-test c-lib c-tools c-test header header-check bench soak mutants build

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
test: lint rust-test planted-bugs-test header-check c-test python-test node-test cross-language-test readme-test

lint: fmt-check clippy

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p journalkeeper --no-default-features --lib --test raft_sim -- -D warnings

rust-test:
	$(CARGO) test --workspace
	$(CARGO) run -q -p journalkeeper-bank-example

## The simulator's self-test: the raft core built with deliberately planted bugs, each of which
## the random fault schedule must catch (prints the catching seed and the number of runs).
planted-bugs-test:
	$(CARGO) test -p journalkeeper --features planted-bugs --test raft_sim random_schedule_catches_each_planted_bug -- --nocapture

## The C header, generated from ffi/ by the pinned cbindgen and checked in.
header: $(CBINDGEN)
	$(CBINDGEN) --quiet --config ffi/cbindgen.toml --crate journalkeeper-ffi --output include/journalkeeper.h ffi

## Fails when the checked-in header differs from a fresh generation.
header-check: $(CBINDGEN)
	$(CBINDGEN) --quiet --config ffi/cbindgen.toml --crate journalkeeper-ffi --output build/journalkeeper.h ffi
	diff -u include/journalkeeper.h build/journalkeeper.h || { echo "include/journalkeeper.h is stale: run make header"; exit 1; }

$(CBINDGEN):
	$(CARGO) install --quiet --locked --root build/tools --version $(CBINDGEN_VERSION) cbindgen

## The C library staged in build/lib: libjournalkeeper.so.$(VERSION) with the SONAME symlink
## libjournalkeeper.so.$(SO_MAJOR) and the development symlink libjournalkeeper.so, the static
## libjournalkeeper.a, and build/journalkeeper.pc (pkg-config, version from Cargo.toml).
SO_MAJOR := $(firstword $(subst ., ,$(VERSION)))
C_LIBDIR := build/lib
C_FLAGS := -Wall -Wextra -Werror -O1 -g
# What the Rust standard library needs from the system when linking the .a (rustc's
# --print native-static-libs for this target).
C_STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
PKG_CONFIG_RUN := PKG_CONFIG_PATH=$(abspath build) pkg-config
C_PROGRAMS := tests/c/version_test tests/c/vocabulary_test tests/c/error_test tests/c/one_way_test tests/c/admin_test \
	tests/c/observer_test tests/c/kv_at_index_test tests/c/events_test tests/c/coord_test tests/c/txn_test tests/c/state_machine_test tests/c/sql_test \
	examples/c/cluster examples/c/bank
VALGRIND := valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite

c-lib:
	$(CARGO) build --release -p journalkeeper-ffi
	mkdir -p $(C_LIBDIR)
	cp target/release/libjournalkeeper.so $(C_LIBDIR)/libjournalkeeper.so.$(VERSION)
	ln -sfn libjournalkeeper.so.$(VERSION) $(C_LIBDIR)/libjournalkeeper.so.$(SO_MAJOR)
	ln -sfn libjournalkeeper.so.$(SO_MAJOR) $(C_LIBDIR)/libjournalkeeper.so
	cp target/release/libjournalkeeper.a $(C_LIBDIR)/libjournalkeeper.a
	# The release profile strips the .so; the .a bundles the standard library's debug info.
	strip --strip-debug $(C_LIBDIR)/libjournalkeeper.a
	printf '%s\n' 'prefix=$(abspath build)' 'libdir=$${prefix}/lib' 'includedir=$(abspath include)' '' \
		'Name: journalkeeper' 'Description: C ABI of JournalKeeper-rs (journal store + coordination KV)' \
		'Version: $(VERSION)' 'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -ljournalkeeper' \
		'Libs.private: $(C_STATIC_LIBS)' > build/journalkeeper.pc

## C tests and the C example: compiled with -Wall -Wextra -Werror against the header, each linked
## once to the .so (through pkg-config) and once to the .a; all run, then the example, the
## error tests, the admin tests, the coordination tests, the transaction tests, the state machine tests and the SQL tests run again under valgrind (.so build), the events tests under
## valgrind for both builds; the header must also compile as C++ (g++ -Werror).
## The system tools the C tests use; installed from Debian's packages when a machine lacks them.
c-tools:
	@for t in pkg-config:pkgconf valgrind:valgrind readelf:binutils; do \
		command -v $${t%%:*} >/dev/null || { apt-get update -qq && apt-get install -y -qq $${t#*:}; } || exit 1; done

c-test: c-tools c-lib
	mkdir -p build/c
	echo "== header as C++"; printf '#include "journalkeeper.h"\nint main() { return jk_version() == nullptr; }\n' | \
		g++ -std=c++11 -Wall -Wextra -Werror -pedantic -Iinclude -x c++ -fsyntax-only -
	# Shipped artifacts carry no debug info (see [profile.release] in Cargo.toml).
	for f in $(C_LIBDIR)/libjournalkeeper.so $(C_LIBDIR)/libjournalkeeper.a; do \
		! readelf -S $$f | grep -q '\.debug_' || { echo "$$f has debug sections"; exit 1; }; done
	test "$$(readelf -d $(C_LIBDIR)/libjournalkeeper.so | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')" = libjournalkeeper.so.$(SO_MAJOR)
	test "$$($(PKG_CONFIG_RUN) --modversion journalkeeper)" = "$(VERSION)"
	set -e; for p in $(C_PROGRAMS); do n=$$(basename $$p); \
		gcc $(C_FLAGS) -DEXPECTED_VERSION='"$(VERSION)"' $$($(PKG_CONFIG_RUN) --cflags journalkeeper) $$p.c \
			$$($(PKG_CONFIG_RUN) --libs journalkeeper) -Wl,-rpath,$(abspath $(C_LIBDIR)) -o build/c/$${n}_shared; \
		gcc $(C_FLAGS) -DEXPECTED_VERSION='"$(VERSION)"' -Iinclude $$p.c \
			$(C_LIBDIR)/libjournalkeeper.a $(C_STATIC_LIBS) -o build/c/$${n}_static; \
	done
	set -e; for p in $(C_PROGRAMS); do n=$$(basename $$p); \
		echo "== $${n} (shared)"; build/c/$${n}_shared; echo "== $${n} (static)"; build/c/$${n}_static; done
	echo "== valgrind error_test (shared)"; $(VALGRIND) build/c/error_test_shared
	echo "== valgrind cluster (shared)"; $(VALGRIND) build/c/cluster_shared
	echo "== valgrind admin_test (shared)"; $(VALGRIND) build/c/admin_test_shared
	echo "== valgrind observer_test (shared)"; $(VALGRIND) build/c/observer_test_shared
	echo "== valgrind kv_at_index_test (shared)"; $(VALGRIND) build/c/kv_at_index_test_shared
	echo "== valgrind events_test (shared)"; $(VALGRIND) build/c/events_test_shared
	echo "== valgrind events_test (static)"; $(VALGRIND) build/c/events_test_static
	echo "== valgrind coord_test (shared)"; $(VALGRIND) build/c/coord_test_shared
	echo "== valgrind txn_test (shared)"; $(VALGRIND) build/c/txn_test_shared
	echo "== valgrind state_machine_test (shared)"; $(VALGRIND) build/c/state_machine_test_shared
	echo "== valgrind sql_test (shared)"; $(VALGRIND) build/c/sql_test_shared
	echo "== valgrind bank (shared)"; $(VALGRIND) build/c/bank_shared

## The Python wheel (maturin, abi3), installed into our venv, then its pytest suite and the
## example (both start embedded 3-node clusters on loopback ephemeral ports), then mypy --strict
## over the package, its stubs, the tests and the example.
python-test: $(VENV)/.ready-2
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/pip install --quiet --no-build-isolation --force-reinstall --no-deps ./bindings/python
	! readelf -S $(VENV)/lib/python3*/site-packages/journalkeeper/_native*.so | grep -q '\.debug_'
	$(VENV)/bin/python -m pytest -q --durations=5 bindings/python/tests
	$(VENV)/bin/python examples/python/cluster_demo.py
	$(VENV)/bin/python examples/python/bank.py
	cd bindings/python && $(abspath $(VENV))/bin/python -m mypy --strict --cache-dir $(abspath build/mypy-cache) \
		python/journalkeeper tests $(abspath examples/python)

$(VENV)/.ready-2:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "maturin>=1.9,<2.0" "pytest>=8" "mypy>=1.10,<3"
	touch $@

## The Node package. First the ways users install it (bindings/node/tests/install_check.sh, run
## before `npm ci` so that bindings/node has no node_modules, as on a fresh clone): `npm install
## <checkout>/bindings/node` from a separate project (must create nothing in the checkout outside
## bindings/node and target/), and `npm pack` + installing the tarball into build/node-pack; each
## consumer loads the package with `require` and `import`. Then `npm ci` (the pinned @napi-rs/cli
## only; the install script already ran above), the generated-files check (its `napi build` also
## puts the addon in place), `node --test` and the example.
node-test:
	rm -rf bindings/node/node_modules
	bindings/node/tests/install_check.sh
	cd bindings/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	$(MAKE) --no-print-directory node-generated-check
	! readelf -S bindings/node/journalkeeper.*.node | grep -q '\.debug_'
	cd bindings/node && node --test tests/
	node examples/node/example.js
	node examples/node/bank.js

## `napi build` regenerates the checked-in bindings/node/index.{js,d.ts}; fails when that
## changed them (they are then up to date in the work tree, to be committed).
node-generated-check:
	mkdir -p build/node-generated
	cp bindings/node/index.js bindings/node/index.d.ts build/node-generated/
	cd bindings/node && npx napi build --platform --release
	diff -u build/node-generated/index.d.ts bindings/node/index.d.ts && \
		diff -u build/node-generated/index.js bindings/node/index.js || \
		{ echo "bindings/node/index.js / index.d.ts were stale (regenerated now): commit them"; exit 1; }

## Every fenced code block of README.md, run as written (tests/readme/run_readme_blocks.py says
## how each kind runs, and how a block that cannot run is marked with its reason).
readme-test: c-lib python-wheel
	python3 tests/readme/run_readme_blocks.py

## The Python wheel installed into our venv, and the Node addon, without their test suites
## (what the cross-language test and bench-bindings need; cheap when already built).
python-wheel: $(VENV)/.ready-2
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/pip install --quiet --no-build-isolation --force-reinstall --no-deps ./bindings/python

node-addon:
	cd bindings/node && node scripts/build.js

## One cluster, three languages: a 3-node cluster embedded in Python; a C program (writer.c,
## -Wall -Wextra -Werror against the header and the .so) writes partition 1 and a KV key, a Node
## script partition 2 and a KV key, Python partition 0; Python (and Node) read it all back.
## State machines across languages (test_state_machines.py): the C bank hosted by a 3-node
## cluster in a C process (sm_host.c) driven from Python and Node (sm_driver.js), and the Python
## bank hosted in the pytest process driven by a C client (bank_client.c). Every C program is
## built as writer.c is.
XLANG_WRITER := build/cross_language/writer
XLANG_SM_HOST := build/cross_language/sm_host
XLANG_BANK_CLIENT := build/cross_language/bank_client
XLANG_GCC = gcc $(C_FLAGS) -Iinclude -Iexamples/c $(1) -L$(C_LIBDIR) -ljournalkeeper \
	-Wl,-rpath,$(abspath $(C_LIBDIR)) -o $(2)
cross-language-test: c-lib python-wheel node-addon
	mkdir -p build/cross_language
	$(call XLANG_GCC,tests/cross_language/writer.c,$(XLANG_WRITER))
	$(call XLANG_GCC,tests/cross_language/sm_host.c,$(XLANG_SM_HOST))
	$(call XLANG_GCC,tests/cross_language/bank_client.c,$(XLANG_BANK_CLIENT))
	JK_XLANG_WRITER=$(abspath $(XLANG_WRITER)) JK_XLANG_SM_HOST=$(abspath $(XLANG_SM_HOST)) \
		JK_XLANG_BANK_CLIENT=$(abspath $(XLANG_BANK_CLIENT)) $(VENV)/bin/python -m pytest -q \
		--durations=3 -p no:cacheprovider tests/cross_language

## Benchmarks (not tests): print one JSON object per case. `bench failover`: 20 leader kills -9
## (kill -> next acknowledged write) and a SIGSTOPped node first in the server list; `bench
## transfer`: the write pause of 10 leader transfers next to the same-run baseline.
bench: bench-bindings bench-machines bench-snapshot
	$(CARGO) run --release --quiet --bin journalkeeper -- bench storage
	$(CARGO) run --release --quiet --bin journalkeeper -- bench cluster
	$(CARGO) run --release --quiet --bin journalkeeper -- bench failover
	$(CARGO) run --release --quiet --bin journalkeeper -- bench transfer
	$(CARGO) run --release --quiet --bin journalkeeper -- bench observers
	$(CARGO) run --release --quiet --bin journalkeeper -- bench coord

## A 1 GiB disk-resident state (the blob machine on `bench blob-host` child processes) sent by
## snapshot to a fresh node: transfer rate next to the disk's sequential write rate (same run),
## the sender's and receiver's peak RSS (fails above 128 MiB); then a 1 GiB KV (in memory, ~5 GiB
## of RAM for the four nodes): what the transfer adds to each end's RSS (fails above 128 MiB).
BENCH_SNAPSHOT_GIB ?= 1
BENCH_SNAPSHOT_KV_MIB ?= 1024
bench-snapshot:
	$(CARGO) run --release --quiet --bin journalkeeper -- bench snapshot-transfer --gib $(BENCH_SNAPSHOT_GIB) --kv-mib $(BENCH_SNAPSHOT_KV_MIB)

## Batch appends (64 x 1 KiB per call, REPLICATION, one sequential caller, 5 s each) from the
## Rust client, Python and Node against one cluster in one run; records/s and python/rust,
## node/rust ratios as one JSON object.
BENCH_BINDINGS_SECONDS ?= 5
bench-bindings: python-wheel node-addon
	$(CARGO) build --release --quiet --bin journalkeeper
	$(VENV)/bin/python tests/cross_language/bench_bindings.py target/release/journalkeeper $(BENCH_BINDINGS_SECONDS)

## The same trivial counter state machine written in Rust, C, Python and Node, one after another
## in one run: each language's host (`journalkeeper bench sm-host`, tests/cross_language/sm_host.c,
## sm_host.py, sm_host.js) starts a 3-node embedded cluster from the same TOML files, and the
## same driver (`journalkeeper bench sm`: 32 concurrent callers, `add 1` at REPLICATION, 5 s
## each) measures it; one JSON object per language, then updates/s as ratios of Rust's (targets
## C >= 0.9, Python >= 0.5, Node >= 0.5) with each p99.
BENCH_MACHINES_SECONDS ?= 5
bench-machines: c-lib python-wheel node-addon
	$(CARGO) build --release --quiet --bin journalkeeper
	mkdir -p build/cross_language
	$(call XLANG_GCC,tests/cross_language/sm_host.c,$(XLANG_SM_HOST))
	$(VENV)/bin/python tests/cross_language/bench_machines.py target/release/journalkeeper \
		$(XLANG_SM_HOST) $(BENCH_MACHINES_SECONDS)

## Long fault runs (not part of `make test`): 100 paused-leader probes (8 STRICT readers queued at
## a SIGSTOPped leader, each round checked for linearizability) and 20 000 simulator seeds.
## Mutation testing of the raft core (hours: never part of `make test`). cargo-mutants, pinned,
## goes into build/tools; outputs land in build/mutants/mutants.out. MUTANTS_ARGS adds options,
## e.g. MUTANTS_ARGS='--shard 0/4' or MUTANTS_ARGS='--iterate' (retry only the missed ones).
CARGO_MUTANTS_VERSION := 27.1.0
CARGO_MUTANTS := build/tools/bin/cargo-mutants
MUTANTS_ARGS ?=
mutants: $(CARGO_MUTANTS)
	mkdir -p build/mutants
	SIM_SEEDS=300 CARGO_PROFILE_TEST_DEBUG=0 PATH="$(abspath build/tools/bin):$$PATH" \
		$(CARGO) mutants -p journalkeeper -f 'core/src/raft/**' -j 1 --baseline skip --timeout 20 \
		--output build/mutants $(MUTANTS_ARGS)

$(CARGO_MUTANTS):
	$(CARGO) install --quiet --locked --root build/tools --version $(CARGO_MUTANTS_VERSION) cargo-mutants

soak:
	JK_PAUSED_LEADER_ROUNDS=100 $(CARGO) test -p journalkeeper --test cluster_paused_leader -- --nocapture
	SIM_SEEDS=20000 $(CARGO) test -p journalkeeper --test raft_sim raft_simulation -- --nocapture

build:
	$(CARGO) build --workspace --release
