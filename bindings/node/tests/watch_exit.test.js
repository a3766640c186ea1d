// A watch's callback never keeps the process alive: a child that watches, receives an event,
// closes the watch and the client (servers too) exits on its own, and so does one that leaves
// its watch open.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { runChild, childPrelude: prelude } = require('./support');

test('the process exits on its own after watch.close()', async () => {
  const { code, out } = await runChild(`${prelude}
(async () => {
  const cluster = await startCluster(3);
  const client = await connect(cluster.addrs);
  let got = null;
  const w = await client.kv.watch({ key: 'k' }, 0, (err, ev) => { if (ev) got = ev; else console.log('transient', err.code); });
  await client.kv.set('k', Buffer.from('v'));
  await eventually('event', () => got);
  w.close();
  await client.close();
  await cluster.close();
  console.log('done', got.key);
})();
`);
  assert.strictEqual(code, 0, out);
  assert.match(out, /done k/);
});

test('an open watch does not keep the process alive either', async () => {
  const { code, out } = await runChild(`${prelude}
(async () => {
  const cluster = await startCluster(1);
  const client = await connect(cluster.addrs);
  globalThis.w = await client.kv.watch({ prefix: '' }, 0, () => {});
  console.log('watching');
})();
`);
  assert.strictEqual(code, 0, out);
  assert.match(out, /watching/);
});

test('the process exits after leaving a for-await loop over kv.events()', async () => {
  const { code, out } = await runChild(`${prelude}
(async () => {
  const cluster = await startCluster(1);
  const client = await connect(cluster.addrs);
  const it = client.kv.events({ key: 'k' }, 0);
  setTimeout(() => client.kv.set('k', Buffer.from('v')), 100);
  for await (const ev of it) { console.log('event', ev.key); break; }
  console.log('left loop');
})();
`);
  assert.strictEqual(code, 0, out);
  assert.match(out, /event k\nleft loop/);
});
