// Test helpers: an embedded cluster on loopback ports in a temp directory.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Server, Client } = require('..');

const CLUSTER_ID = 42;

/** `n` distinct free loopback ports (bound, read, released). */
async function freePorts(n) {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * Starts an `n`-node cluster with fast timeouts; returns { servers, addrs, dir, close }.
 * `machines(i)`, when given, is the `stateMachines` of node `i` (0-based).
 */
async function startCluster(n = 3, machines = null) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jk-node-'));
  const addrs = (await freePorts(n)).map((p) => `127.0.0.1:${p}`);
  const peers = Object.fromEntries(addrs.map((a, i) => [String(i + 1), a]));
  const servers = await Promise.all(addrs.map((listen, i) => Server.start({
    nodeId: i + 1,
    listen,
    clusterId: CLUSTER_ID,
    dataDir: path.join(dir, `n${i + 1}`),
    peers,
    electionTimeoutMs: 300,
    heartbeatIntervalMs: 30,
    tickMs: 5,
    partitions: [0, 1],
  }, machines ? { stateMachines: machines(i) } : undefined)));
  return {
    servers,
    addrs,
    dir,
    async close() {
      await Promise.all(servers.map((s) => s.close()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function connect(addrs) {
  return Client.connect(addrs, { clusterId: CLUSTER_ID, requestTimeoutMs: 10000 });
}

/** Polls `check` every 10 ms until it returns a truthy value or `ms` pass. */
async function eventually(what, check, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Runs `script` in a child `node -e` (cwd: tests/); resolves to { code, out } once it exits
 * on its own, rejects (killing it) when it has not within `timeoutMs`.
 */
function runChild(script, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], {
      cwd: __dirname,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not exit within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** What a child script of `runChild` starts with: the helpers of this file in scope. */
const childPrelude = `
const { startCluster, connect, eventually } = require(${JSON.stringify(__filename)});
`;

module.exports = { CLUSTER_ID, freePorts, startCluster, connect, eventually, runChild, childPrelude };
