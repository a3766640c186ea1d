// Live administration, as a user does it: a fresh embedded 3-node cluster per test and a 4th
// node started with `join: true`, added as a voter, made leader, preferred, and removed; the
// refusals (argument errors reject with INVALID_ARGUMENT naming the argument) and the timeout of
// a change that cannot complete.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { Server, Client, Standing, limits } = require('..');
const { CLUSTER_ID, freePorts, startCluster, connect, eventually } = require('./support');

/** Starts node 4, which joins `cluster` through its founders. */
async function join(cluster) {
  const [port] = await freePorts(1);
  const server = await Server.start({
    nodeId: 4,
    listen: `127.0.0.1:${port}`,
    clusterId: CLUSTER_ID,
    dataDir: path.join(cluster.dir, 'n4'),
    peers: Object.fromEntries(cluster.addrs.map((a, i) => [String(i + 1), a])),
    join: true,
    electionTimeoutMs: 300,
    heartbeatIntervalMs: 30,
    tickMs: 5,
    partitions: [0, 1],
  });
  cluster.servers.push(server); // closed with the cluster
  return server;
}

/** The voter ids of a settled configuration (no change in progress, no learner left). */
async function voters(client) {
  const conf = await client.admin.clusterConfiguration();
  if (conf.jointOldVoters != null || conf.observers.length > 0) return null;
  return conf.voters.map((m) => m.nodeId).sort();
}

/** Whether the node at `addr` holds exactly `payloads` in partition 0, read from its own state. */
async function holds(addr, payloads) {
  const direct = await Client.connect([addr], { clusterId: CLUSTER_ID, requestTimeoutMs: 5000 });
  try {
    const got = await direct.journal.get(0, 0, 4096, { consistency: 'NONE' });
    return JSON.stringify(got.map((e) => e.payload.toString())) === JSON.stringify(payloads);
  } catch {
    return false;
  } finally {
    await direct.close();
  }
}

