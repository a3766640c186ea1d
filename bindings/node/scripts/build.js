#!/usr/bin/env node
// The package's `install` script: builds the addon with `cargo build --release` and copies the
// cdylib to `journalkeeper.<platform>.node`, the name the generated loader (`index.js`) looks
// for. It needs only Node and a Rust toolchain — no npm dependency (an install from another
// project never installs our devDependencies, so the napi CLI cannot be used here).
//
// Two layouts:
// - the checkout (`bindings/node/Cargo.toml` present): the crate is a member of the repository's
//   workspace and builds into the workspace's target directory;
// - the `npm pack` tarball (no `Cargo.toml` next to this package.json): `crate/` holds a
//   workspace of its own, written by `scripts/prepack.js` (the binding crate, the core crate and
//   the repository's Cargo.lock), built with `--locked` into `crate/target` (or
//   `CARGO_TARGET_DIR`).
//
// `--target <host triple>` is passed as `napi build` does, so both share one build directory.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const pkgDir = path.resolve(__dirname, '..');
const binaryName = 'journalkeeper';
const crateName = 'journalkeeper-node';
const libName = 'journalkeeper_node';

function fail(message) {
  console.error(`journalkeeper: ${message}`);
  process.exit(1);
}

/** The suffix napi-rs gives this platform (`linux-x64-gnu`, `darwin-arm64`, …). */
function platformSuffix() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const report = process.report && process.report.getReport();
    const glibc = report && report.header && report.header.glibcVersionRuntime;
    if (arch === 'arm') return glibc ? 'linux-arm-gnueabihf' : 'linux-arm-musleabihf';
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function cargo() {
  return process.env.CARGO || 'cargo';
}

function hostTriple() {
  let out;
  try {
    out = execFileSync(process.env.RUSTC || 'rustc', ['-vV'], { encoding: 'utf8' });
  } catch (e) {
    fail(`building the addon needs a Rust toolchain (rustc -vV failed: ${e.message}); see https://rustup.rs`);
  }
  const m = out.match(/^host: (\S+)$/m);
  if (!m) fail(`could not read the host triple from rustc -vV:\n${out}`);
  return m[1];
}

/**
 * npm stores every file of a tarball with one fixed mtime (1985), and cargo decides freshness
 * by mtime: with a reused CARGO_TARGET_DIR, a rebuilt tarball could leave a stale artifact.
 * Touching the vendored sources on install makes cargo compare them against this install.
 */
function touchTree(dir) {
  const now = new Date();
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'target') touchTree(p);
    } else {
      fs.utimesSync(p, now, now);
    }
  }
}

function main() {
  const checkoutManifest = path.join(pkgDir, 'Cargo.toml');
  const packedManifest = path.join(pkgDir, 'crate', 'Cargo.toml');
  const args = ['build', '--release', '--message-format=json-render-diagnostics', '-p', crateName];
  if (fs.existsSync(checkoutManifest)) {
    args.push('--manifest-path', checkoutManifest);
  } else if (fs.existsSync(packedManifest)) {
    touchTree(path.dirname(packedManifest));
    args.push('--manifest-path', packedManifest, '--locked');
  } else {
    fail(`neither ${checkoutManifest} nor ${packedManifest} exists: the package is incomplete`);
  }
  args.push('--target', hostTriple());

  const r = spawnSync(cargo(), args, { cwd: pkgDir, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.error) fail(`could not run ${cargo()}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cargo()} ${args.join(' ')} failed (exit ${r.status})`);

  let cdylib = null;
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line);
    if (msg.reason === 'compiler-artifact' && msg.target.name === libName && msg.target.kind.includes('cdylib')) {
      cdylib = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) || cdylib;
    }
  }
  if (!cdylib) fail(`cargo reported no cdylib for ${crateName}`);

  // Copy then rename: a process that has the old addon loaded keeps its mapping intact.
  const dest = path.join(pkgDir, `${binaryName}.${platformSuffix()}.node`);
  const tmp = `${dest}.tmp-${process.pid}`;
  fs.copyFileSync(cdylib, tmp);
  fs.renameSync(tmp, dest);
  console.error(`journalkeeper: built ${path.basename(dest)} (${(fs.statSync(dest).size / 1048576).toFixed(1)} MiB)`);
}

main();
