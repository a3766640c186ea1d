// Cluster events and snapshot administration, as a user does them: a fresh embedded 3-node
// cluster per test; events from a client and from an embedded server (callback and async
// iterator) name the new leader after a transfer and end when closed (or when their client /
// server is); a snapshot is taken, listed on every node and recovered.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { Client, ClusterEvents, ErrorCode, limits, vocabulary } = require('..');
const { CLUSTER_ID, startCluster, eventually } = require('./support');

const WAIT = 30000;

/** The leader's id, once every node knows it (so a stream's first event names it). */
function settled(cluster) {
  return eventually('every node knows the leader', () => {
    const known = cluster.servers.map((s) => s.status().leader);
    return known[0] !== undefined && known.every((l) => l === known[0]) ? known[0] : null;
  }, WAIT);
}

/** A callback that records what it is given. */
function recorder() {
  const events = [];
  const errors = [];
  return {
    events,
    errors,
    callback(err, event) {
      if (err) errors.push(err);
      else events.push(event);
    },
    until(what, pred) {
      return eventually(what, () => events.find(pred), WAIT);
    },
  };
}

const leaderIs = (id) => (e) => e.kind === 'leaderChanged' && e.leader !== undefined && e.leader.nodeId === id;

/** Rejects when `promise` has not settled within `ms`. */
function within(what, promise, ms = WAIT) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function fresh(t) {
  const cluster = await startCluster(3);
  const client = await Client.connect(cluster.addrs, { clusterId: CLUSTER_ID, requestTimeoutMs: 30000 });
  t.after(async () => {
    await client.close();
    await cluster.close();
  });
  const leader = await settled(cluster);
  const other = [1, 2, 3].find((id) => id !== leader);
  return { cluster, client, leader, other };
}

test('client events (callback) start with the state and name the new leader after a transfer', async (t) => {
  const { cluster, client, leader, other } = await fresh(t);
  const r = recorder();
  const sub = await client.events(r.callback);
  assert.ok(sub instanceof ClusterEvents);
  await eventually('the whole state', () => r.events.length >= 4, WAIT);
  const [first, voters, role, journal] = r.events;
  assert.deepStrictEqual(first, { kind: 'leaderChanged', leader: { nodeId: leader, addr: cluster.addrs[leader - 1] }, term: first.term });
  assert.ok(first.term > 0);
  assert.strictEqual(voters.kind, 'votersChanged');
  assert.deepStrictEqual(voters.configuration.voters.map((m) => m.nodeId).sort(), [1, 2, 3]);
  assert.strictEqual(voters.configuration.leader, undefined);
  assert.strictEqual(role.kind, 'roleChanged');
  assert.ok(vocabulary().roles.includes(role.role), role.role);
  assert.strictEqual(typeof role.nodeId, 'number');
  assert.deepStrictEqual(journal, { kind: 'journalChanged', partition: 0, minIndex: 0, maxIndex: journal.maxIndex });

  await client.admin.transferLeader(other, { timeoutMs: 30000 });
  const e = await r.until('leaderChanged naming the new leader', leaderIs(other));
  assert.deepStrictEqual(e, { kind: 'leaderChanged', leader: { nodeId: other, addr: cluster.addrs[other - 1] }, term: e.term });
  assert.ok(e.term > first.term);
  sub.close();
  sub.close(); // idempotent
  assert.deepStrictEqual(r.errors, []);

  // A bad callback rejects; closing the client ends a subscription with CLOSED.
  await assert.rejects(client.events('soon'), { code: 'INVALID_ARGUMENT', message: /callback must be a function/ });
  const last = recorder();
  await client.events(last.callback);
  await eventually('an event', () => last.events.length > 0, WAIT);
  await client.close();
  const closed = await eventually('CLOSED', () => last.errors.find((err) => err.code === 'CLOSED'), WAIT);
  assert.ok(closed instanceof Error);
});

test('server events name the new leader; iteration ends when the server stops', async (t) => {
  const { cluster, client, other } = await fresh(t);
  const server = cluster.servers[other - 1];
  assert.throws(() => server.events(42), { code: 'INVALID_ARGUMENT', message: /callback must be a function/ });
  const r = recorder();
  const sub = server.events(r.callback);
  assert.ok(sub instanceof ClusterEvents);

  const it = server.events();
  const { value: first, done } = await within('the first event', it.next());
  assert.strictEqual(done, false);
  assert.strictEqual(first.kind, 'leaderChanged');
  await client.admin.transferLeader(other, { timeoutMs: 30000 });
  let became = null;
  await within('the new leader and its role', (async () => {
    let named = false;
    for await (const e of it) {
      if (leaderIs(other)(e)) named = true;
      if (named && e.kind === 'roleChanged' && e.role === 'LEADER') {
        became = e;
        break; // leaves the loop: closes the iterator
      }
    }
  })());
  assert.deepStrictEqual(became, { kind: 'roleChanged', nodeId: other, role: 'LEADER' });
  assert.deepStrictEqual(await it.next(), { value: undefined, done: true });
  await r.until('the callback saw it too', leaderIs(other));

  // A pending iteration ends (without an error) when the server stops; the callback gets CLOSED.
  const more = server.events();
  const drained = (async () => {
    const got = [];
    for await (const e of more) got.push(e);
    return got;
  })();
  await within('an event', more.next());
  await server.close();
  await within('the end of the iteration', drained);
  await eventually('CLOSED to the callback', () => r.errors.find((e) => e.code === 'CLOSED'), WAIT);
  assert.throws(() => server.events(() => {}), { code: 'CLOSED' });
  await assert.rejects(server.events().next(), { code: 'CLOSED' });
});