async function rejectsWith(promise, code, pattern) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Error);
    assert.strictEqual(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

test('a joining node is added, leads, is preferred and is removed', async (t) => {
  const cluster = await startCluster(3);
  const client = await connect(cluster.addrs);
  t.after(async () => {
    await client.close();
    await cluster.close();
  });
  const admin = client.admin;
  const written = [];
  for (let i = 0; i < 20; i++) {
    written.push(`e${i}`);
    await client.journal.append(0, [Buffer.from(`e${i}`)]);
  }
  assert.deepStrictEqual(await voters(client), [1, 2, 3]);

  const joiner = await join(cluster);
  assert.strictEqual(joiner.status().standing, 'JOINING');
  assert.strictEqual(joiner.status().standing, Standing.Joining);
  assert.strictEqual(joiner.status().preferredLeader, undefined);
  for (const s of cluster.servers.slice(0, 3)) assert.strictEqual(s.status().standing, 'MEMBER');

  // Refusals before it is a voter.
  await rejectsWith(admin.transferLeader(4, { timeoutMs: 5000 }), 'INVALID_ARGUMENT', /not a voter/);
  await rejectsWith(admin.setPreferredLeader(4), 'INVALID_ARGUMENT', /not a voter/);

  // Added: a voter and a member holding everything written before and after.
  await admin.addVoter(4, joiner.address, { timeoutMs: 30000 });
  assert.deepStrictEqual(await voters(client), [1, 2, 3, 4]);
  await eventually('the joiner is a member', () => joiner.status().standing === 'MEMBER');
  written.push('after-add');
  await client.journal.append(0, [Buffer.from('after-add')]);
  await eventually('the joiner holds every entry', () => holds(joiner.address, written));

  // Leadership moves to it; it is preferred on every node, then cleared.
  await admin.transferLeader(4, { timeoutMs: 30000 });
  assert.strictEqual((await admin.clusterConfiguration()).leader.nodeId, 4);
  await eventually('the joiner leads', () => joiner.status().role === 'LEADER');
  await admin.setPreferredLeader(4);
  await eventually('every node records it', () => cluster.servers.every((s) => s.status().preferredLeader === 4));
  await admin.setPreferredLeader(null);
  await eventually('every node clears it', () => cluster.servers.every((s) => s.status().preferredLeader === undefined));

  // Removed while it leads: it knows it, the founders serve on without it.
  await rejectsWith(joiner.waitRemoved(20), 'TIMEOUT', /not removed/);
  await admin.removeVoter(4, { timeoutMs: 30000 });
  await joiner.waitRemoved(30000);
  assert.strictEqual(joiner.status().standing, 'REMOVED');
  assert.deepStrictEqual(await voters(client), [1, 2, 3]);
  written.push('after-remove');
  await client.journal.append(0, [Buffer.from('after-remove')]);
  for (const addr of cluster.addrs) {
    await eventually(`${addr} holds every entry`, () => holds(addr, written));
  }
  await joiner.close();
  await rejectsWith(joiner.waitRemoved(), 'CLOSED', /closed/);
});

test('updateVoters takes the configuration\'s own member objects; bad arguments reject', async (t) => {
  const cluster = await startCluster(3);
  const client = await connect(cluster.addrs);
  t.after(async () => {
    await client.close();
    await cluster.close();
  });
  const admin = client.admin;
  const joiner = await join(cluster);

  await rejectsWith(admin.updateVoters([1, 2], [{ nodeId: 1 }, { nodeId: 2 }]), 'INVALID_ARGUMENT', /not the current voters/);
  await rejectsWith(admin.updateVoters([1, 2, 3], [{ nodeId: 1 }, { nodeId: 2 }, { nodeId: 3, addr: '' }, { nodeId: 7 }]),
    'INVALID_ARGUMENT', /no known address/);
  await rejectsWith(admin.updateVoters([1, 'two'], []), 'INVALID_ARGUMENT', /oldVoters\[1\]/);
  await rejectsWith(admin.updateVoters([1, 2, 3], [{ addr: 'x' }]), 'INVALID_ARGUMENT', /voters\[0\]/);
  await rejectsWith(admin.updateVoters([1, 2, 3], { nodeId: 4 }), 'INVALID_ARGUMENT', /voters must be an array/);
  assert.strictEqual(limits().maxAdminTimeoutMs, 600000);
  await rejectsWith(admin.addVoter(4, joiner.address, { timeoutMs: limits().maxAdminTimeoutMs + 1 }), 'INVALID_ARGUMENT', /exceeds/);
  await rejectsWith(admin.addVoter(4, joiner.address, { timeoutMs: -1 }), 'INVALID_ARGUMENT', /timeoutMs/);
  await rejectsWith(admin.addVoter('4', joiner.address), 'INVALID_ARGUMENT', /nodeId must be a number/);
  await rejectsWith(admin.addVoter(4, 'nowhere'), 'INVALID_ARGUMENT', /nowhere/);
  await rejectsWith(admin.removeVoter(-1), 'INVALID_ARGUMENT', /nodeId/);
  await rejectsWith(admin.transferLeader(2, 'soon'), 'INVALID_ARGUMENT', /options must be an object/);
  await rejectsWith(admin.setPreferredLeader(), 'INVALID_ARGUMENT', /nodeId must be a number or null, got undefined/);
  assert.deepStrictEqual(await voters(client), [1, 2, 3]);
  assert.strictEqual(joiner.status().standing, 'JOINING');

  // One change: the configuration's voters as they are, minus node 1, plus the joiner.
  const conf = await admin.clusterConfiguration();
  const keep = conf.voters.filter((m) => m.nodeId !== 1);
  await admin.updateVoters(conf.voters.map((m) => m.nodeId), [...keep, { nodeId: 4, addr: joiner.address }], { timeoutMs: 30000 });
  assert.deepStrictEqual(await voters(client), [2, 3, 4]);
  await cluster.servers[0].waitRemoved(30000);
  assert.strictEqual(cluster.servers[0].status().standing, 'REMOVED');
  await eventually('the joiner is a member', () => joiner.status().standing === 'MEMBER');
});

test('a change that cannot complete times out and the voters stay', async (t) => {
  const cluster = await startCluster(3);
  const client = await connect(cluster.addrs);
  t.after(async () => {
    await client.close();
    await cluster.close();
  });
  await client.journal.append(0, [Buffer.from('x')]);
  const [port] = await freePorts(1);
  // The event loop runs while the change waits.
  let ticks = 0;
  const timer = setInterval(() => { ticks += 1; }, 10);
  try {
    await rejectsWith(client.admin.addVoter(9, `127.0.0.1:${port}`, { timeoutMs: 1500 }), 'TIMEOUT', /did not catch up/);
  } finally {
    clearInterval(timer);
  }
  assert.ok(ticks >= 20, `${ticks} ticks`);
  await eventually('the voters as they were', async () => JSON.stringify(await voters(client)) === '[1,2,3]');
  // A later change is not blocked.
  await client.admin.transferLeader(2);
  assert.strictEqual((await client.admin.clusterConfiguration()).leader.nodeId, 2);
});
