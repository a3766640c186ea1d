// The coordination recipes (`client.coord`), one test per recipe on one embedded 3-node
// cluster: leases and keys under them, locks with fencing tokens, elections with an observer
// (an async iterator), ID ranges, liveness groups.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startCluster, connect, eventually } = require('./support');

let cluster;
let client;

test.before(async () => {
  cluster = await startCluster(3);
  client = await connect(cluster.addrs);
});

test.after(async () => {
  await client.close();
  await cluster.close();
});

test('a revoked lease takes its keys; later calls reject with LEASE_EXPIRED', async () => {
  const { coord, kv } = client;
  await assert.rejects(coord.grant(1), { code: 'INVALID_ARGUMENT', message: /ttl/ });
  await assert.rejects(coord.grant('60s'), { code: 'INVALID_ARGUMENT', message: /ttlMs/ });
  const lease = await coord.grant(60000);
  await coord.put('js-lease/k', Buffer.from('v'), lease);
  assert.strictEqual((await kv.get('js-lease/k')).toString(), 'v');
  const status = await coord.timeToLive(lease);
  assert.strictEqual(status.lease, lease);
  assert.strictEqual(status.ttlMs, 60000);
  assert.ok(status.remainingMs > 0);
  assert.deepStrictEqual(status.keys, ['js-lease/k']);
  assert.ok((await coord.keepAlive(lease)).remainingMs > 0);

  assert.strictEqual(await coord.revoke(lease), true);
  assert.strictEqual(await kv.get('js-lease/k'), null);
  assert.strictEqual(await coord.revoke(lease), false);
  await assert.rejects(coord.timeToLive(lease), { code: 'LEASE_EXPIRED' });
  await assert.rejects(coord.put('js-lease/k', Buffer.from('v'), lease), { code: 'LEASE_EXPIRED' });
});

test('an unrenewed lease ends while a kept one lives; revoke() ends it', async () => {
  const { coord, kv } = client;
  const [kept, left] = [await coord.grant(1000), await coord.grant(1000)];
  await coord.put('js-lease/kept', Buffer.from('k'), kept);
  await coord.put('js-lease/left', Buffer.from('l'), left);
  const keepAlive = await coord.keepAliveForever(kept);
  assert.strictEqual(keepAlive.lease, kept);
  await eventually('the unrenewed lease to end', async () => (await kv.get('js-lease/left')) === null);
  await assert.rejects(coord.keepAlive(left), { code: 'LEASE_EXPIRED' });
  assert.strictEqual((await kv.get('js-lease/kept')).toString(), 'k');
  assert.ok(keepAlive.alive && keepAlive.check() > 0);
  await keepAlive.revoke();
  assert.strictEqual(keepAlive.alive, false);
  assert.throws(() => keepAlive.check(), { code: 'CLOSED' });
  assert.strictEqual(await kv.get('js-lease/kept'), null);
  await keepAlive.revoke(); // idempotent
});

test('lock tokens increase; a second contender waits until the holder unlocks', async () => {
  const { coord } = client;
  const [a, b, c] = [await coord.grant(60000), await coord.grant(60000), await coord.grant(60000)];
  const t1 = await coord.lock('js-lock', a);
  const start = Date.now();
  assert.strictEqual(await coord.tryLock('js-lock', b, 300), null);
  assert.ok(Date.now() - start >= 300);

  let second = null;
  const waiting = coord.lock('js-lock', b).then((t) => { second = t; return t; });
  // b cannot hold the lock while a does: a third contender's wait passes first.
  assert.strictEqual(await coord.tryLock('js-lock', c, 300), null);
  assert.strictEqual(second, null);
  assert.strictEqual(await coord.unlock('js-lock', a), true);
  const t2 = await waiting;
  assert.ok(t2 > t1, `${t2} > ${t1}`);

  assert.strictEqual(await coord.unlock('js-lock', b), true);
  const t3 = await coord.tryLock('js-lock', a);
  assert.ok(t3 > t2, `${t3} > ${t2}`);
  assert.strictEqual(await coord.unlock('js-lock', a), true);
  assert.strictEqual(await coord.unlock('js-lock', a), false);
  await coord.revoke(b);
  await assert.rejects(coord.lock('js-lock', b), { code: 'LEASE_EXPIRED' });
  await Promise.all([coord.revoke(a), coord.revoke(c)]);
});