test('client events iterate with for await; close() ends a pending iteration, so does client.close()', async (t) => {
  const { cluster, other } = await fresh(t);
  const client = await Client.connect(cluster.addrs, { clusterId: CLUSTER_ID, requestTimeoutMs: 30000 });
  t.after(() => client.close());
  const it = client.events();
  const got = [];
  const reading = (async () => {
    for await (const e of it) got.push(e);
  })();
  await client.admin.transferLeader(other, { timeoutMs: 30000 });
  await eventually('leaderChanged naming the new leader', () => got.find(leaderIs(other)), WAIT);
  it.close();
  await within('the end of the iteration', reading);
  assert.strictEqual(got[0].kind, 'leaderChanged');
  assert.deepStrictEqual(await it.next(), { value: undefined, done: true });

  const last = client.events();
  const first = await within('an event', last.next());
  assert.strictEqual(first.done, false);
  const rest = (async () => {
    for await (const e of last) void e;
  })();
  await client.close();
  await within('the end of the iteration after client.close()', rest);
});

test('a snapshot is taken, listed on every node and recovered', async (t) => {
  const { cluster, client } = await fresh(t);
  const admin = client.admin;
  await client.kv.set('snap/k', Buffer.from('1'));
  const index = await admin.takeSnapshot({ timeoutMs: 30000 });
  assert.ok(Number.isInteger(index) && index > 0, `${index}`);
  const nodes = await eventually('every node lists the snapshot', async () => {
    const n = await admin.snapshots();
    const ok = n.length === 3 && n.every((x) => x.error === undefined && x.snapshots.some((s) => s.index === index));
    return ok ? n : null;
  }, WAIT);
  assert.deepStrictEqual(nodes.map((n) => [n.nodeId, n.addr]), cluster.addrs.map((a, i) => [i + 1, a]));
  const snap = nodes[0].snapshots.find((s) => s.index === index);
  assert.ok(snap.term > 0 && snap.sizeBytes > 0, JSON.stringify(snap));
  assert.ok(Math.abs(snap.timeMs - Date.now()) < 600000, `${snap.timeMs}`);

  await client.kv.set('snap/k', Buffer.from('2'));
  assert.strictEqual(String(await client.kv.get('snap/k')), '2');
  await admin.recoverSnapshot(index, { timeoutMs: 30000 });
  assert.strictEqual(String(await client.kv.get('snap/k')), '1');

  // A snapshot no node retains, and bad arguments: INVALID_ARGUMENT naming the problem.
  await assert.rejects(admin.recoverSnapshot(index + 1000), { code: 'INVALID_ARGUMENT', message: new RegExp(`snapshot ${index + 1000}`) });
  assert.strictEqual(String(await client.kv.get('snap/k')), '1');
  await assert.rejects(admin.recoverSnapshot(-1), { code: 'INVALID_ARGUMENT', message: /index/ });
  await assert.rejects(admin.recoverSnapshot('1'), { code: 'INVALID_ARGUMENT', message: /index must be a number/ });
  await assert.rejects(admin.recoverSnapshot(2 ** 53), { code: 'INVALID_ARGUMENT', message: /index/ });
  await assert.rejects(admin.recoverSnapshot(index, 'soon'), { code: 'INVALID_ARGUMENT', message: /options must be an object/ });
  await assert.rejects(admin.recoverSnapshot(index, { timeoutMs: limits().maxAdminTimeoutMs + 1 }), { code: 'INVALID_ARGUMENT', message: /exceeds/ });
  await assert.rejects(admin.takeSnapshot({ timeoutMs: -1 }), { code: 'INVALID_ARGUMENT', message: /timeoutMs/ });
});

test('a node that cannot be asked is listed with its error', async (t) => {
  const { cluster, other } = await fresh(t);
  await cluster.servers[other - 1].close();
  // A short request timeout: asking the stopped node fails after it.
  const client = await Client.connect(cluster.addrs, { clusterId: CLUSTER_ID, requestTimeoutMs: 2000 });
  t.after(() => client.close());
  const nodes = await client.admin.snapshots();
  assert.deepStrictEqual(nodes.map((n) => n.nodeId), [1, 2, 3]);
  const stopped = nodes[other - 1];
  assert.deepStrictEqual(stopped.snapshots, []);
  assert.ok(Object.values(ErrorCode).includes(stopped.error.code), stopped.error.code);
  assert.strictEqual(typeof stopped.error.message, 'string');
  for (const n of nodes) if (n.nodeId !== other) assert.strictEqual(n.error, undefined);
});
