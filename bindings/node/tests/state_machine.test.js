// User state machines: a JS bank hosted by a 3-node embedded cluster (the text protocol every
// binding's bank speaks), driven through `client.stateMachine('bank')`.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startCluster, connect, eventually } = require('./support.js');

function rejected(message) {
  const e = new Error(message);
  e.code = 'REJECTED';
  return e;
}

/** The bank: `deposit A N`, `transfer A B N`; queries `balance A`, `balances`. */
class Bank {
  constructor() {
    this.accounts = new Map();
    this.crash = false; // set on one node: its next apply throws a TypeError
  }

  apply(ctx, command) {
    if (this.crash) throw new TypeError(`bank crashed at ${ctx.index}`);
    assert.ok(Number.isSafeInteger(ctx.index) && ctx.index > 0 && ctx.timestampMs > 0);
    const [op, ...args] = command.toString().split(' ');
    if (op === 'deposit') {
      const [a, n] = [args[0], BigInt(args[1])];
      this.accounts.set(a, this.get(a) + n);
      return Buffer.from(String(this.get(a)));
    }
    if (op === 'transfer') {
      const [a, b, n] = [args[0], args[1], BigInt(args[2])];
      if (this.get(a) < n) throw rejected(`${a} has ${this.get(a)}, short of ${n}`);
      this.accounts.set(a, this.get(a) - n);
      this.accounts.set(b, this.get(b) + n);
      return Buffer.from(String(this.get(a)));
    }
    throw rejected(`unknown command ${op}`);
  }

  get(a) {
    return this.accounts.get(a) ?? 0n;
  }

  balances() {
    return [...this.accounts.keys()].sort().map((a) => `${a}=${this.accounts.get(a)}\n`).join('');
  }

  query(q) {
    const [op, a] = q.toString().split(' ');
    if (op === 'balance') return Buffer.from(String(this.get(a)));
    if (op === 'balances') return Buffer.from(this.balances());
    throw rejected(`unknown query ${op}`);
  }

  * snapshot() {
    for (const line of this.balances().split('\n').filter(Boolean)) yield Buffer.from(line);
  }

  restoreBegin() {
    this.accounts = new Map();
  }

  restore(chunk) {
    const [a, n] = chunk.toString().split('=');
    this.accounts.set(a, BigInt(n));
  }
}

function total(text) {
  return text.split('\n').filter(Boolean).reduce((s, l) => s + BigInt(l.split('=')[1]), 0n);
}

async function bankCluster() {
  const banks = [new Bank(), new Bank(), new Bank()];
  const cluster = await startCluster(3, (i) => ({ bank: banks[i] }));
  const client = await connect(cluster.addrs);
  return { banks, cluster, client, bank: client.stateMachine('bank') };
}

function leaderOf(servers, stopped = new Set()) {
  return servers.findIndex((s, i) => !stopped.has(i) && s.status().role === 'LEADER');
}

