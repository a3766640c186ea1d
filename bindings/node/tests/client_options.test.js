// Client options and connection errors against an embedded 1-node cluster: a request timeout
// alone is valid (the attempt timeout follows it); a wrong cluster id rejects at once with
// code WRONG_CLUSTER.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { Client } = require('..');
const { CLUSTER_ID, startCluster, eventually } = require('./support');

test('client options and cluster ids', async (t) => {
  const cluster = await startCluster(1);
  t.after(() => cluster.close());
  await eventually('a leader', () => cluster.servers[0].status().role === 'LEADER');

  await t.test('only requestTimeoutMs (below the default attempt timeout) is enough', async () => {
    const client = await Client.connect(cluster.addrs, { clusterId: CLUSTER_ID, requestTimeoutMs: 1500 });
    try {
      assert.strictEqual(typeof (await client.journal.append(0, [Buffer.from('t')])), 'number');
    } finally {
      await client.close();
    }
    await assert.rejects(
      Client.connect(cluster.addrs, { clusterId: CLUSTER_ID, requestTimeoutMs: 1500, attemptTimeoutMs: 5000 }),
      (e) => e.code === 'INVALID_ARGUMENT' && /attempt_timeout/.test(e.message),
    );
  });

  await t.test('a wrong cluster id rejects with WRONG_CLUSTER at once', async () => {
    const started = Date.now();
    await assert.rejects(
      Client.connect(cluster.addrs, { clusterId: CLUSTER_ID + 1, requestTimeoutMs: 30000 }),
      (e) => e.code === 'WRONG_CLUSTER' && e.message.includes(`cluster id is ${CLUSTER_ID}`),
    );
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  });
});
