// Observers, as a user runs them: a fresh embedded 3-node cluster per test and a 4th node
// started with `role: 'observer'` and the founders as `parents`. It holds what is written (a
// NONE read on it sees the entries), its standing is 'OBSERVER', the configuration lists it
// among the observers; `admin.convertRole()` makes it a voter and an observer again; wrong
// roles, nodes and options reject with INVALID_ARGUMENT.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { Server, Client, Standing } = require('..');
const { CLUSTER_ID, freePorts, startCluster, connect, eventually } = require('./support');

function observerOptions(cluster, port, extra = {}) {
  return {
    nodeId: 4,
    listen: `127.0.0.1:${port}`,
    clusterId: CLUSTER_ID,
    dataDir: path.join(cluster.dir, 'n4'),
    role: 'observer',
    parents: cluster.addrs,
    electionTimeoutMs: 300,
    heartbeatIntervalMs: 30,
    tickMs: 5,
    partitions: [0, 1],
    ...extra,
  };
}

/** (voter ids, observer ids) of a settled configuration. */
async function roles(client) {
  const conf = await client.admin.clusterConfiguration();
  if (conf.jointOldVoters != null) return null;
  return [conf.voters.map((m) => m.nodeId).sort(), conf.observers.map((m) => m.nodeId).sort()];
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

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

test('an observer pulls and is converted to a voter and back', async (t) => {
  const cluster = await startCluster(3);
  const client = await connect(cluster.addrs);
  t.after(async () => {
    await client.close();
    await cluster.close();
  });
  const admin = client.admin;
  const written = [];
  for (let i = 0; i < 10; i++) {
    written.push(`e${i}`);
    await client.journal.append(0, [Buffer.from(`e${i}`)]);
  }
  const [port] = await freePorts(1);
  const obs = await Server.start(observerOptions(cluster, port));
  cluster.servers.push(obs); // closed with the cluster
  assert.strictEqual(obs.status().standing, Standing.Observer);
  assert.strictEqual(obs.status().standing, 'OBSERVER');
  await eventually('the observer holds every entry', () => holds(obs.address, written));
  await eventually('it is registered', async () => same(await roles(client), [[1, 2, 3], [4]]));

  await admin.convertRole(4, 'VOTER', { timeoutMs: 30000 });
  assert.deepStrictEqual(await roles(client), [[1, 2, 3, 4], []]);
  await eventually('it is a member', () => obs.status().standing === 'MEMBER');
  await admin.convertRole(4, 'voter'); // the role it has: nothing to do
  written.push('as-voter');
  await client.journal.append(0, [Buffer.from('as-voter')]);
  await eventually('the voter holds every entry', () => holds(obs.address, written));

  await admin.convertRole(4, 'OBSERVER', { timeoutMs: 30000 });
  assert.deepStrictEqual(await roles(client), [[1, 2, 3], [4]]);
  await eventually('it observes again', () => obs.status().standing === 'OBSERVER');
  written.push('as-observer');
  await client.journal.append(0, [Buffer.from('as-observer')]);
  await eventually('it goes on pulling', () => holds(obs.address, written));
});

test('wrong roles, nodes and options are refused', async (t) => {
  const cluster = await startCluster(3);
  const client = await connect(cluster.addrs);
  t.after(async () => {
    await client.close();
    await cluster.close();
  });
  const admin = client.admin;
  await rejectsWith(admin.convertRole(4, 'LEADER'), 'INVALID_ARGUMENT', /VOTER or OBSERVER/);
  await rejectsWith(admin.convertRole(4, 1), 'INVALID_ARGUMENT', /role/);
  await rejectsWith(admin.convertRole(9, 'VOTER'), 'INVALID_ARGUMENT', /neither/);
  await rejectsWith(admin.convertRole(-1, 'VOTER'), 'INVALID_ARGUMENT', /nodeId/);
  const [port] = await freePorts(1);
  await rejectsWith(Server.start(observerOptions(cluster, port, { role: 'leader' })), 'INVALID_ARGUMENT', /role/);
  await rejectsWith(Server.start(observerOptions(cluster, port, { parents: ['nowhere'] })), 'INVALID_ARGUMENT', /parents/);
  await rejectsWith(Server.start(observerOptions(cluster, port, { parents: [] })), 'INVALID_ARGUMENT', /parent/);
});