test('an observer sees each leader of an election', async () => {
  const { coord } = client;
  const [a, b] = [await coord.grant(60000), await coord.grant(60000)];
  const observer = await coord.observe('js-election');
  assert.strictEqual(await observer.next(30000), null);
  await assert.rejects(observer.next(100), { code: 'TIMEOUT' });
  const ta = await coord.campaign('js-election', Buffer.from('first'), a);
  const first = await observer.next(30000);
  assert.deepStrictEqual([first.value.toString(), first.lease, first.token], ['first', a, ta]);
  assert.strictEqual((await coord.leader('js-election')).token, ta);

  let second = null;
  const waiting = coord.campaign('js-election', Buffer.from('second'), b).then((t) => { second = t; return t; });
  await assert.rejects(observer.next(300), { code: 'TIMEOUT' }); // b does not lead while a does
  assert.strictEqual(second, null);
  assert.strictEqual(await coord.resign('js-election', a), true);
  const tb = await waiting;
  assert.ok(tb > ta);
  const next = await observer.next(30000);
  assert.deepStrictEqual([next.value.toString(), next.lease, next.token], ['second', b, tb]);

  await coord.resign('js-election', b);
  for await (const leader of observer) {
    assert.strictEqual(leader, null);
    break; // leaving the loop closes the observer
  }
  assert.strictEqual(observer.isClosed, true);
  await assert.rejects(observer.next(), { code: 'CLOSED' });
  assert.strictEqual(await coord.leader('js-election'), null);
  await Promise.all([coord.revoke(a), coord.revoke(b)]);
});

test('ID ranges follow each other without overlap', async () => {
  const { coord } = client;
  await assert.rejects(coord.nextIds('js-ids', 0), { code: 'INVALID_ARGUMENT', message: /count/ });
  const first = await coord.nextId('js-ids');
  assert.strictEqual(first, 1);
  assert.deepStrictEqual(await coord.nextIds('js-ids', 10), { start: 2, end: 12 });
  assert.strictEqual(await coord.nextId('js-ids'), 12);
  assert.strictEqual(await coord.nextId('js-other-ids'), 1);
});

test('registered members are listed and watched joining and leaving', async () => {
  const { coord } = client;
  await assert.rejects(coord.register('js/g', 'm', Buffer.alloc(0), 2000), { code: 'INVALID_ARGUMENT', message: /'\/'/ });
  const watch = await coord.watchMembers('js-g');
  const r1 = await coord.register('js-g', 'm1', Buffer.from('info1'), 2000);
  const r2 = await coord.register('js-g', 'm2', Buffer.from('info2'), 2000);
  assert.notStrictEqual(r1.lease, r2.lease);
  const members = await coord.members('js-g');
  assert.deepStrictEqual(members.map((m) => [m.member, m.info.toString(), m.lease]),
    [['m1', 'info1', r1.lease], ['m2', 'info2', r2.lease]]);
  const joined = await watch.next(30000);
  assert.deepStrictEqual([joined.joined, joined.member, joined.lease], [true, 'm1', r1.lease]);
  assert.strictEqual((await watch.next(30000)).member, 'm2');

  await r1.close();
  const left = await watch.next(30000);
  assert.deepStrictEqual([left.joined, left.member, left.lease], [false, 'm1', 0]);
  assert.deepStrictEqual((await coord.members('js-g')).map((m) => m.member), ['m2']);
  assert.strictEqual(await coord.unregister('js-g', 'm2', r2.lease), true);
  for await (const change of watch) {
    assert.deepStrictEqual([change.joined, change.member], [false, 'm2']);
    break;
  }
  assert.strictEqual(watch.isClosed, true);
  r2.release();
  await r1.close(); // idempotent
  assert.deepStrictEqual(await coord.members('js-g'), []);
});
