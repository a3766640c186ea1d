#!/usr/bin/env node
// `npm pack` / `npm publish` (prepack): makes the tarball self-contained. The binding crate
// depends on the core crate by path and inherits from the repository's workspace, neither of
// which is inside this package, so the sources cargo needs are copied into `crate/`:
//
//   crate/Cargo.toml   the repository's Cargo.toml with `members = ["core", "node"]`
//   crate/Cargo.lock   the repository's lock file, pruned to this workspace (exact versions)
//   crate/core/        core/Cargo.toml and core/src (what the core's library and binary need)
//   crate/node/        bindings/node/{Cargo.toml,build.rs,src}
//
// The manifests are copied verbatim: `path = "core"` and every `*.workspace = true` resolve
// against crate/Cargo.toml exactly as they do in the repository. `scripts/build.js` builds
// `crate/` when the package has no `Cargo.toml` of its own (the tarball); `postpack` removes it.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const pkgDir = path.resolve(__dirname, '..');
const repo = path.resolve(pkgDir, '..', '..');
const out = path.join(pkgDir, 'crate');

function fail(message) {
  console.error(`journalkeeper prepack: ${message}`);
  process.exit(1);
}

const rootManifest = path.join(repo, 'Cargo.toml');
if (!fs.existsSync(rootManifest)) fail(`${rootManifest} not found: pack from the JournalKeeper-rs checkout`);
const root = fs.readFileSync(rootManifest, 'utf8');
const members = /^members = \[[^\]]*\]$/m;
if (!members.test(root) || !root.includes('"bindings/node"')) {
  fail(`${rootManifest} does not list bindings/node as a workspace member`);
}

function copy(from, to) {
  fs.cpSync(from, to, { recursive: true, filter: (src) => path.basename(src) !== 'target' });
}

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out);
fs.writeFileSync(
  path.join(out, 'Cargo.toml'),
  '# Written by bindings/node/scripts/prepack.js from the repository\'s Cargo.toml for the npm\n' +
    '# tarball: the same workspace settings, with the core and the Node binding as its members.\n' +
    root.replace(members, 'members = ["core", "node"]'),
);
fs.copyFileSync(path.join(repo, 'Cargo.lock'), path.join(out, 'Cargo.lock'));
copy(path.join(repo, 'core', 'Cargo.toml'), path.join(out, 'core', 'Cargo.toml'));
copy(path.join(repo, 'core', 'src'), path.join(out, 'core', 'src'));
for (const f of ['Cargo.toml', 'build.rs', 'src']) copy(path.join(pkgDir, f), path.join(out, 'node', f));

// Resolving the new workspace prunes the lock file to its packages (no version changes), so
// that `cargo build --locked` accepts it on install.
try {
  execFileSync(process.env.CARGO || 'cargo', ['metadata', '--format-version', '1', '--manifest-path', path.join(out, 'Cargo.toml')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
} catch (e) {
  fail(`cargo metadata on ${out} failed: ${e.message}`);
}
