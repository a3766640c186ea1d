// Argument errors: a wrong type, a missing argument or a bad option rejects the Promise with
// `code: 'INVALID_ARGUMENT'` and a message naming the argument — never a synchronous throw
// and never napi's own codes (`InvalidArg`, `NumberExpected`, …).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { Server, Client } = require('..');
const { CLUSTER_ID, startCluster } = require('./support');

/** `call()` returns a Promise (no sync throw) rejecting with INVALID_ARGUMENT matching `message`. */
async function rejectsInvalid(call, message) {
  let p;
  assert.doesNotThrow(() => { p = call(); }, 'argument errors reject, they never throw');
  assert.ok(p instanceof Promise, 'the call returns a Promise');
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof Error, `an Error, got ${e}`);
    assert.strictEqual(e.code, 'INVALID_ARGUMENT', `code of ${e.message}`);
    assert.match(e.message, message);
    return true;
  });
}

test('argument errors reject with INVALID_ARGUMENT naming the argument', async (t) => {
  const cluster = await startCluster(1);
  t.after(() => cluster.close());
  // No options object: the default cluster id (42, as the CLI's) is used.
  assert.strictEqual(CLUSTER_ID, 42);
  const client = await Client.connect(cluster.addrs);
  t.after(() => client.close());
  const buf = Buffer.from('x');

  await t.test('Client.connect(addrs) without options reaches the cluster', async () => {
    await client.kv.set('defaults/a', Buffer.from('1'));
    assert.deepStrictEqual(await client.kv.get('defaults/a'), Buffer.from('1'));
    const other = await Client.connect(cluster.addrs, null);
    assert.deepStrictEqual(await other.kv.get('defaults/a'), Buffer.from('1'));
    await other.close();
  });

  await t.test('Client.connect', async () => {
    await rejectsInvalid(() => Client.connect(cluster.addrs[0]), /addrs must be an array of strings, got string/);
    await rejectsInvalid(() => Client.connect(), /addrs must be an array of strings, got undefined/);
    await rejectsInvalid(() => Client.connect([7001]), /addrs\[0\] must be a string, got number/);
    await rejectsInvalid(() => Client.connect(cluster.addrs, 42), /options must be an object, got number/);
    await rejectsInvalid(() => Client.connect(cluster.addrs, { clusterId: 'x' }), /options.*clusterId/);
    await rejectsInvalid(() => Client.connect(cluster.addrs, { clusterId: -1 }), /clusterId/);
    await rejectsInvalid(() => Client.connect(cluster.addrs, { requestTimeoutMs: '5' }), /options.*requestTimeoutMs/);
  });

  await t.test('Server.start', async () => {
    await rejectsInvalid(() => Server.start(), /config must be the TOML text or an options object, got undefined/);
    await rejectsInvalid(() => Server.start(7), /config must be .*, got number/);
    await rejectsInvalid(() => Server.start({ listen: '127.0.0.1:0', clusterId: 1, dataDir: '/tmp/x' }), /config.*nodeId/);
    await rejectsInvalid(() => Server.start({ nodeId: 'one', listen: '127.0.0.1:0', clusterId: 1, dataDir: '/tmp/x' }), /config.*nodeId/);
    await rejectsInvalid(() => Server.start({ nodeId: 1, listen: '127.0.0.1:0', clusterId: 1, dataDir: '/tmp/x', peers: { 1: 7 } }), /config.*peers/);
  });

  await t.test('journal', async () => {
    const j = client.journal;
    await rejectsInvalid(() => j.append('0', [buf]), /partition must be a number, got string/);
    await rejectsInvalid(() => j.append(), /partition must be a number, got undefined/);
    await rejectsInvalid(() => j.append(0), /entries must be an array of Buffers, got undefined/);
    await rejectsInvalid(() => j.append(0, buf), /entries must be an array of Buffers, got Buffer/);
    await rejectsInvalid(() => j.append(0, ['x']), /entries\[0\] must be a Buffer, got string/);
    await rejectsInvalid(() => j.append(0, [buf, {}]), /entries\[1\] must be a Buffer, got object/);
    await rejectsInvalid(() => j.append(0, [buf], 'ALL'), /options must be an object, got string/);
    await rejectsInvalid(() => j.append(0, [buf], { response: 'BOGUS' }), /options.*response/);
    await rejectsInvalid(() => j.get(0, '1', 10), /index must be a number, got string/);
    await rejectsInvalid(() => j.get(0, 0), /maxEntries must be a number, got undefined/);
    await rejectsInvalid(() => j.get(0, 0, 1, { consistency: 1 }), /options.*consistency/);
    await rejectsInvalid(() => j.maxIndices(true), /options must be an object, got boolean/);
    await rejectsInvalid(() => j.queryIndex(0, null), /timestampMs must be a number, got null/);
    await rejectsInvalid(() => j.scalePartitions(0), /partitions must be an array of partition numbers, got number/);
    await rejectsInvalid(() => j.scalePartitions([0, 'a']), /partitions\[1\] must be a number, got string/);
    // A valid call after all of these still works.
    assert.strictEqual(typeof await j.append(0, [buf]), 'number');
  });

  await t.test('kv, watch, admin', async () => {
    const kv = client.kv;
    await rejectsInvalid(() => kv.set(1, buf), /key must be a string, got number/);
    await rejectsInvalid(() => kv.set('k', 'v'), /value must be a Buffer, got string/);
    await rejectsInvalid(() => kv.set('k'), /value must be a Buffer, got undefined/);
    await rejectsInvalid(() => kv.get(), /key must be a string, got undefined/);
    await rejectsInvalid(() => kv.exists('k', 'STRICT'), /options must be an object, got string/);
    await rejectsInvalid(() => kv.remove([]), /key must be a string, got array/);
    await rejectsInvalid(() => kv.list(null), /prefix must be a string, got null/);
    await rejectsInvalid(() => kv.compareAndSet('k', 'x', null), /expect must be a Buffer or null, got string/);
    await rejectsInvalid(() => kv.compareAndSet('k', null, 5), /value must be a Buffer or null, got number/);
    await rejectsInvalid(() => kv.watch('k', 0, () => {}), /filter must be an object, got string/);
    await rejectsInvalid(() => kv.watch({ key: 1 }, 0, () => {}), /filter.*key/);
    await rejectsInvalid(() => kv.watch({ key: 'k' }, '0', () => {}), /fromIndex must be a number, got string/);
    await rejectsInvalid(() => kv.watch({ key: 'k' }, 0), /callback must be a function, got undefined/);
    await rejectsInvalid(() => kv.events({ key: 1 }).next(), /filter.*key/);
    await rejectsInvalid(() => client.admin.status(1), /node must be a string, got number/);
  });
});
