// Cluster event subscriptions never keep the process alive by themselves: a child holding an
// open callback subscription (client or server) exits on its own, and so does one that leaves
// a for-await loop over client.events() / server.events() or holds iterators it does not await.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { runChild, childPrelude: prelude } = require('./support');

test('open event subscriptions (callback) do not keep the process alive', async () => {
  const { code, out } = await runChild(`${prelude}
(async () => {
  const cluster = await startCluster(1);
  const client = await connect(cluster.addrs);
  let got = null;
  globalThis.sub = await client.events((err, ev) => { if (ev && !got) got = ev; });
  globalThis.local = cluster.servers[0].events(() => {});
  await eventually('event', () => got);
  console.log('subscribed', got.kind);
})();
`);
  assert.strictEqual(code, 0, out);
  assert.match(out, /subscribed leaderChanged/);
});

test('the process exits after leaving for-await loops over client.events() and server.events()', async () => {
  const { code, out } = await runChild(`${prelude}
(async () => {
  const cluster = await startCluster(1);
  const client = await connect(cluster.addrs);
  for await (const ev of client.events()) { console.log('client', ev.kind); break; }
  for await (const ev of cluster.servers[0].events()) { console.log('server', ev.kind); break; }
  console.log('left loops');
})();
`);
  assert.strictEqual(code, 0, out);
  assert.match(out, /client leaderChanged\nserver leaderChanged\nleft loops/);
});

test('iterators without a pending next() do not keep the process alive', async () => {
  const { code, out } = await runChild(`${prelude}
(async () => {
  const cluster = await startCluster(1);
  const client = await connect(cluster.addrs);
  globalThis.its = [client.events(), cluster.servers[0].events()];
  const first = await globalThis.its[0].next();
  console.log('open', first.value.kind);
})();
`);
  assert.strictEqual(code, 0, out);
  assert.match(out, /open leaderChanged/);
});
