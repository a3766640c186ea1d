#!/usr/bin/env bash
# The two ways a Node user installs the package, checked end to end (`make node-test` runs this
# before `npm ci`, so bindings/node has no node_modules, as on a fresh clone):
#
# 1. `npm install <checkout>/bindings/node` from a separate project (outside the checkout). It
#    must not need our devDependencies, and must create nothing in the checkout outside
#    bindings/node and the cargo target dir (`git status --porcelain --ignored` compared).
# 2. `npm pack` in bindings/node, then `npm install <tarball>` into a scratch project under
#    build/: the tarball alone must build the crate (its cargo build runs with
#    CARGO_TARGET_DIR=target/node-pack, kept between runs so only our two crates rebuild).
#
# Each consumer project then loads the package both ways — `require('journalkeeper')` and
# `import { Server, Client } from 'journalkeeper'` — and runs a one-node cluster through it.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
pkg=$root/bindings/node
version=$(node -p "require('$pkg/package.json').version")
npm_quiet=(--no-audit --no-fund --loglevel=error)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/jk-node-install.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# What `git status` reports outside target/ and bindings/node, ignored files included.
snapshot() {
  git -C "$root" status --porcelain --ignored --untracked-files=all -- . ':!target' ':!bindings/node'
}

# Writes the CommonJS and ESM checks into project $1 and runs them.
consumer_check() {
  local dir=$1
  cat > "$dir/check.cjs" <<'EOF'
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const jk = require('journalkeeper');
const { Server, Client } = jk;

async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

(async () => {
  assert.strictEqual(jk.version(), process.argv[2]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jk-consumer-'));
  const listen = `127.0.0.1:${await freePort()}`;
  const server = await Server.start({ nodeId: 1, listen, clusterId: 42, dataDir: dir, peers: { 1: listen } });
  const client = await Client.connect([listen]);
  const first = await client.journal.append(0, [Buffer.from('cjs')]);
  assert.strictEqual((await client.journal.get(0, first, 1))[0].payload.toString(), 'cjs');
  await client.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`require('journalkeeper'): ${jk.version()} from ${path.dirname(require.resolve('journalkeeper'))}`);
})().catch((e) => { console.error(e); process.exit(1); });
EOF
  cat > "$dir/check.mjs" <<'EOF'
import assert from 'node:assert';
import { createRequire } from 'node:module';
import jk, { Server, Client, version } from 'journalkeeper';

const require = createRequire(import.meta.url);
assert.strictEqual(version(), process.argv[2]);
assert.strictEqual(jk, require('journalkeeper'));
assert.strictEqual(Server, jk.Server);
assert.strictEqual(typeof Client.connect, 'function');
assert.strictEqual(typeof jk.Kv.prototype.events, 'function');
console.log(`import { Server, Client } from 'journalkeeper': ${version()}`);
EOF
  (cd "$dir" && node check.cjs "$version" && node check.mjs "$version")
}

new_project() {
  mkdir -p "$1"
  echo "{\"name\":\"$(basename "$1")\",\"private\":true}" > "$1/package.json"
}

echo "== npm install $pkg (from a separate project)"
test ! -e "$pkg/node_modules" || { echo "$pkg/node_modules exists: this check stands for a fresh clone"; exit 1; }
before=$(snapshot)
new_project "$scratch/app"
(cd "$scratch/app" && npm install "${npm_quiet[@]}" "$pkg")
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "npm install $pkg changed the checkout outside bindings/node and target/:"
  diff <(echo "$before") <(echo "$after") || true
  exit 1
fi
consumer_check "$scratch/app"

echo "== npm pack in bindings/node, npm install <tarball>"
packdir=$root/build/node-pack
rm -rf "$packdir" && mkdir -p "$packdir"
tarball=$(cd "$pkg" && npm pack "${npm_quiet[@]}" --pack-destination "$packdir" | tail -n 1)
test ! -e "$pkg/crate" || { echo "postpack left $pkg/crate behind"; exit 1; }
tar -tzf "$packdir/$tarball" > "$packdir/contents.txt"
for f in package/package.json package/index.mjs package/scripts/build.js package/crate/Cargo.toml \
  package/crate/Cargo.lock package/crate/core/Cargo.toml package/crate/core/src/lib.rs \
  package/crate/node/Cargo.toml package/crate/node/src/lib.rs; do
  grep -qx "$f" "$packdir/contents.txt" || { echo "$tarball lacks $f"; exit 1; }
done
if grep -E '\.node$|/target/|^package/Cargo.toml$' "$packdir/contents.txt"; then
  echo "$tarball holds build outputs or the workspace-bound manifest"; exit 1
fi
echo "$tarball: $(wc -l < "$packdir/contents.txt") files, $(du -k "$packdir/$tarball" | cut -f1) KiB"
new_project "$packdir/app"
(cd "$packdir/app" && CARGO_TARGET_DIR="$root/target/node-pack" npm install "${npm_quiet[@]}" "$packdir/$tarball")
test ! -L "$packdir/app/node_modules/journalkeeper" # a copy, not a link back into the checkout
consumer_check "$packdir/app"
addon=$(ls "$packdir"/app/node_modules/journalkeeper/journalkeeper.*.node)
echo "installed addon: $(basename "$addon") $(du -k "$addon" | cut -f1) KiB"
