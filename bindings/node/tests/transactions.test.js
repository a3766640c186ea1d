// Journal transactions (`client.transactions`) on one embedded 3-node cluster: a committed one
// is invisible at every level until its commit, then readable in append order with its batch
// sizes and one store time; an aborted one never appears; `opening()` lists and clears; calls
// on an ended transaction reject with INVALID_ARGUMENT; argument errors reject.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startCluster, connect } = require('./support');

const LEVELS = ['STRICT', 'SEQUENTIAL', 'NONE'];
let cluster;
let client;

test.before(async () => {
  cluster = await startCluster(3);
  client = await connect(cluster.addrs);
  // Partition 1 does not start empty.
  await client.journal.append(1, [Buffer.from('before')]);
});

test.after(async () => {
  await client.close();
  await cluster.close();
});

const buffers = (...xs) => xs.map((x) => Buffer.from(x));
const maxIndex = async (partition, consistency = 'STRICT') =>
  (await client.journal.maxIndices({ consistency }))[String(partition)];

/** Nothing of `partition` at or after `end` is readable at any level (at NONE the node answering
 * may not have applied everything before `end` yet). */
async function nothingAfter(partition, end) {
  for (const consistency of LEVELS) {
    const max = await maxIndex(partition, consistency);
    assert.ok(consistency === 'NONE' ? max <= end : max === end, `${consistency}: ${max} vs ${end}`);
    await assert.rejects(client.journal.get(partition, end, 16, { consistency }), { code: 'INDEX_OVERFLOW' });
  }
}

async function listed(tx) {
  return (await client.transactions.opening()).find((t) => t.tx === tx);
}

test('argument errors reject with INVALID_ARGUMENT naming the argument', async () => {
  const txns = client.transactions;
  await assert.rejects(txns.create({ timeoutMs: 1 }), { code: 'INVALID_ARGUMENT', message: /timeout/ });
  await assert.rejects(txns.create({ timeoutMs: -1 }), { code: 'INVALID_ARGUMENT', message: /timeoutMs/ });
  await assert.rejects(txns.create('ctx'), { code: 'INVALID_ARGUMENT', message: /options/ });
  await assert.rejects(txns.create({ context: { k: 1 } }), { code: 'INVALID_ARGUMENT', message: /options/ });
  await assert.rejects(txns.append('1', 0, buffers('x')), { code: 'INVALID_ARGUMENT', message: /tx/ });
  await assert.rejects(txns.append(1, 0, ['x']), { code: 'INVALID_ARGUMENT', message: /entries\[0\]/ });
  await assert.rejects(txns.commit(null), { code: 'INVALID_ARGUMENT', message: /tx/ });
  await assert.rejects(txns.opening({ consistency: 'EVENTUAL' }), { code: 'INVALID_ARGUMENT' });
  assert.deepStrictEqual(await txns.opening(), []);
});

test('a committed transaction appears whole, in append order, after its commit', async () => {
  const txns = client.transactions;
  const [end0, end1] = [await maxIndex(0), await maxIndex(1)];
  const tx = await txns.create({ context: { order: '42', source: 'node' }, timeoutMs: 30000 });
  assert.strictEqual(await txns.append(tx, 1, buffers('a1', 'a2')), 2);
  assert.strictEqual(await txns.append(tx, 0, buffers('b1')), 3);
  assert.strictEqual(await txns.append(tx, 1, buffers('a3')), 4);
  await assert.rejects(txns.append(tx, 9, buffers('x')), { code: 'INVALID_ARGUMENT', message: /no such partition/ });

  await nothingAfter(1, end1);
  await nothingAfter(0, end0);
  assert.deepStrictEqual(await listed(tx), {
    tx,
    context: { order: '42', source: 'node' },
    phase: 'OPEN',
    entries: 4,
    bytes: 8,
    partitions: [0, 1],
  });

  assert.strictEqual(await txns.commit(tx), undefined);
  const got = await client.journal.get(1, end1, 16);
  assert.deepStrictEqual(got.map((e) => [e.payload.toString(), e.batchSize, e.offset]), [
    ['a1', 2, 0],
    ['a2', 2, 1],
    ['a3', 1, 0],
  ]);
  assert.strictEqual(got[0].index, end1);
  const [b1] = await client.journal.get(0, end0, 16);
  assert.deepStrictEqual([b1.payload.toString(), b1.batchSize], ['b1', 1]);
  assert.deepStrictEqual(new Set(got.map((e) => e.timestampMs)), new Set([b1.timestampMs]));

  assert.strictEqual(await listed(tx), undefined);
  await assert.rejects(txns.commit(tx), { code: 'INVALID_ARGUMENT', message: /not open/ });
  await assert.rejects(txns.append(tx, 1, buffers('late')), { code: 'INVALID_ARGUMENT', message: /not open/ });
});

test('an aborted transaction never appears', async () => {
  const txns = client.transactions;
  const end = await maxIndex(1);
  const tx = await txns.create();
  assert.strictEqual(await txns.append(tx, 1, buffers('lost1', 'lost2')), 2);
  const info = await listed(tx);
  assert.deepStrictEqual([info.context, info.phase, info.entries], [{}, 'OPEN', 2]);

  assert.strictEqual(await txns.abort(tx), true);
  assert.strictEqual(await txns.abort(tx), false);
  assert.strictEqual(await listed(tx), undefined);
  await assert.rejects(txns.commit(tx), { code: 'INVALID_ARGUMENT', message: /not open/ });
  // A plain append after the abort is the partition's next entry.
  assert.strictEqual(await client.journal.append(1, buffers('after')), end);
  const got = await client.journal.get(1, end, 16);
  assert.deepStrictEqual(got.map((e) => e.payload.toString()), ['after']);
  assert.deepStrictEqual(await txns.opening({ consistency: 'STRICT' }), []);
});
