// A hosted JS state machine never keeps the process alive, and closing the server while the
// apply thread waits for the (busy) JS thread completes: the close runs off the JS thread,
// which then serves the pending apply.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { runChild, childPrelude: prelude } = require('./support');

const machine = `
const counter = { n: 0,
  apply(ctx, c) { this.n += Number(c.toString()); return Buffer.from(String(this.n)); },
  query() { return Buffer.from(String(this.n)); },
  snapshot() { return [Buffer.from(String(this.n))]; },
  restore(chunk) { this.n = Number(chunk.toString()); },
};`;

test('a running server hosting a JS machine does not keep the process alive', async () => {
  const { code, out } = await runChild(`${prelude}${machine}
(async () => {
  const cluster = await startCluster(1, () => ({ counter }));
  const client = await connect(cluster.addrs);
  console.log('applied', (await client.stateMachine('counter').update(Buffer.from('7'))).toString());
})();
`);
  assert.strictEqual(code, 0, out);
  assert.match(out, /applied 7/);
});

test('server.close() while the apply thread waits for the busy JS thread does not deadlock', async () => {
  const { code, out } = await runChild(`${prelude}${machine}
(async () => {
  const cluster = await startCluster(1, () => ({ counter }));
  const server = cluster.servers[0];
  const client = await connect(cluster.addrs);
  await client.stateMachine('counter').update(Buffer.from('1'));
  const pending = client.stateMachine('counter').update(Buffer.from('2')).then(
    (r) => 'applied ' + r, (e) => 'failed ' + e.code);
  // Hold the JS thread until the entry is committed but not applied: the apply thread is
  // then waiting for this thread.
  const deadline = Date.now() + 10000;
  for (;;) {
    const s = server.status();
    if (s.commitIndex > s.appliedIndex) break;
    if (Date.now() > deadline) { console.log('never saw a waiting apply'); break; }
  }
  await server.close();
  console.log('closed');
  await client.close(); // the update's reply may be lost with the node: CLOSED then
  console.log('update', await pending);
})();
`);
  assert.strictEqual(code, 0, out);
  assert.match(out, /closed\nupdate (applied 3|failed \w+)/);
  assert.doesNotMatch(out, /never saw/);
});