test('a JS bank on 3 nodes: updates, refusals, batches, queries, a stopped leader', async (t) => {
  const { banks, cluster, client, bank } = await bankCluster();
  t.after(async () => {
    await client.close();
    await cluster.close();
  });
  assert.strictEqual(bank.name, 'bank');

  await t.test('deposits and transfers return the new balance', async () => {
    assert.strictEqual((await bank.update(Buffer.from('deposit alice 100'))).toString(), '100');
    assert.strictEqual((await bank.update(Buffer.from('deposit bob 50'))).toString(), '50');
    assert.strictEqual((await bank.update(Buffer.from('transfer alice bob 70'))).toString(), '30');
  });

  await t.test('a refused transfer rejects with REJECTED and the message, changing nothing', async () => {
    await assert.rejects(bank.update(Buffer.from('transfer alice bob 100')), (e) => {
      assert.strictEqual(e.code, 'REJECTED');
      assert.match(e.message, /alice has 30, short of 100/);
      return true;
    });
    assert.strictEqual((await bank.query(Buffer.from('balance alice'))).toString(), '30');
  });

  await t.test('a batch answers per command, a refusal being an Error entry', async () => {
    const r = await bank.updateBatch([
      Buffer.from('deposit carol 10'),
      Buffer.from('transfer carol bob 11'),
      Buffer.from('transfer bob carol 5'),
    ]);
    assert.strictEqual(r.length, 3);
    assert.strictEqual(r[0].toString(), '10');
    assert.ok(r[1] instanceof Error);
    assert.strictEqual(r[1].code, 'REJECTED');
    assert.match(r[1].message, /carol has 10, short of 11/);
    assert.strictEqual(r[2].toString(), '115');
    assert.strictEqual(await bank.updateBatch([Buffer.from('deposit dave 1')], { response: 'RECEIVE' }), null);
    assert.strictEqual(await bank.update(Buffer.from('deposit dave 1'), { response: 'PERSISTENCE' }), null);
  });

  await t.test('queries at each consistency', async () => {
    const want = 'alice=30\nbob=115\ncarol=15\ndave=2\n';
    await eventually('dave deposits applied', async () =>
      (await bank.query(Buffer.from('balances'))).toString() === want);
    for (const consistency of ['STRICT', 'SEQUENTIAL']) {
      assert.strictEqual((await bank.query(Buffer.from('balances'), { consistency })).toString(), want);
    }
    await eventually('a NONE read catches up', async () =>
      (await bank.query(Buffer.from('balances'), { consistency: 'NONE' })).toString() === want);
    await assert.rejects(bank.query(Buffer.from('nonsense')), /unknown query nonsense/);
    await assert.rejects(bank.query('balances'), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(client.stateMachine('nobank').query(Buffer.from('balances')));
  });

  await t.test('stateChanged events reach the subscriptions that ask for them', async () => {
    const seen = { remote: [], local: [], plain: [] };
    const record = (into) => (err, e) => { if (!err) into.push(e); };
    const remote = await client.events(record(seen.remote), { stateMachines: true });
    const local = cluster.servers[0].events(record(seen.local), { stateMachines: true });
    const plain = await client.events(record(seen.plain));
    const bankAt = (list) => list.filter((e) => e.kind === 'stateChanged' && e.machine === 'bank').map((e) => e.appliedIndex);
    try {
      await eventually('the whole state', () => bankAt(seen.remote).length > 0 && bankAt(seen.local).length > 0);
      const before = Math.max(...bankAt(seen.remote));
      assert.ok(before > 0, 'the bank changed before the subscription');
      await bank.update(Buffer.from('deposit erin 1'));
      const applied = await client.sync();
      await eventually('the update reported', () => Math.max(...bankAt(seen.remote)) > before &&
        Math.max(...bankAt(seen.local)) > before);
      assert.ok(Math.max(...bankAt(seen.remote)) <= applied);
      await client.journal.append(0, [Buffer.from('x')]);
      await eventually('the journal change', () => seen.plain.some((e) => e.kind === 'journalChanged' && e.partition === 0 && e.maxIndex > 0));
      assert.ok(!seen.plain.some((e) => e.kind === 'stateChanged'), 'no stateChanged without the option');
      const it = client.events({ stateMachines: true });
      for await (const e of it) if (e.kind === 'stateChanged' && e.machine === 'bank') break;
    } finally {
      remote.close();
      local.close();
      plain.close();
    }
  });

  await t.test('stopping the leader mid-way: equal balances everywhere, total conserved', async () => {
    const before = total((await bank.query(Buffer.from('balances'))).toString());
    const names = ['alice', 'bob', 'carol', 'dave'];
    const stopped = new Set();
    for (let i = 0; i < 40; i += 1) {
      if (i === 15) {
        const leader = leaderOf(cluster.servers);
        assert.ok(leader >= 0);
        stopped.add(leader);
        await cluster.servers[leader].close();
      }
      const cmd = `transfer ${names[i % 4]} ${names[(i + 1) % 4]} ${1 + (i % 7)}`;
      try {
        await bank.update(Buffer.from(cmd));
      } catch (e) {
        if (e.code !== 'REJECTED') throw e;
      }
    }
    const want = (await bank.query(Buffer.from('balances'))).toString();
    assert.strictEqual(total(want), before);
    const running = [0, 1, 2].filter((i) => !stopped.has(i));
    await eventually('every running node applied everything', () =>
      running.every((i) => banks[i].balances() === want));
    for (const b of banks) assert.strictEqual(total(b.balances()), before);
  });
});

test('an apply that throws a TypeError fails that node only; the cluster keeps serving', async (t) => {
  const { banks, cluster, client, bank } = await bankCluster();
  t.after(async () => {
    await client.close();
    await cluster.close();
  });
  await bank.update(Buffer.from('deposit alice 1'));
  const leader = await eventually('a leader', () => {
    const l = leaderOf(cluster.servers);
    return l >= 0 ? l + 1 : 0;
  }) - 1;
  const victim = (leader + 1) % 3;
  banks[victim].crash = true;
  assert.strictEqual((await bank.update(Buffer.from('deposit alice 2'))).toString(), '3');
  await eventually('the crashed node reports failed', () => cluster.servers[victim].status().failed);
  for (let i = 0; i < 5; i += 1) await bank.update(Buffer.from('deposit alice 1'));
  assert.strictEqual((await bank.query(Buffer.from('balance alice'))).toString(), '8');
  assert.strictEqual(cluster.servers[leader].status().failed, false);
});

test('a machine without the methods is INVALID_ARGUMENT', async () => {
  const { Server } = require('..');
  await assert.rejects(
    Server.start({ nodeId: 1, listen: '127.0.0.1:0', clusterId: 42, dataDir: '/nonexistent' },
      { stateMachines: { bank: { apply() {} } } }),
    (e) => e.code === 'INVALID_ARGUMENT' && /stateMachines\.bank/.test(e.message),
  );
});

test('a restarted node restores its bank from the snapshot, in chunks, then replays the log', async (t) => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const { Server, Client } = require('..');
  const { freePorts, CLUSTER_ID } = require('./support.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jk-node-sm-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const [port] = await freePorts(1);
  const config = { nodeId: 1, listen: `127.0.0.1:${port}`, clusterId: CLUSTER_ID, dataDir: dir,
    electionTimeoutMs: 300, heartbeatIntervalMs: 30, tickMs: 5 };
  const first = new Bank();
  let server = await Server.start(config, { stateMachines: { bank: first } });
  let client = await Client.connect([config.listen], { clusterId: CLUSTER_ID });
  let bank = client.stateMachine('bank');
  for (const cmd of ['deposit alice 10', 'deposit bob 20', 'deposit carol 30']) await bank.update(Buffer.from(cmd));
  await client.admin.takeSnapshot();
  await bank.update(Buffer.from('transfer carol alice 5'));
  const want = first.balances();
  await client.close();
  await server.close();

  const second = new Bank();
  const chunks = [];
  const restore = second.restore.bind(second);
  second.restore = (chunk) => {
    chunks.push(chunk.toString());
    restore(chunk);
  };
  server = await Server.start(config, { stateMachines: { bank: second } });
  t.after(() => server.close());
  client = await Client.connect([config.listen], { clusterId: CLUSTER_ID });
  t.after(() => client.close());
  bank = client.stateMachine('bank');
  assert.strictEqual((await bank.query(Buffer.from('balances'))).toString(), want);
  assert.deepStrictEqual(chunks, ['alice=10', 'bob=20', 'carol=30']);
});
