// The Node API against an embedded 3-node cluster: journal, KV, watch, admin, error codes.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { Client } = require('..');
const { CLUSTER_ID, startCluster, connect, eventually } = require('./support');

test('a 3-node cluster', async (t) => {
  const cluster = await startCluster(3);
  const client = await connect(cluster.addrs);
  t.after(async () => {
    await client.close();
    await cluster.close();
  });

  await t.test('elects one leader that every server status reports', async () => {
    const leader = await eventually('a leader', () => {
      const st = cluster.servers.map((s) => s.status());
      const leaders = st.filter((s) => s.role === 'LEADER');
      return leaders.length === 1 && st.every((s) => s.leader === leaders[0].nodeId) && leaders[0];
    });
    assert.deepStrictEqual(leader.voters, [1, 2, 3]);
    assert.strictEqual(cluster.servers[0].address, cluster.addrs[0]);
  });

  await t.test('append then get returns the payloads as Buffers, per partition', async () => {
    assert.deepStrictEqual(await client.journal.listPartitions(), [0, 1]); // from the config
    await client.journal.scalePartitions([0, 1, 2]);
    assert.deepStrictEqual(await client.journal.listPartitions(), [0, 1, 2]);
    const first0 = await client.journal.append(0, [Buffer.from('a'), Buffer.from('b')]);
    const first1 = await client.journal.append(1, [Buffer.from('x')], { response: 'ALL' });
    const second0 = await client.journal.append(0, [Buffer.from('c')], { response: 'REPLICATION' });
    assert.strictEqual(typeof first0, 'number');
    assert.strictEqual(second0, first0 + 2);
    const none = await client.journal.append(2, [Buffer.from('p')], { response: 'PERSISTENCE' });
    assert.strictEqual(none, null);

    const entries = await client.journal.get(0, first0, 10);
    assert.deepStrictEqual(entries.map((e) => e.payload.toString()), ['a', 'b', 'c']);
    assert.ok(Buffer.isBuffer(entries[0].payload));
    const [e0, e1] = entries;
    assert.strictEqual(e0.partition, 0);
    assert.strictEqual(e0.index, first0);
    assert.strictEqual(e0.batchSize, 2);
    assert.deepStrictEqual([e0.offset, e1.offset], [0, 1]);
    assert.ok(e0.term >= 1);
    assert.ok(Math.abs(e0.timestampMs - Date.now()) < 60000);

    const one = await client.journal.get(1, first1, 10, { consistency: 'SEQUENTIAL' });
    assert.deepStrictEqual(one.map((e) => e.payload.toString()), ['x']);

    const max = await client.journal.maxIndices();
    const min = await client.journal.minIndices({ consistency: 'STRICT' });
    assert.strictEqual(max['0'], first0 + 3);
    assert.strictEqual(max['1'], first1 + 1);
    assert.ok(min['0'] <= first0);
    assert.strictEqual(await client.journal.queryIndex(0, e1.timestampMs), e0.index);
  });

  await t.test('kv reads at an index see the state of then, on every node', async () => {
    const kv = client.kv;
    await kv.set('at/color', Buffer.from('red'));
    await kv.set('at/size', Buffer.from('L'));
    const then = await client.sync();
    await kv.set('at/color', Buffer.from('blue'));
    await kv.remove('at/size');
    assert.deepStrictEqual(await kv.get('at/color', { atIndex: then }), Buffer.from('red'));
    assert.deepStrictEqual(await kv.get('at/color'), Buffer.from('blue'));
    const list = await kv.list('at/', { atIndex: then });
    assert.deepStrictEqual(list.map((e) => [e.key, e.value.toString()]), [['at/color', 'red'], ['at/size', 'L']]);
    for (const addr of cluster.addrs) {
      const one = await connect([addr]);
      assert.deepStrictEqual(await one.kv.get('at/size', { atIndex: then }), Buffer.from('L'));
      await one.close();
    }
    await assert.rejects(kv.get('at/color', { atIndex: then + 1000000 }), { code: 'INDEX_OVERFLOW' });
    await assert.rejects(kv.list('at/', { atIndex: -1 }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(kv.get('at/color', { atIndex: then, consistency: 'NONE' }), /not both/);
  });

  await t.test('kv set/get/exists/list/remove and compareAndSet', async () => {
    const kv = client.kv;
    assert.strictEqual(await kv.set('cfg/a', Buffer.from('1')), null);
    assert.deepStrictEqual(await kv.set('cfg/a', Buffer.from('2')), Buffer.from('1'));
    await kv.set('cfg/b', Buffer.from('3'));
    assert.deepStrictEqual(await kv.get('cfg/a'), Buffer.from('2'));
    assert.strictEqual(await kv.get('nope', { consistency: 'SEQUENTIAL' }), null);
    assert.strictEqual(await kv.exists('cfg/b'), true);
    const list = await kv.list('cfg/');
    assert.deepStrictEqual(list.map((e) => [e.key, e.value.toString()]), [['cfg/a', '2'], ['cfg/b', '3']]);
    assert.deepStrictEqual(await kv.remove('cfg/b'), Buffer.from('3'));
    assert.strictEqual(await kv.exists('cfg/b'), false);

    let r = await kv.compareAndSet('lock', null, Buffer.from('me'));
    assert.strictEqual(r.swapped, true);
    assert.deepStrictEqual(r.current, Buffer.from('me'));
    r = await kv.compareAndSet('lock', null, Buffer.from('you'));
    assert.strictEqual(r.swapped, false);
    assert.deepStrictEqual(r.current, Buffer.from('me'));
    r = await kv.compareAndSet('lock', Buffer.from('me'), null);
    assert.strictEqual(r.swapped, true);
    assert.strictEqual(r.current ?? null, null);
  });

  await t.test('watch delivers changes in order and stops on close()', async () => {
    const events = [];
    const errors = [];
    const w = await client.kv.watch({ prefix: 'w/' }, 0, (err, ev) => {
      if (err) errors.push(err);
      else events.push(ev);
    });
    await client.kv.set('w/1', Buffer.from('a'));
    await client.kv.set('other', Buffer.from('x'));
    await client.kv.set('w/1', Buffer.from('b'));
    await client.kv.remove('w/1');
    await eventually('three events', () => events.length >= 3);
    assert.deepStrictEqual(errors, []);
    assert.deepStrictEqual(events.map((e) => [e.key, e.oldValue?.toString() ?? null, e.newValue?.toString() ?? null]),
      [['w/1', null, 'a'], ['w/1', 'a', 'b'], ['w/1', 'b', null]]);
    assert.ok(events[0].index < events[1].index && events[1].index < events[2].index);
    assert.strictEqual(w.nextIndex, events[2].index + 1);
    w.close();
    w.close();
    await new Promise((r) => setTimeout(r, 50));
    const seen = events.length;
    await client.kv.set('w/2', Buffer.from('c'));
    await new Promise((r) => setTimeout(r, 200));
    assert.strictEqual(events.length, seen);

    // From an index: replays history.
    const replay = [];
    const w2 = await client.kv.watch({ key: 'w/1' }, events[0].index, (err, ev) => ev && replay.push(ev));
    await eventually('replayed events', () => replay.length >= 3);
    w2.close();
    assert.deepStrictEqual(replay.map((e) => e.index), events.map((e) => e.index));
  });

  await t.test('kv.events() is an async iterator over a watch', async () => {
    // From the next log index on, so no write below can race the subscription.
    const it = client.kv.events({ prefix: 'it/' }, (await client.sync()) + 1);
    await client.kv.set('it/1', Buffer.from('a'));
    await client.kv.set('it/2', Buffer.from('b'));
    const got = [];
    for await (const ev of it) {
      got.push(`${ev.key}=${ev.newValue}`);
      if (got.length === 2) break;
    }
    assert.deepStrictEqual(got, ['it/1=a', 'it/2=b']);
    assert.deepStrictEqual(await it.next(), { value: undefined, done: true });

    const bad = client.kv.events({}, 0);
    await assert.rejects(bad.next(), { code: 'INVALID_ARGUMENT' });
  });

  await t.test('admin status and cluster configuration', async () => {
    const st = await client.admin.status(cluster.addrs[1]);
    assert.strictEqual(st.nodeId, 2);
    assert.ok(['LEADER', 'FOLLOWER'].includes(st.role));
    assert.ok(st.resources, 'a node of this build reports its resources');
    assert.ok(st.resources.clientConnections >= 1 && st.resources.peerConnections >= 1);
    assert.strictEqual(typeof st.resources.watches, 'number');
    assert.ok(st.detail, 'a node of this build reports its monitoring detail');
    assert.ok(st.detail.durableIndex >= st.detail.firstIndex);
    assert.ok(st.detail.partitions.some((p) => p.partition === 0));
    assert.ok(st.detail.disk && st.detail.disk.totalBytes > 0);
    if (st.role === 'LEADER') {
      assert.deepStrictEqual(st.detail.followers.map((f) => f.nodeId).sort(), [1, 3]);
      for (const f of st.detail.followers) assert.strictEqual(f.lag, st.lastIndex - f.matchIndex);
    } else {
      assert.deepStrictEqual(st.detail.followers, []);
      assert.strictEqual(typeof st.detail.leaderLastHeardMs, 'number');
    }
    const cfg = await client.admin.clusterConfiguration();
    assert.deepStrictEqual(cfg.voters.map((m) => m.nodeId).sort(), [1, 2, 3]);
    assert.ok(cfg.leader && cluster.addrs.includes(cfg.leader.addr));
  });

  await t.test('errors carry the core error code', async () => {
    const max = (await client.journal.maxIndices())['0'];
    await assert.rejects(client.journal.get(0, max + 100, 1), (e) => e instanceof Error && e.code === 'INDEX_OVERFLOW');
    await assert.rejects(client.journal.append(0, []), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(client.journal.get(0, -1, 1), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(client.journal.get(0, 1.5, 1), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(client.journal.append(70000, [Buffer.from('x')]), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(client.journal.append(9, [Buffer.from('x')]), { code: 'INVALID_ARGUMENT' }); // undeclared
    await assert.rejects(client.kv.set('', Buffer.from('x')), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(client.kv.watch({}, 0, () => {}), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(require('..').Client.connect(['not-an-address'], { clusterId: 42 }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(require('..').Server.start('node_id = 1\nbogus = 2'), { code: 'INVALID_ARGUMENT' });

    const other = await connect(cluster.addrs);
    await other.close();
    await assert.rejects(other.kv.get('k'), { code: 'CLOSED' });
    await assert.rejects(other.journal.append(0, [Buffer.from('x')]), { code: 'CLOSED' });
  });

  await t.test('NOT_LEADER carries the leader hint', async () => {
    const leader = cluster.servers.find((s) => s.status().role === 'LEADER');
    const follower = cluster.servers.find((s) => s !== leader);
    await eventually('the follower knows the leader', () => follower.status().leader === leader.nodeId);
    const direct = await Client.connect([follower.address], { clusterId: CLUSTER_ID, maxAttempts: 1 });
    t.after(() => direct.close());
    await assert.rejects(direct.journal.append(0, [Buffer.from('x')]), (e) => {
      assert.strictEqual(e.code, 'NOT_LEADER');
      assert.strictEqual(e.leaderHint, leader.address);
      return true;
    });
  });

  await t.test('a watch ends with CLOSED when its client closes', async () => {
    const other = await connect(cluster.addrs);
    const errors = [];
    await other.kv.watch({ key: 'k' }, 0, (err) => err && errors.push(err));
    await other.close();
    await eventually('CLOSED error', () => errors.length > 0);
    assert.strictEqual(errors[0].code, 'CLOSED');
  });
});

test('a closed server reports CLOSED and TOML config starts a node', async () => {
  const { freePorts } = require('./support');
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const { Server } = require('..');
  const [port] = await freePorts(1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jk-node-'));
  const s = await Server.start(`node_id = 1\nlisten = "127.0.0.1:${port}"\ncluster_id = 7\ndata_dir = "${dir}"\n[peers]\n1 = "127.0.0.1:${port}"\n`);
  assert.strictEqual(s.nodeId, 1);
  await eventually('single-node leader', () => s.status().role === 'LEADER');
  await s.close();
  await s.close();
  assert.throws(() => s.status(), { code: 'CLOSED' });
  fs.rmSync(dir, { recursive: true, force: true });
});
