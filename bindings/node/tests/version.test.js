// The addon loads and reports the workspace version from Cargo.toml.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const jk = require('..');

test('version matches Cargo.toml', () => {
  const cargo = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'Cargo.toml'), 'utf8');
  const m = cargo.match(/\[workspace\.package\][^[]*?version\s*=\s*"([^"]+)"/);
  assert.ok(m, 'workspace version found in Cargo.toml');
  assert.strictEqual(jk.version(), m[1]);
});
