// JournalKeeper from Node.js: start an embedded 3-node cluster on loopback ports, append to
// and read from the journal, use the KV with a watch, then close everything. The process
// exits on its own: watches and servers never keep it alive.
//
//   node examples/node/example.js        (after `make node-test`, or `npm install ./bindings/node`)
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Server, Client } = require('../../bindings/node');

async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jk-example-'));
  const addrs = [];
  for (let i = 0; i < 3; i++) addrs.push(`127.0.0.1:${await freePort()}`);
  const peers = Object.fromEntries(addrs.map((a, i) => [String(i + 1), a]));
  const servers = await Promise.all(addrs.map((listen, i) => Server.start({
    nodeId: i + 1, listen, clusterId: 42, dataDir: path.join(dir, `n${i + 1}`), peers,
  })));
  console.log('cluster started on', addrs.join(', '));

  const client = await Client.connect(addrs, { clusterId: 42 });
  const first = await client.journal.append(0, [Buffer.from('hello'), Buffer.from('world')]);
  const entries = await client.journal.get(0, first, 10);
  console.log('journal:', entries.map((e) => `#${e.index} ${e.payload}`).join(', '));

  const seen = [];
  const watch = await client.kv.watch({ prefix: 'config/' }, 0, (err, event) => {
    if (event) seen.push(`${event.key}=${event.newValue ?? '(removed)'}`);
    else console.log('watch:', err.code, err.message);
  });
  await client.kv.set('config/a', Buffer.from('1'));
  const cas = await client.kv.compareAndSet('config/a', Buffer.from('1'), Buffer.from('2'));
  console.log('kv: config/a swapped', cas.swapped, '->', String(await client.kv.get('config/a')));
  while (seen.length < 2) await new Promise((r) => setTimeout(r, 10));
  console.log('watch saw:', seen.join(', '));
  watch.close();

  try {
    await client.journal.get(0, first + 1000, 1);
  } catch (e) {
    console.log('expected error:', e.code);
  }

  const cfg = await client.admin.clusterConfiguration();
  console.log('leader:', cfg.leader && cfg.leader.addr);
  await client.close();
  await Promise.all(servers.map((s) => s.close()));
  fs.rmSync(dir, { recursive: true, force: true });
  console.log('closed');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
