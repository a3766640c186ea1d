// ONE_WAY appends through a client whose first server is a follower: all stored after
// `close()` right after the last send, and after `flush()`.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startCluster, connect, eventually } = require('./support');

async function followerFirst(cluster) {
  const leader = await eventually('a leader', () => {
    const i = cluster.servers.findIndex((s) => s.status().role === 'LEADER');
    return i >= 0 ? i + 1 : null;
  });
  const follower = leader % cluster.addrs.length; // the index of the node after the leader
  return [cluster.addrs[follower], ...cluster.addrs.filter((_, i) => i !== follower)];
}

async function readAll(cluster, partition) {
  const reader = await connect(cluster.addrs);
  const out = [];
  try {
    for (;;) {
      const got = await reader.journal.get(partition, out.length, 4096, { consistency: 'STRICT' });
      out.push(...got.map((e) => e.payload.toString()));
    }
  } catch (e) {
    if (e.code !== 'INDEX_OVERFLOW') throw e;
  } finally {
    await reader.close();
  }
  return out;
}

test('ONE_WAY appends are all stored after close() and after flush()', async (t) => {
  const cluster = await startCluster(3);
  t.after(() => cluster.close());
  const want = Array.from({ length: 200 }, (_, i) => `ow${i}`);

  const closing = await connect(await followerFirst(cluster));
  for (const p of want) {
    assert.strictEqual(await closing.journal.append(0, [Buffer.from(p)], { response: 'ONE_WAY' }), null);
  }
  await closing.close(); // right after the last send: flushes first
  assert.deepStrictEqual(await readAll(cluster, 0), want);
  await assert.rejects(closing.journal.append(0, [Buffer.from('late')], { response: 'ONE_WAY' }),
    (e) => e.code === 'CLOSED');

  const flushing = await connect(await followerFirst(cluster));
  for (const p of want) {
    await flushing.journal.append(1, [Buffer.from(p)], { response: 'ONE_WAY' });
  }
  await flushing.flush(10000);
  assert.deepStrictEqual(await readAll(cluster, 1), want);
  await flushing.close();
});
