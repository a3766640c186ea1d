// The ESM entry: `import { Server, Client } from 'journalkeeper'` (named) works at run time and
// is the same module as `require('journalkeeper')`.
import test from 'node:test';
import assert from 'node:assert';
import { createRequire } from 'node:module';
import jk, * as named from 'journalkeeper';
import { Server, Client, version } from 'journalkeeper';
import { startCluster } from './support.js';

const require = createRequire(import.meta.url);

test('ESM named exports are exactly the CommonJS exports', () => {
  const cjs = require('journalkeeper');
  assert.strictEqual(jk, cjs);
  const names = Object.keys(named).filter((n) => n !== 'default').sort();
  assert.deepStrictEqual(names, Object.keys(cjs).sort());
  for (const n of names) assert.strictEqual(named[n], cjs[n], n);
  assert.strictEqual(Server, cjs.Server);
  assert.strictEqual(version(), cjs.version());
  assert.strictEqual(typeof named.Kv.prototype.events, 'function'); // journalkeeper.js ran
});

test('the admin API is there from both entries', () => {
  const cjs = require('journalkeeper');
  for (const m of ['addVoter', 'removeVoter', 'updateVoters', 'transferLeader', 'setPreferredLeader', 'clusterConfiguration',
    'takeSnapshot', 'snapshots', 'recoverSnapshot']) {
    assert.strictEqual(typeof named.Admin.prototype[m], 'function', m);
    assert.strictEqual(named.Admin.prototype[m], cjs.Admin.prototype[m], m);
  }
  assert.strictEqual(typeof Server.prototype.waitRemoved, 'function');
  // journalkeeper.js ran: the events() of both entries are the same functions.
  for (const cls of ['Client', 'Server']) {
    assert.strictEqual(typeof named[cls].prototype.events, 'function', cls);
    assert.strictEqual(named[cls].prototype.events, cjs[cls].prototype.events, cls);
  }
  assert.strictEqual(typeof named.ClusterEvents.prototype.close, 'function');
  assert.deepStrictEqual(Object.values(named.Standing), ['JOINING', 'MEMBER', 'REMOVED', 'OBSERVER']);
  assert.strictEqual(named.limits().maxAdminTimeoutMs, 600000);
  // journalkeeper.js ran: the coordination streams are async-iterable from both entries.
  for (const cls of ['ElectionObserver', 'MembersWatch']) {
    assert.strictEqual(typeof named[cls].prototype[Symbol.asyncIterator], 'function', cls);
    assert.strictEqual(named[cls].prototype[Symbol.asyncIterator], cjs[cls].prototype[Symbol.asyncIterator], cls);
  }
});

test('a cluster from ESM', async () => {
  const cluster = await startCluster(1);
  try {
    const client = await Client.connect(cluster.addrs);
    const first = await client.journal.append(0, [Buffer.from('esm')]);
    const [entry] = await client.journal.get(0, first, 1);
    assert.strictEqual(entry.payload.toString(), 'esm');
    // The admin calls work from ESM: a one-node cluster's only voter stays.
    assert.strictEqual(cluster.servers[0].status().standing, 'MEMBER');
    await client.admin.setPreferredLeader(1);
    await client.admin.transferLeader(1); // already the leader: done at once
    await assert.rejects(client.admin.removeVoter(1), { code: 'INVALID_ARGUMENT', message: /only voter/ });
    const conf = await client.admin.clusterConfiguration();
    assert.deepStrictEqual(conf.voters.map((m) => m.nodeId), [1]);
    // Events and snapshots from ESM.
    for await (const e of client.events()) {
      assert.strictEqual(e.kind, 'leaderChanged');
      break;
    }
    const index = await client.admin.takeSnapshot();
    const [node] = await client.admin.snapshots();
    assert.ok(node.snapshots.some((s) => s.index === index));
    // Coordination from ESM: a lock's token, an observer as an async iterator.
    const lease = await client.coord.grant(60000);
    const token = await client.coord.lock('esm-lock', lease);
    assert.ok(token > 0);
    const observer = await client.coord.observe('esm-election');
    const campaigned = await client.coord.campaign('esm-election', Buffer.from('esm'), lease);
    for await (const leader of observer) {
      if (leader === null) continue; // observed before the campaign took effect
      assert.deepStrictEqual([leader.value.toString(), leader.token], ['esm', campaigned]);
      break;
    }
    assert.strictEqual(await client.coord.revoke(lease), true);
    // A journal transaction from ESM: invisible until its commit, then there.
    const end = (await client.journal.maxIndices())['0'];
    const tx = await client.transactions.create({ context: { from: 'esm' } });
    assert.strictEqual(await client.transactions.append(tx, 0, [Buffer.from('esm-tx')]), 1);
    await assert.rejects(client.journal.get(0, end, 1), { code: 'INDEX_OVERFLOW' });
    await client.transactions.commit(tx);
    const [txEntry] = await client.journal.get(0, end, 1);
    assert.strictEqual(txEntry.payload.toString(), 'esm-tx');
    await client.close();
  } finally {
    await cluster.close();
  }
});

test('a user state machine from ESM: hosted, updated, queried, snapshotted', async () => {
  let count = 0n;
  const counter = {
    apply(ctx, command) {
      count += BigInt(command.toString());
      return Buffer.from(String(count));
    },
    query() {
      return Buffer.from(String(count));
    },
    snapshot() {
      return Buffer.from(String(count));
    },
    restore(chunk) {
      count = BigInt(chunk.toString());
    },
  };
  const cluster = await startCluster(1, () => ({ counter }));
  try {
    const client = await Client.connect(cluster.addrs);
    const sm = client.stateMachine('counter');
    assert.strictEqual((await sm.update(Buffer.from('5'))).toString(), '5');
    assert.strictEqual((await sm.query(Buffer.from(''))).toString(), '5');
    await client.admin.takeSnapshot();
    await client.close();
  } finally {
    await cluster.close();
  }
});

test('the SQL database from ESM: execute, query, refusals', async () => {
  const cjs = require('journalkeeper');
  assert.strictEqual(named.Sql, cjs.Sql);
  assert.strictEqual(typeof named.Client.prototype.sql, 'function');
  const cluster = await startCluster(1);
  try {
    const client = await Client.connect(cluster.addrs);
    const sql = client.sql();
    assert.ok(sql instanceof named.Sql);
    const r = await sql.execute(['CREATE TABLE esm (id INTEGER PRIMARY KEY, v)',
      { sql: 'INSERT INTO esm (v) VALUES (?1), (?2)', params: ['esm', 2n ** 60n] }]);
    assert.deepStrictEqual(r, { rowsAffected: 2, lastInsertId: 2 });
    const answer = await sql.query('SELECT v FROM esm ORDER BY id', [], { consistency: 'SEQUENTIAL' });
    assert.deepStrictEqual(answer, { columns: ['v'], rows: [['esm'], [2n ** 60n]] });
    await assert.rejects(sql.execute(['DELETE FROM esm', 'SELECT random()']),
      { code: 'REJECTED', message: /^statement 2 .*random\(\) is refused/ });
    assert.deepStrictEqual((await sql.query('SELECT count(*) FROM esm')).rows, [[2]]);
    await client.close();
  } finally {
    await cluster.close();
  }
});
